//! The demo: three experiments on one timeline, played by one thread. No
//! second thread is needed: the kernel, not `accept`, completes handshakes,
//! and a nonblocking `connect` plus `poll` with a bounded wait lets one
//! thread watch every client.
//!
//! Each call carries its line of the timeline as a suffix, `.told(|| ...)`,
//! which prints only in the demo (see the transcript crate). The
//! experiments, in the order the chapter tells them:
//! - `demo/somaxconn.rs`: `listen` lowers any backlog to somaxconn;
//! - `demo/full_queue.rs`: a full queue makes `connect` wait, not fail, and
//!   accepted connections no longer count;
//! - `demo/newcomer.rs`: the room the server makes goes to whoever asks
//!   first after it appears, not to whoever waited longest.

mod full_queue;
mod newcomer;
mod somaxconn;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::poll::{PollFd, PollFlags};
use socket2::Socket;
use transcript::{
    Call, Failure, OsError, Outcome, Ret, Told, Transcript, client, server,
    tell,
};

use crate::server::{AcceptQueue, accept_queue};

/// What a blocking TCP socket is made with (socket2 adds `SOCK_CLOEXEC`).
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";
/// ... and a nonblocking one, whose `connect` returns at once.
const NONBLOCKING: &str = "AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC";

/// The three experiments, one after the other, on one timeline.
pub fn run(backlog: i32, clients: usize) -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    somaxconn::every_backlog_is_capped()?;
    full_queue::run(backlog, clients)?;
    newcomer::overtakes()
}

/// `getsockopt(TCP_INFO)` on a listener, narrated: its accept queue.
fn queue(listener: &Socket) -> Result<AcceptQueue, Failure> {
    accept_queue(listener)
        .told(|| server("getsockopt").on(listener).args("TCP_INFO"))
}

/// How a transcript shows the accept queue `getsockopt` read.
impl Outcome for AcceptQueue {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        format!("accept queue {}, limit {}", self.waiting, self.limit)
    }
}

/// What `getsockopt(SO_ERROR)` reads after a nonblocking `connect`: how
/// the handshake ended, `None` for success or the errno `connect` would
/// have returned.
struct SoError(Option<io::Error>);

impl Outcome for SoError {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        match &self.0 {
            None => "value 0: connected".to_string(),
            Some(err) => {
                format!("value {}: {}", err.errno_name(), err.detail())
            }
        }
    }
}

/// Reads `SO_ERROR` on a client whose `poll` said its handshake ended; a
/// failed handshake ends the demo, naming `addr`.
fn handshake_ended(socket: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    let status = socket
        .take_error()
        .map(SoError)
        .told(|| client("getsockopt").on(socket).args("SO_ERROR"))?;
    match status.0 {
        None => Ok(()),
        Some(err) => Err(Failure::new(format!("connect {addr}"), err)),
    }
}

/// The line for a `poll` that returned: the descriptors and what each
/// waited for, how long, and which came back ready with what.
fn polled(side: fn(&'static str) -> Call, fds: &[PollFd], wait: &str) -> Call {
    let watched: Vec<String> = fds
        .iter()
        .map(|fd| {
            format!("fd {} {}", fd.as_fd().as_raw_fd(), events(fd.events()))
        })
        .collect();
    let fired: Vec<String> = fds
        .iter()
        .filter_map(|fd| {
            fd.revents().filter(|e| !e.is_empty()).map(|e| (fd, e))
        })
        .map(|(fd, e)| match fds.len() {
            1 => events(e),
            _ => format!("fd {} {}", fd.as_fd().as_raw_fd(), events(e)),
        })
        .collect();
    let line = side("poll").args(format!("[{}], {wait}", watched.join(", ")));
    if fired.is_empty() {
        line.detail("timed out")
    } else {
        line.detail(fired.join(", "))
    }
}

/// Poll flags by name, `POLLOUT|POLLERR`.
fn events(flags: PollFlags) -> String {
    let names = [
        (PollFlags::POLLIN, "POLLIN"),
        (PollFlags::POLLOUT, "POLLOUT"),
        (PollFlags::POLLERR, "POLLERR"),
        (PollFlags::POLLHUP, "POLLHUP"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    set.join("|")
}

/// Closes `fd`, `side`'s: dropping a socket or a file is `close(2)`.
fn close(fd: impl AsRawFd, side: fn(&'static str) -> Call) {
    let raw = fd.as_raw_fd();
    drop(fd);
    tell(|| side("close").on_fd(raw).gave(&()));
}
