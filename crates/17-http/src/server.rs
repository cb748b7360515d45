//! The server: lesson 13's loop, level-triggered. One thread, every socket
//! non-blocking, one `epoll`. Each turn waits in `epoll_wait`, accepts
//! until `EAGAIN`, reads and answers the connections that are ready,
//! closes what is finished, and updates the `epoll` entries it touched.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::signalfd::SignalFd;
use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, Told, bytes, event, log, server, tell};

use crate::conn::{Conn, State, Why};
use crate::demo::waited;
use crate::http;
use crate::shutdown::{self, close};

/// The listener's queue of connections not yet accepted (lesson 8).
const BACKLOG: i32 = 128;

/// Events one `epoll_wait` may return; more wait for the next call.
const MAX_EVENTS: usize = 64;

/// What bounds the server.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Open connections at most; the next client is answered 503.
    pub max_conns: usize,
    /// How long a client has to send a whole head, from its first byte.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle: Duration,
}

/// The event loop's whole state: one thread owns it all.
pub struct Server {
    pub epoll: Epoll,
    /// `None` once the shutdown has begun: no more clients.
    pub listener: Option<Socket>,
    pub local: SocketAddr,
    pub signals: SignalFd,
    /// The served directory, canonical: every file served is under it.
    pub root: PathBuf,
    /// Every open connection, by descriptor number.
    pub conns: BTreeMap<RawFd, Conn>,
    pub limits: Limits,
    /// Descriptors something happened to in this turn.
    pub touched: Vec<RawFd>,
    /// No connection's deadline comes before this.
    pub next_reap: Option<Instant>,
    pub stopping: bool,
    pub forced: bool,
}

// ANCHOR: run
/// The real server: serves `root` until a signal, then finishes what is
/// in flight.
pub fn run(
    addr: SocketAddr,
    root: &Path,
    limits: Limits,
) -> Result<(), Failure> {
    let mut server = Server::start(addr, root, limits)?;
    log!(
        "Listening on {} (serving {}, at most {} connections)",
        server.local,
        server.root.display(),
        limits.max_conns
    );
    log!("Open http://{}/ in a browser; Ctrl-C stops", server.local);
    while !server.finished() {
        server.turn()?;
    }
    let forced = server.stop();
    log!("Shut down");
    match forced {
        true => Err(Failure::new("shutdown", "cut short by a second signal")),
        false => Ok(()),
    }
}
// ANCHOR_END: run

// ANCHOR: start
impl Server {
    /// The directory, the signalfd, the listening socket and the epoll.
    pub fn start(
        addr: SocketAddr,
        root: &Path,
        limits: Limits,
    ) -> Result<Server, Failure> {
        // Canonical once: a file is inside if its canonical path starts
        // with this one (files.rs).
        let root = root.canonicalize().map_err(|err| {
            let hint = "build the book first (just book)";
            Failure::new(
                format!("--root {}", root.display()),
                format!("{err}; {hint}"),
            )
        })?;
        let signals = shutdown::signalfd()?;
        let listener = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            None,
        )
        .told(|| {
            server("socket")
                .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
        })?;
        listener.set_reuse_address(true).told(|| {
            server("setsockopt").on(&listener).args("SO_REUSEADDR, 1")
        })?;
        listener
            .bind(&addr.into())
            .told(|| server("bind").on(&listener).args(addr))?;
        listener
            .listen(BACKLOG)
            .told(|| server("listen").on(&listener).args(BACKLOG))?;
        let local = listener.local_addr().or_fail("getsockname")?;
        let local = local
            .as_socket()
            .ok_or(Failure::new("getsockname", "not an IP address"))?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map(|epoll| epoll.0)
            .told(|| server("epoll_create1").args("EPOLL_CLOEXEC"))?;
        let epoll = Epoll(epoll);
        register(&epoll, &listener, EpollFlags::EPOLLIN)?;
        register(&epoll, &signals, EpollFlags::EPOLLIN)?;
        Ok(Server {
            epoll,
            listener: Some(listener),
            local,
            signals,
            root,
            conns: BTreeMap::new(),
            limits,
            touched: Vec::new(),
            next_reap: None,
            stopping: false,
            forced: false,
        })
    }
}
// ANCHOR_END: start

impl Server {
    /// Done: shutting down, and the last connection is closed.
    pub fn finished(&self) -> bool {
        self.stopping && self.conns.is_empty()
    }
}

// ANCHOR: turn
impl Server {
    /// One round of the event loop: wait until a socket is ready, accept
    /// until `EAGAIN`, read and flush the ready connections, then close
    /// what is finished and update what the others ask for.
    pub fn turn(&mut self) -> Result<(), Failure> {
        let timeout = self.timeout(Instant::now());
        let mut events = [EpollEvent::empty(); MAX_EVENTS];
        // The only call in the loop that waits: until one of the sockets
        // can make progress, or the next deadline (man 2 epoll_wait).
        // Only the ready ones come back, at most MAX_EVENTS of them.
        let result = self.epoll.wait(&mut events, timeout);
        tell(|| waited(self, &events, &result, timeout));
        let ready = match result {
            Ok(n) => &events[..n],
            // Our signals are blocked, but a stopped and continued process
            // sees EINTR too (man 7 signal): go round again.
            Err(Errno::EINTR) => return Ok(()),
            Err(err) => {
                return Err(Failure::new("epoll_wait", io::Error::from(err)));
            }
        };
        for event in ready {
            let fd = event.data() as RawFd;
            if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all();
            } else if fd == self.signals.as_fd().as_raw_fd() {
                self.on_signal();
            } else {
                self.on_ready(fd, event.events());
            }
        }
        self.reap(Instant::now());
        // Only the connections this turn touched can have changed: looking
        // at all of them here would make every turn cost as much as the
        // whole list, which is what epoll saves us from.
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        self.close_finished(&touched);
        self.update_interests(&touched);
        touched.clear();
        self.touched = touched;
        Ok(())
    }
}
// ANCHOR_END: turn

// ANCHOR: accept_all
impl Server {
    /// The listener is readable: accept every queued connection, until
    /// `EAGAIN`. One over the limit is answered 503 and closed.
    pub fn accept_all(&mut self) {
        while let Some(listener) = &self.listener {
            let accepted = listener
                .accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                .traced(|| {
                    server("accept")
                        .on(listener)
                        .args("SOCK_NONBLOCK|SOCK_CLOEXEC")
                });
            let (socket, peer) = match accepted {
                Ok(pair) => pair,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                // EMFILE too: lesson 13's spare descriptor is left out
                // here; the connection limit keeps us under the rlimit.
                Err(err) => {
                    event(format_args!("accept: {err}"));
                    return;
                }
            };
            let peer = peer.as_socket().unwrap_or(([0, 0, 0, 0], 0).into());
            let stream = TcpStream::from(socket);
            if self.conns.len() >= self.limits.max_conns {
                busy(stream, peer, self.limits.max_conns);
                continue;
            }
            log!("Connected with {peer}");
            self.admit(stream, peer);
        }
    }

    /// Registers a new connection for reading and keeps it.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let fd = stream.as_raw_fd();
        let mut conn = Conn::new(stream, peer, self.limits);
        if register(&self.epoll, &conn.stream, EpollFlags::EPOLLIN).is_err() {
            return close(conn.stream);
        }
        conn.registered = EpollFlags::EPOLLIN;
        let due = conn.deadline;
        self.next_reap = Some(self.next_reap.map_or(due, |n| n.min(due)));
        self.conns.insert(fd, conn);
    }
}
// ANCHOR_END: accept_all

/// Answers 503 to a client over the limit, and closes.
fn busy(stream: TcpStream, peer: SocketAddr, max_conns: usize) {
    event(format_args!("{peer}: {max_conns} connections open: 503"));
    let reply = http::error(503, true, true);
    // A new connection's send buffer is empty: this short reply fits.
    let _ = (&stream).write(&reply).traced(|| {
        server("send").on(&stream).args(bytes(&reply)).args("MSG_NOSIGNAL")
    });
    close(stream);
}

// ANCHOR: on_ready
impl Server {
    /// `epoll_wait` reported a connection: read once if it is readable,
    /// send what waits, and answer the requests that waited for room.
    fn on_ready(&mut self, fd: RawFd, events: EpollFlags) {
        self.touched.push(fd);
        let (root, limits) = (&self.root, self.limits);
        let Some(conn) = self.conns.get_mut(&fd) else { return };
        let readable =
            EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if events.intersects(readable) {
            match conn.state {
                State::Open if conn.reads() => drop(conn.receive(root, limits)),
                State::Lingering(_) => conn.discard(),
                _ => {}
            }
        }
        conn.flush(limits);
        // Requests held back while replies were over HIGH_WATER.
        while conn.answer(root, limits) {
            conn.flush(limits);
        }
        conn.flush(limits);
    }
}
// ANCHOR_END: on_ready

// ANCHOR: close_finished
impl Server {
    /// Closes the touched connections that are done; one whose client may
    /// still be sending lingers first.
    fn close_finished(&mut self, touched: &[RawFd]) {
        for &fd in touched {
            let Some(conn) = self.conns.get_mut(&fd) else { continue };
            if conn.finished() {
                conn.start_lingering(self.limits);
            }
            if conn.finished() {
                self.close(fd);
            }
        }
    }

    /// Closes a connection: dropping its socket is `close(2)`, which also
    /// takes it off the interest list.
    pub fn close(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.remove(&fd) else { return };
        if let Some(why) = conn.why() {
            event(format_args!("{}: {why}", conn.peer));
        }
        close(conn.stream);
    }
}
// ANCHOR_END: close_finished

// ANCHOR: deadlines
impl Server {
    /// How long `epoll_wait` may sleep: until the nearest deadline, or for
    /// ever with no connection open.
    fn timeout(&self, now: Instant) -> EpollTimeout {
        let Some(when) = self.next_reap else { return EpollTimeout::NONE };
        // Rounded up: waking a millisecond early finds nothing due.
        let ms = when.saturating_duration_since(now).as_micros().div_ceil(1000);
        EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
    }

    /// Expires the connections past their deadline, once the nearest one
    /// has come (lesson 13's `reap_idle`), and notes the next.
    fn reap(&mut self, now: Instant) {
        if self.next_reap.is_none_or(|next| now < next) {
            return;
        }
        let mut next: Option<Instant> = None;
        for (&fd, conn) in self.conns.iter_mut() {
            match conn.expire(now, self.limits) {
                Some(due) => next = Some(next.map_or(due, |n| n.min(due))),
                None => self.touched.push(fd),
            }
        }
        self.next_reap = next;
    }
}
// ANCHOR_END: deadlines

// ANCHOR: interests
impl Server {
    /// Each touched connection's entry asks for what it waits for now,
    /// with one `epoll_ctl`, only when that changed; its deadline may have
    /// come nearer (a head started), so `next_reap` follows it.
    fn update_interests(&mut self, touched: &[RawFd]) {
        for &fd in touched {
            let Some(conn) = self.conns.get_mut(&fd) else { continue };
            let due = conn.deadline;
            self.next_reap = Some(self.next_reap.map_or(due, |n| n.min(due)));
            let mut wanted = EpollFlags::empty();
            if conn.reads() || matches!(conn.state, State::Lingering(_)) {
                wanted |= EpollFlags::EPOLLIN;
            }
            if !conn.out.is_empty() {
                wanted |= EpollFlags::EPOLLOUT;
            }
            if wanted.is_empty() || wanted == conn.registered {
                continue;
            }
            let mut asked = EpollEvent::new(wanted, fd as u64);
            let epfd = self.epoll.0.as_raw_fd();
            let what = format!("fd {fd}, {}", crate::demo::epoll_flags(wanted));
            let changed = (self.epoll.modify(conn.stream.as_fd(), &mut asked))
                .traced(|| {
                    server("epoll_ctl")
                        .on_fd(epfd)
                        .args("EPOLL_CTL_MOD")
                        .args(&what)
                });
            match changed {
                Ok(()) => conn.registered = wanted,
                Err(err) => {
                    conn.state =
                        State::Dead(Why::Failed("epoll_ctl", err.into()));
                    self.close(fd);
                }
            }
        }
    }
}
// ANCHOR_END: interests

/// `epoll_ctl(EPOLL_CTL_ADD)`: adds `fd`, its number as the event's data.
pub fn register(
    epoll: &Epoll,
    fd: impl AsFd,
    flags: EpollFlags,
) -> Result<(), Failure> {
    let number = fd.as_fd().as_raw_fd();
    let epfd = epoll.0.as_raw_fd();
    let what = || format!("fd {number}, {}", crate::demo::epoll_flags(flags));
    (epoll.add(fd, EpollEvent::new(flags, number as u64))).told(|| {
        server("epoll_ctl").on_fd(epfd).args("EPOLL_CTL_ADD").args(what())
    })
}
