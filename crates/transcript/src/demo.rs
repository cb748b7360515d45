//! What the demos of the many-client lessons (10 to 13, and 17) share:
//! the demo clients' calls, each narrated in the client column, a bounded
//! wait for the events a server's turn is to handle, and how an
//! `epoll_wait` line is printed. Demo peers and pacing only: every socket
//! call of a lesson's *server* stays in the lesson.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{EpollEvent, EpollFlags};
use socket2::{Domain, SockRef, Socket, Type};

use crate::process::open_fds;
use crate::{
    Call, Failure, OrFail, Said, Told, bytes, client, client_note, duration,
    server, tell,
};

/// How much a demo client's `recv` asks for.
pub const RECV_SIZE: usize = 4096;

/// The longest the demo waits for an event it is about to show.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// How long the demo waits for a server thread to report before it gives
/// up: far longer than any step takes, so it only ends a hang.
pub const REPORT_WAIT: Duration = Duration::from_secs(10);

/// The narration of each thread (or pool's job) the server starts, in
/// order: what `crate::threads` gives.
pub type Threads = Receiver<Receiver<Said>>;

/// A demo client's socket, introduced by its name (blocking: the clients
/// are ordinary programs).
pub fn socket(name: &str) -> Result<TcpStream, Failure> {
    client_note(format_args!("client {name}"));
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    Ok(TcpStream::from(socket))
}

pub fn connect(stream: &TcpStream, addr: SocketAddr) -> Result<(), Failure> {
    SockRef::from(stream)
        .connect(&addr.into())
        .told(|| client("connect").on(stream).args(addr))
}

/// One `send` of all of `data`; a short one is a failure of the demo.
pub fn send(stream: &TcpStream, data: &[u8]) -> Result<(), Failure> {
    let sent = (&*stream).write(data).told(|| {
        client("send").on(stream).args(bytes(data)).args("MSG_NOSIGNAL")
    })?;
    if sent < data.len() {
        return Err(Failure::new("send", format!("only {sent} bytes sent")));
    }
    Ok(())
}

/// One `recv`, of what has arrived (at most `RECV_SIZE` bytes).
pub fn recv(stream: &TcpStream) -> Result<Vec<u8>, Failure> {
    let mut buf = [0u8; RECV_SIZE];
    let n = (&*stream)
        .read(&mut buf)
        .told(|| client("recv").on(stream).args(RECV_SIZE).data(&buf))?;
    Ok(buf[..n].to_vec())
}

/// One `recv` on a socket with a read timeout; `None` when it timed out
/// (`WouldBlock` on Linux, `TimedOut` on some other systems: lesson 9).
pub fn recv_or_timeout(stream: &TcpStream) -> Result<Option<Vec<u8>>, Failure> {
    let mut buf = [0u8; RECV_SIZE];
    match (&*stream)
        .read(&mut buf)
        .traced(|| client("recv").on(stream).args(RECV_SIZE).data(&buf))
    {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(err) if is_timeout(&err) => Ok(None),
        Err(err) => Err(Failure::new("recv", err)),
    }
}

/// Gives a demo client's socket a read timeout of `patience` and makes
/// one `recv`: whether a reply came within it.
pub fn answered_within(
    stream: &TcpStream,
    patience: Duration,
) -> Result<bool, Failure> {
    let shown = duration(patience);
    stream.set_read_timeout(Some(patience)).told(|| {
        client("setsockopt")
            .on(stream)
            .args(format_args!("SO_RCVTIMEO, {shown}"))
    })?;
    Ok(recv_or_timeout(stream)?.is_some())
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Closes a demo client's socket: dropping it is `close(2)`.
pub fn close_client(stream: TcpStream) {
    let fd = stream.as_raw_fd();
    drop(stream);
    tell(|| client("close").on_fd(fd).gave(&()));
}

/// Prints the next `n` pieces of a server thread's narration.
pub fn show(said: &Receiver<Said>, n: usize) -> Result<(), Failure> {
    for _ in 0..n {
        said.recv_timeout(REPORT_WAIT)
            .map_err(|_| Failure::new("demo", "a server thread fell silent"))?
            .show();
    }
    Ok(())
}

/// The narration of the next thread (or job) the server started.
pub fn next_thread(threads: &Threads) -> Result<Receiver<Said>, Failure> {
    threads
        .recv_timeout(REPORT_WAIT)
        .map_err(|_| Failure::new("demo", "no thread or job was started"))
}

/// Waits for a thread of the demo's and takes what it returned.
pub fn joined<T>(thread: JoinHandle<T>) -> Result<T, Failure> {
    thread.join().map_err(|_| Failure::new("demo", "a thread panicked"))
}

/// The number the next descriptor would get: the lowest one not open
/// (`man 2 open`).
pub fn lowest_free_descriptor() -> Result<RawFd, Failure> {
    let open = open_fds().or_fail("read /proc/self/fd")?;
    Ok((0..).find(|n| open.binary_search(n).is_err()).unwrap_or(0))
}

/// What `poll` with a timeout of 0 reports now for `fd`: a look that
/// changes nothing (not even epoll's edge-triggered state).
pub fn peek(fd: BorrowedFd<'_>, events: PollFlags) -> PollFlags {
    let mut asked = [PollFd::new(fd, events)];
    match poll(&mut asked, PollTimeout::ZERO) {
        Ok(1) => asked[0].revents().unwrap_or(PollFlags::empty()),
        _ => PollFlags::empty(),
    }
}

/// Waits (bounded by `SETTLE_LIMIT`) until each descriptor in `expected`
/// reports its events to a `peek`: pacing for the demo, not part of the
/// server. `find` lends the server's descriptor of that number.
pub fn settle<'a>(
    expected: &[(RawFd, PollFlags)],
    find: impl Fn(RawFd) -> Option<BorrowedFd<'a>>,
) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    for &(fd, events) in expected {
        let Some(borrowed) = find(fd) else {
            let why = format!("fd {fd} is not the server's");
            return Err(Failure::new("demo", why));
        };
        while !peek(borrowed, events).contains(events) {
            if Instant::now() > deadline {
                let why = format!("fd {fd} never became ready");
                return Err(Failure::new("demo", why));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// An `epoll_wait` line and what it returned:
/// `epoll_wait(fd 6, 64, -1) = 1  (fd 4: EPOLLIN)`.
pub fn wait_line(
    epfd: RawFd,
    max: usize,
    timeout: &str,
    events: &[EpollEvent],
    got: &nix::Result<usize>,
) -> Call {
    let ready = &events[..*got.as_ref().unwrap_or(&0)];
    let call = server("epoll_wait").on_fd(epfd).args(max).args(timeout);
    let call = call.returned(got);
    if ready.is_empty() {
        return call;
    }
    let shown: Vec<String> = ready
        .iter()
        .map(|e| format!("fd {}: {}", e.data(), epoll_flags(e.events())))
        .collect();
    call.detail(shown.join("; "))
}

/// `EPOLLIN|EPOLLET`, as strace prints them.
pub fn epoll_flags(flags: EpollFlags) -> String {
    let names = [
        (EpollFlags::EPOLLIN, "EPOLLIN"),
        (EpollFlags::EPOLLOUT, "EPOLLOUT"),
        (EpollFlags::EPOLLRDHUP, "EPOLLRDHUP"),
        (EpollFlags::EPOLLERR, "EPOLLERR"),
        (EpollFlags::EPOLLHUP, "EPOLLHUP"),
        (EpollFlags::EPOLLET, "EPOLLET"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() { "0".to_string() } else { set.join("|") }
}
