//! What each connection's `poll` entry asks for: built anew every turn, in
//! the list `poll` is given.

use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags};

use crate::conn::{Conn, State};
use crate::server::Server;

// ANCHOR: watch_list
impl Server {
    /// What `poll` is to watch this turn: the listener (unless accepting
    /// pauses), the self-pipe, and each connection for what it waits for.
    pub fn watch_list(&self) -> Vec<PollFd<'_>> {
        let mut watched = Vec::with_capacity(self.conns.len() + 2);
        if let (None, Some(listener)) =
            (self.accept_paused_until, &self.listener)
        {
            watched.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        watched.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        for (_, conn) in self.conns.iter() {
            watched.push(PollFd::new(conn.stream.as_fd(), interest(conn)));
        }
        watched
    }
}

/// The events `poll` is to watch for on a connection: readable while it
/// takes requests (or lingers, to see the client close), writable only
/// while replies wait: a socket with room in its buffer is writable
/// almost always, and would be reported on every turn.
fn interest(conn: &Conn) -> PollFlags {
    let mut events = PollFlags::empty();
    if conn.reads() || matches!(conn.state, State::Lingering(_)) {
        events |= PollFlags::POLLIN;
    }
    if !conn.out.is_empty() {
        events |= PollFlags::POLLOUT;
    }
    events
}
// ANCHOR_END: watch_list
