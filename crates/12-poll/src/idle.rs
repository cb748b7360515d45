//! Idle connections: found by looking at every connection each turn, as
//! `poll` looks at every socket anyway.

use std::time::Instant;

use nix::poll::PollTimeout;

use crate::server::Server;

// ANCHOR: idle
impl Server {
    /// How long `poll` may sleep: until the nearest idle deadline (or the
    /// end of an accept pause), or for ever with no connection open. An
    /// accept pause that is over ends here.
    pub fn timeout(&mut self, now: Instant) -> PollTimeout {
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
        }
        let idle = self.limits.idle;
        let deadlines = self.conns.iter().map(|(_, c)| c.last_progress + idle);
        match deadlines.chain(self.accept_paused_until).min() {
            None => PollTimeout::NONE,
            Some(when) => {
                // Rounded up: waking a millisecond early finds nothing due.
                let ms = when
                    .saturating_duration_since(now)
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        }
    }
}

impl Server {
    /// Marks the connections that made no progress for the idle limit.
    pub fn reap_idle(&mut self, now: Instant) {
        for (_, conn) in self.conns.iter_mut() {
            conn.expire(now, self.limits.idle);
        }
    }
}
// ANCHOR_END: idle
