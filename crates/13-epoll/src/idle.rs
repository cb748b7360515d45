//! Idle connections: found without looking at every connection each turn.

use std::time::Instant;

use nix::sys::epoll::EpollTimeout;

use crate::server::Server;

impl Server {
    /// How long `epoll_wait` may sleep: until the next idle check (or the
    /// end of an accept pause), or for ever with no connection open. An
    /// accept pause that is over ends here; edge-triggered, no event may
    /// come for clients already waiting, so they are accepted now.
    pub fn timeout(&mut self, now: Instant) -> EpollTimeout {
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
            self.accept_all();
        }
        match self.next_reap.into_iter().chain(self.accept_paused_until).min() {
            None => EpollTimeout::NONE,
            Some(when) => {
                // Rounded up: waking a millisecond early finds nothing due.
                let ms = when
                    .saturating_duration_since(now)
                    .as_micros()
                    .div_ceil(1000);
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            }
        }
    }
}

// ANCHOR: reap_idle
impl Server {
    /// Drops connections idle past the limit. Looking at every connection
    /// each turn would cost as much as `poll` did, so it looks only when
    /// `next_reap` has come, and notes the nearest deadline it saw. A
    /// connection's deadline only moves later as it makes progress, so no
    /// deadline can come before `next_reap` (a new connection lowers it).
    pub fn reap_idle(&mut self, now: Instant) {
        if self.next_reap.is_none_or(|next| now < next) {
            return;
        }
        let mut next: Option<Instant> = None;
        for (fd, conn) in self.conns.iter_mut() {
            match conn.expire(now, self.limits.idle) {
                Some(due) => next = Some(next.map_or(due, |n| n.min(due))),
                None => self.touched.push(fd),
            }
        }
        self.next_reap = next;
    }
}
// ANCHOR_END: reap_idle
