//! What each connection's `epoll` entry asks for: added once when the
//! connection is accepted, changed only when what it waits for changes.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use transcript::{Failure, Told, server};

use crate::conn::{Conn, State, Why};
use crate::demo::epoll_flags;
use crate::server::{Limits, Server};

// ANCHOR: interests
impl Server {
    /// Makes each touched connection's entry ask for what it waits for
    /// now, with one `epoll_ctl`, only when that changed. Edge-triggered,
    /// an entry that once asked for `EPOLLOUT` keeps it: it costs nothing
    /// until the buffer fills and empties again.
    pub fn update_interests(&mut self, touched: &[RawFd]) {
        for &fd in touched {
            let Some(conn) = self.conns.get(fd) else { continue };
            let registered = self.registered[fd as usize];
            let mut wanted = interest(conn);
            if self.limits.edge {
                wanted = registered | (wanted & EpollFlags::EPOLLOUT);
            }
            // Nothing to ask for: it closes in this turn.
            if wanted.is_empty() || wanted == registered {
                continue;
            }
            match self.modify(fd, wanted) {
                Ok(()) => self.registered[fd as usize] = wanted,
                Err(err) => {
                    let why = Why::Failed("epoll_ctl", err.into());
                    if let Some(conn) = self.conns.get_mut(fd) {
                        conn.state = State::Dead(why);
                    }
                    self.close(fd);
                }
            }
        }
    }
}

/// The events `epoll` is to watch for on a connection: readable while it
/// takes requests (or lingers, to see the client close), writable only
/// while replies wait: a socket with room in its buffer is writable
/// almost always, and would be reported on every turn.
fn interest(conn: &Conn) -> EpollFlags {
    let mut events = EpollFlags::empty();
    if conn.reads() || matches!(conn.state, State::Lingering(_)) {
        events |= EpollFlags::EPOLLIN;
    }
    if conn.waiting() > 0 {
        events |= EpollFlags::EPOLLOUT;
    }
    events
}
// ANCHOR_END: interests

impl Server {
    /// `epoll_ctl(EPOLL_CTL_MOD)`: what connection `fd` is watched for.
    fn modify(&self, fd: RawFd, wanted: EpollFlags) -> nix::Result<()> {
        let Some(conn) = self.conns.get(fd) else { return Ok(()) };
        let mut asked = EpollEvent::new(wanted, fd as u64);
        let epfd = self.epoll.0.as_raw_fd();
        let what = || format!("fd {fd}, {}", epoll_flags(wanted));
        (self.epoll.modify(conn.stream.as_fd(), &mut asked)).traced(|| {
            server("epoll_ctl").on_fd(epfd).args("EPOLL_CTL_MOD").args(what())
        })
    }
}

/// `flags`, plus `EPOLLET` when the server is edge-triggered.
pub fn trigger(limits: Limits, flags: EpollFlags) -> EpollFlags {
    if limits.edge { flags | EpollFlags::EPOLLET } else { flags }
}

/// `epoll_ctl(EPOLL_CTL_ADD)`: adds `fd` to the interest list, its number
/// as the event's data.
pub fn register(
    epoll: &Epoll,
    fd: impl AsFd,
    flags: EpollFlags,
) -> Result<(), Failure> {
    let number = fd.as_fd().as_raw_fd();
    let epfd = epoll.0.as_raw_fd();
    let what = || format!("fd {number}, {}", epoll_flags(flags));
    (epoll.add(fd, EpollEvent::new(flags, number as u64))).told(|| {
        server("epoll_ctl").on_fd(epfd).args("EPOLL_CTL_ADD").args(what())
    })
}
