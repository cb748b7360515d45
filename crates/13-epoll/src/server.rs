//! The server: one thread, every socket non-blocking, one `epoll`. Each
//! turn waits in `epoll_wait`, accepts until `EAGAIN`, reads and flushes
//! the connections that are ready, closes what is finished, and changes
//! the `epoll` entries of the connections it touched, and only those.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signalfd::SignalFd;
use socket2::{Domain, Socket, Type};
use transcript::lines::BUSY;
use transcript::process::open_descriptors;
use transcript::{Failure, OrFail, Told, bytes, event, log, server, tell};

use crate::conn::{Conn, RECV_SIZE, State};
use crate::conns::Conns;
use crate::demo::waited;
use crate::interests::{register, trigger};
use crate::shutdown::{self, close};
use crate::spare::{Found, Spare};

/// The listener's queue of connections not yet accepted (lesson 8).
const BACKLOG: i32 = 128;

/// How long accepting pauses when even the spare descriptor is gone.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Events one `epoll_wait` may return; more wait for the next call.
const MAX_EVENTS: usize = 64;

/// What bounds the server, and how it registers sockets.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Open connections at most; the next client is told "server busy".
    pub max_conns: usize,
    /// How long a connection may make no progress before it is closed.
    pub idle: Duration,
    /// Register connections edge-triggered (`EPOLLET`).
    pub edge: bool,
}

/// The event loop's whole state: one thread owns it all.
pub struct Server {
    /// The interest list, in the kernel.
    pub epoll: Epoll,
    /// `None` once the shutdown has begun: no more clients.
    pub listener: Option<Socket>,
    pub local: SocketAddr,
    /// Where the blocked shutdown signals are read from (`shutdown.rs`).
    pub signals: SignalFd,
    /// Held for the day `accept` fails with `EMFILE` (`spare.rs`).
    pub spare: Spare,
    /// Every open connection, by descriptor number.
    pub conns: Conns,
    /// The one buffer every `recv` reads into: a connection keeps only
    /// the bytes that must outlive the call (`conn.rs`).
    pub recv_buf: Box<[u8]>,
    pub limits: Limits,
    /// What each connection's `epoll` entry asks for, by descriptor.
    pub registered: Vec<EpollFlags>,
    /// Descriptors whose connection something happened to in this turn:
    /// only these can need closing or a changed `epoll` entry.
    pub touched: Vec<RawFd>,
    /// No connection can be idle past its limit before this (see
    /// `reap_idle`); `None` with nothing open.
    pub next_reap: Option<Instant>,
    /// Until when accepting pauses because descriptors ran out.
    pub accept_paused_until: Option<Instant>,
    /// The shutdown has begun.
    pub stopping: bool,
    /// A second signal cut the shutdown short.
    pub forced: bool,
}

// ANCHOR: run
/// The real server: serves until a signal or a `shutdown` line, finishes
/// gracefully, and reports what is left open (nothing).
pub fn run(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    let inherited = open_descriptors();
    let mut server = Server::start(addr, limits)?;
    let trigger = if limits.edge { "edge" } else { "level" };
    log!(
        "Listening on {} (at most {} connections, {trigger}-triggered)",
        server.local,
        limits.max_conns
    );
    while !server.finished() {
        server.turn()?;
    }
    let forced = server.stop();
    let left = open_descriptors();
    if left == inherited {
        log!("Shut down: every descriptor it opened is closed");
    } else {
        log!("Shut down: open descriptors {left} (at start: {inherited})");
    }
    match forced {
        true => Err(Failure::new("shutdown", "cut short by a second signal")),
        false => Ok(()),
    }
}
// ANCHOR_END: run

// ANCHOR: start
impl Server {
    /// The signalfd, the listening socket, the spare and the epoll.
    pub fn start(addr: SocketAddr, limits: Limits) -> Result<Server, Failure> {
        let signals = shutdown::signalfd()?;
        // Non-blocking from birth: one flag to socket(), no extra call.
        let listener = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            None,
        )
        .told(|| {
            server("socket")
                .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
        })?;
        // What std's TcpListener::bind does too: a restart can rebind
        // (lesson 7).
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
        // Kept for the day accept fails with EMFILE (see accept_all).
        let spare = Spare::open()?;
        // The interest list lives in the kernel, behind this descriptor.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map(|epoll| epoll.0)
            .told(|| server("epoll_create1").args("EPOLL_CLOEXEC"))?;
        let epoll = Epoll(epoll);
        register(&epoll, &listener, trigger(limits, EpollFlags::EPOLLIN))?;
        // Level-triggered: one signal is read per event, and a second one
        // is reported again until it is read.
        register(&epoll, &signals, EpollFlags::EPOLLIN)?;
        Ok(Server {
            epoll,
            listener: Some(listener),
            local,
            signals,
            spare,
            conns: Conns::default(),
            recv_buf: vec![0; RECV_SIZE].into_boxed_slice(),
            limits,
            registered: Vec::new(),
            touched: Vec::new(),
            next_reap: None,
            accept_paused_until: None,
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
        // can make progress, or the next idle check (man 2 epoll_wait).
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
        let mut shutdown_asked = false;
        for event in ready {
            let fd = event.data() as RawFd;
            if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all();
            } else if fd == self.signals.as_fd().as_raw_fd() {
                self.on_signal();
            } else {
                self.on_ready(fd, event.events(), &mut shutdown_asked);
            }
        }
        if shutdown_asked {
            self.begin_shutdown();
        }
        self.reap_idle(Instant::now());
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
    /// `EAGAIN` says the queue is empty. Edge-triggered, a client left in
    /// the queue would not be reported again.
    pub fn accept_all(&mut self) {
        while let Some(listener) = &self.listener {
            if self.accept_paused_until.is_some() {
                return;
            }
            // The new connection is non-blocking from birth too.
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
                Err(err) if out_of_descriptors(&err) => {
                    match self.spare.refuse_one(listener, err) {
                        Found::Refused => continue,
                        Found::Nobody => return,
                        Found::NoSpare => {
                            let until = Instant::now() + ACCEPT_PAUSE;
                            self.accept_paused_until = Some(until);
                            return;
                        }
                    }
                }
                // One connection failed (reset while queued): not ours.
                Err(err) => {
                    event(format_args!("accept: {err}"));
                    continue;
                }
            };
            let peer = peer.as_socket().unwrap_or(([0, 0, 0, 0], 0).into());
            let stream = TcpStream::from(socket);
            if self.conns.len() >= self.limits.max_conns {
                refuse(stream, peer, self.limits.max_conns);
                continue;
            }
            log!("Connected with {peer}");
            self.admit(stream, peer);
        }
    }
}
// ANCHOR_END: accept_all

impl Server {
    /// Registers a new connection (edge-triggered or not) and keeps it.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let wanted = trigger(self.limits, EpollFlags::EPOLLIN);
        if register(&self.epoll, &stream, wanted).is_err() {
            return close(stream);
        }
        let fd = stream.as_raw_fd();
        let conn = Conn::new(stream, peer);
        // The newest connection's deadline may be the nearest.
        let due = conn.last_progress + self.limits.idle;
        self.next_reap = Some(self.next_reap.map_or(due, |n| n.min(due)));
        self.conns.insert(fd, conn);
        let slot = fd as usize;
        if slot >= self.registered.len() {
            self.registered.resize(slot + 1, EpollFlags::empty());
        }
        self.registered[slot] = wanted;
    }
}

/// `EMFILE` or `ENFILE`: the process or the system is out of descriptors.
fn out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Tells a client over the limit so, and closes.
fn refuse(stream: TcpStream, peer: SocketAddr, max_conns: usize) {
    event(format_args!(
        "{peer}: {max_conns} connections open, the limit: refused"
    ));
    busy(stream);
}

/// Tells a client "server busy", and closes.
pub fn busy(stream: TcpStream) {
    // A new connection's send buffer is empty: this short line fits.
    let _ = (&stream).write(BUSY).traced(|| {
        server("send").on(&stream).args(bytes(BUSY)).args("MSG_NOSIGNAL")
    });
    close(stream);
}

// ANCHOR: on_ready
impl Server {
    /// `epoll_wait` reported something on a connection. Level-triggered:
    /// read once if it is readable, then send what waits. Edge-triggered:
    /// read and send until `EAGAIN` (see `drain`).
    fn on_ready(&mut self, fd: RawFd, events: EpollFlags, asked: &mut bool) {
        // Whatever happens next, the end of the turn looks at it.
        self.touched.push(fd);
        let edge = self.limits.edge;
        let Some(conn) = self.conns.get_mut(fd) else { return };
        let buf = &mut self.recv_buf;
        if edge {
            // Nothing will report again what this event announced.
            return drain(conn, buf, asked);
        }
        // A reset or a hang-up shows as EPOLLERR/EPOLLHUP: recv says which.
        // Level-triggered: one recv is enough; if more is waiting, the
        // next epoll_wait reports this socket again (reading on until
        // EAGAIN would cost a second recv per request).
        let readable =
            EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if events.intersects(readable) {
            match conn.state {
                State::Open if conn.reads() => drop(conn.receive(buf, asked)),
                State::Lingering(_) => drop(conn.discard(buf)),
                _ => {}
            }
        }
        conn.flush();
    }
}
// ANCHOR_END: on_ready

// ANCHOR: drain
/// Edge-triggered: reads until `EAGAIN`, then sends until `EAGAIN`, as
/// nothing will report again what the event announced. Reading stops
/// early while `HIGH_WATER` bytes of replies wait; once they have gone
/// out it reads on, since no event will come for bytes already here.
fn drain(conn: &mut Conn, buf: &mut [u8], asked: &mut bool) {
    if let State::Lingering(_) = conn.state {
        while conn.discard(buf) {}
        return;
    }
    loop {
        let mut more = true;
        while more && conn.reads() {
            more = conn.receive(buf, asked);
        }
        conn.flush();
        // Stopped at EAGAIN or the end, or still too far behind: done.
        if !more || !conn.reads() {
            return;
        }
    }
}
// ANCHOR_END: drain

// ANCHOR: close_finished
impl Server {
    /// Closes the touched connections that are done: dead, or with their
    /// replies out. One whose client may still be sending lingers first.
    fn close_finished(&mut self, touched: &[RawFd]) {
        for &fd in touched {
            let Some(conn) = self.conns.get_mut(fd) else { continue };
            if !conn.finished() {
                continue;
            }
            if let State::Ending { linger: true, .. } = conn.state {
                conn.start_lingering();
                // Edge-triggered, what came before announces nothing.
                while self.limits.edge && conn.discard(&mut self.recv_buf) {}
                if !conn.finished() {
                    continue;
                }
            }
            self.close(fd);
        }
    }

    /// Closes a connection: dropping its socket is `close(2)`, which also
    /// takes it off the interest list.
    pub fn close(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.remove(fd) else { return };
        if self.conns.is_empty() {
            // Nothing left to reap: wait for ever.
            self.next_reap = None;
        }
        if let Some(why) = conn.why() {
            event(format_args!("{}: {why}", conn.peer));
        }
        close(conn.stream);
    }
}
// ANCHOR_END: close_finished
