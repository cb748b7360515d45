//! The server: one thread, one `epoll`, every client. Each turn waits for
//! the ready descriptors, accepts until `EAGAIN`, reads and answers the
//! ready connections, then closes what is finished and updates what the
//! others ask `epoll` for.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::signalfd::SignalFd;
use socket2::{Domain, Socket, Type};
use transcript::lines::BUSY;
use transcript::process::open_descriptors;
use transcript::{Failure, OrFail, Told, bytes, event, log, server};

use crate::conn::{Conn, State, Why};
use crate::conns::Conns;
use crate::shutdown::{self, close};
use crate::spare::{Found, Spare, accept_call};

/// The listener's queue of connections not yet accepted (lesson 8).
const BACKLOG: i32 = 128;

/// Events one `epoll_wait` may return; more wait for the next call.
const MAX_EVENTS: usize = 64;

/// How long accepting pauses when even the spare descriptor is gone.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What bounds the server, and how it registers sockets.
#[derive(Clone, Copy)]
pub struct Limits {
    pub max_conns: usize,
    pub idle: Duration,
    pub edge: bool,
}

/// The event loop's whole state: one thread owns it all.
pub struct Server {
    pub epoll: Epoll,
    pub listener: Option<Socket>,
    pub local: SocketAddr,
    /// Where the blocked shutdown signals are read from.
    pub signals: SignalFd,
    spare: Spare,
    pub conns: Conns,
    /// What each connection's `epoll` entry asks for, by descriptor.
    registered: Vec<EpollFlags>,
    /// Descriptors whose connection something happened to in this turn:
    /// only these can need closing or a changed `epoll` entry.
    touched: Vec<RawFd>,
    /// No connection can be idle past its limit before this (see
    /// `reap_idle`); `None` with nothing open.
    next_reap: Option<Instant>,
    limits: Limits,
    accept_paused_until: Option<Instant>,
    shutdown_asked: bool,
    stopping: bool,
    /// A second signal closed every connection at once.
    forced: bool,
}

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

impl Server {
    // ANCHOR: start
    /// The signalfd, the listener, the spare descriptor and the epoll.
    pub fn start(addr: SocketAddr, limits: Limits) -> Result<Server, Failure> {
        let signals = shutdown::signalfd()?;
        let domain = Domain::for_address(addr);
        let listener = Socket::new(domain, Type::STREAM.nonblocking(), None)
            .told(|| {
                server("socket")
                    .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
            })?;
        (listener.set_reuse_address(true)).told(|| {
            server("setsockopt").on(&listener).args("SO_REUSEADDR, 1")
        })?;
        listener
            .bind(&addr.into())
            .told(|| server("bind").on(&listener).args(addr))?;
        (listener.listen(BACKLOG))
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
            registered: Vec::new(),
            touched: Vec::new(),
            next_reap: None,
            limits,
            accept_paused_until: None,
            shutdown_asked: false,
            stopping: false,
            forced: false,
        })
    }
    // ANCHOR_END: start

    pub fn finished(&self) -> bool {
        self.stopping && self.conns.is_empty()
    }

    // ANCHOR: turn
    /// One round: wait for ready descriptors, handle each, then close what
    /// is finished and update what the others ask for.
    pub fn turn(&mut self) -> Result<(), Failure> {
        self.resume_accepting();
        let mut events = [EpollEvent::empty(); MAX_EVENTS];
        let ready = self.wait(&mut events)?;
        for event in &events[..ready] {
            let fd = event.data() as RawFd;
            if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all();
            } else if fd == self.signals.as_raw_fd() {
                self.on_signal();
            } else {
                self.on_ready(fd, event.events());
            }
        }
        if std::mem::take(&mut self.shutdown_asked) {
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
    // ANCHOR_END: turn

    // ANCHOR: wait
    /// The only call in the loop that waits: until a descriptor can make
    /// progress, or the next idle check (`man 2 epoll_wait`). Only the
    /// ready ones come back, at most `MAX_EVENTS` of them.
    fn wait(&self, events: &mut [EpollEvent]) -> Result<usize, Failure> {
        let timeout = self.timeout(Instant::now());
        let got = self.epoll.wait(events, timeout);
        let (epfd, idle) = (self.epoll.0.as_raw_fd(), self.limits.idle);
        transcript::tell(|| {
            let shown = match timeout == EpollTimeout::NONE {
                true => "-1".to_string(),
                false => format!("≤{}", idle.as_millis()),
            };
            waited(epfd, MAX_EVENTS, &shown, events, &got)
        });
        match got {
            Ok(n) => Ok(n),
            // Our signals are blocked, but a stopped and continued process
            // sees EINTR too (man 7 signal): go round again.
            Err(Errno::EINTR) => Ok(0),
            Err(err) => Err(Failure::new("epoll_wait", io::Error::from(err))),
        }
    }
    // ANCHOR_END: wait

    /// Until the next idle check or the end of an accept pause, or for ever
    /// with nothing open.
    fn timeout(&self, now: Instant) -> EpollTimeout {
        match self.next_reap.into_iter().chain(self.accept_paused_until).min() {
            None => EpollTimeout::NONE,
            Some(when) => {
                let wait = when.saturating_duration_since(now);
                let ms = wait.as_micros().div_ceil(1000);
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            }
        }
    }

    // ANCHOR: accept_all
    /// The listener is ready: accept until `EAGAIN`. Edge-triggered, a
    /// client left in the queue would not be reported again.
    pub fn accept_all(&mut self) {
        while let Some(listener) = &self.listener {
            if self.accept_paused_until.is_some() {
                return;
            }
            let (socket, peer) = match listener
                .accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                .traced(|| accept_call(listener))
            {
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
                // One client's trouble (ECONNABORTED...), not the server's.
                Err(err) => {
                    event(format_args!("accept: {err}"));
                    continue;
                }
            };
            let peer = peer.as_socket().unwrap_or(([0, 0, 0, 0], 0).into());
            self.admit(TcpStream::from(socket), peer);
        }
    }
    // ANCHOR_END: accept_all

    /// A new connection: registered and kept, or told there is no room.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.conns.len() >= self.limits.max_conns {
            let max = self.limits.max_conns;
            event(format_args!(
                "{peer}: {max} connections open, the limit: refused"
            ));
            return refuse(stream);
        }
        log!("Connected with {peer}");
        let wanted = trigger(self.limits, EpollFlags::EPOLLIN);
        if register(&self.epoll, &stream, wanted).is_err() {
            return refuse(stream);
        }
        let fd = stream.as_raw_fd();
        let conn = Conn::new(stream, peer);
        // The newest connection's deadline may be the nearest.
        let deadline = conn.last_progress + self.limits.idle;
        self.next_reap =
            Some(self.next_reap.map_or(deadline, |n| n.min(deadline)));
        self.conns.insert(fd, conn);
        let i = fd as usize;
        if i >= self.registered.len() {
            self.registered.resize(i + 1, EpollFlags::empty());
        }
        self.registered[i] = wanted;
    }

    /// After the pause that running out of descriptors without a spare
    /// caused, accept again; with edge triggering no event may come for
    /// clients already waiting, so look for them now.
    fn resume_accepting(&mut self) {
        if self.accept_paused_until.is_some_and(|t| Instant::now() >= t) {
            self.accept_paused_until = None;
            self.accept_all();
        }
    }

    // ANCHOR: on_ready
    /// `epoll_wait` reported a connection: read what it sent, send what
    /// waits for it.
    fn on_ready(&mut self, fd: RawFd, flags: EpollFlags) {
        // Whatever happens next, the end of the turn looks at it.
        self.touched.push(fd);
        let edge = self.limits.edge;
        let Some(conn) = self.conns.get_mut(fd) else { return };
        match conn.state {
            State::Dead(_) => return,
            State::Lingering(_) => {
                // Edge-triggered, until EAGAIN: no event comes again.
                while conn.discard() && edge {}
                return;
            }
            State::Open | State::Ending { .. } => {}
        }
        if edge {
            // Nothing will report again what this event announced.
            return drain(conn, &mut self.shutdown_asked);
        }
        // A reset or a hang-up shows as EPOLLERR/EPOLLHUP: recv says which.
        let readable =
            EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if flags.intersects(readable) && conn.reads() {
            // Level-triggered, one recv per event is enough: whatever it
            // leaves is reported by the next epoll_wait. Reading on until
            // EAGAIN would cost a second recv for every request.
            conn.receive(&mut self.shutdown_asked);
        }
        conn.flush();
    }
    // ANCHOR_END: on_ready

    // ANCHOR: on_signal
    /// The signalfd is readable: a shutdown signal is waiting to be read.
    fn on_signal(&mut self) {
        let Some(name) = shutdown::read(&self.signals) else { return };
        if !self.stopping {
            event(format_args!(
                "{name}: stop accepting, answer what has arrived, then close"
            ));
            return self.begin_shutdown();
        }
        // A second signal while clients hold the shutdown up: close them
        // all now. The loop still ends through `stop`, which closes the
        // rest and reports what is left open.
        event(format_args!("{name} again: closing every connection now"));
        self.forced = true;
        for (fd, conn) in self.conns.iter_mut() {
            conn.kill();
            self.touched.push(fd);
        }
    }
    // ANCHOR_END: on_signal

    // ANCHOR: begin_shutdown
    /// Stops accepting and ends every connection's input: what has arrived
    /// is answered, then each connection closes, lingering, as its replies
    /// go out.
    fn begin_shutdown(&mut self) {
        if std::mem::replace(&mut self.stopping, true) {
            return;
        }
        // Clients in the listener's queue think they are connected (lesson
        // 8): take them, rather than reset them by closing the listener.
        self.accept_all();
        // Closing it also removes it from the interest list (man 7 epoll).
        if let Some(listener) = self.listener.take() {
            close(listener);
        }
        for fd in self.conns.fds() {
            self.touched.push(fd);
            let Some(conn) = self.conns.get_mut(fd) else { continue };
            // Read what has arrived, until EAGAIN: it will be answered.
            while conn.reads() && conn.receive(&mut self.shutdown_asked) {}
            conn.end_input();
            conn.flush();
        }
    }
    // ANCHOR_END: begin_shutdown

    // ANCHOR: reap_idle
    /// Drops connections idle past the limit. Looking at every connection
    /// each turn would cost as much as `poll` did, so it looks only when
    /// `next_reap` has come, and notes the nearest deadline it saw. A
    /// connection's deadline only moves later as it makes progress, so no
    /// deadline can come before `next_reap` (a new connection lowers it).
    fn reap_idle(&mut self, now: Instant) {
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
    // ANCHOR_END: reap_idle

    // ANCHOR: close_finished
    /// Closes the touched connections that are finished. One that may
    /// still be receiving (a line too long, the shutdown) lingers first.
    fn close_finished(&mut self, touched: &[RawFd]) {
        for &fd in touched {
            let Some(conn) = self.conns.get_mut(fd) else { continue };
            if !conn.finished() {
                continue;
            }
            if let State::Ending { linger: true, .. } = conn.state {
                conn.start_lingering();
                // Edge-triggered, what came before announces nothing.
                while self.limits.edge && conn.discard() {}
                if !conn.finished() {
                    continue;
                }
            }
            self.close(fd);
        }
    }
    // ANCHOR_END: close_finished

    /// Closes a connection: closing a socket also takes it off the
    /// interest list.
    fn close(&mut self, fd: RawFd) {
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

    // ANCHOR: interests
    /// Makes each touched connection's `epoll` entry ask for what it needs
    /// now. Level-triggered: `EPOLLIN` while it reads, `EPOLLOUT` only
    /// while replies wait for room (a socket with room is writable almost
    /// always, and would be reported on every turn). Edge-triggered, an
    /// entry that once asked for `EPOLLOUT` keeps it: it costs nothing
    /// until the kernel's buffer fills and empties again.
    fn update_interests(&mut self, touched: &[RawFd]) {
        let (edge, epfd) = (self.limits.edge, self.epoll.0.as_raw_fd());
        for &fd in touched {
            let Some(conn) = self.conns.get_mut(fd) else { continue };
            let registered = self.registered[fd as usize];
            let mut wanted =
                if edge { registered } else { EpollFlags::empty() };
            if !edge
                && (conn.reads() || matches!(conn.state, State::Lingering(_)))
            {
                wanted |= EpollFlags::EPOLLIN;
            }
            if !conn.out.is_empty() {
                wanted |= EpollFlags::EPOLLOUT;
            }
            // Nothing to ask for: it closes in this turn.
            if wanted.is_empty() || wanted == registered {
                continue;
            }
            let mut asked = EpollEvent::new(wanted, fd as u64);
            let changed = (self.epoll.modify(conn.stream.as_fd(), &mut asked))
                .traced(|| {
                    let what = format!("fd {fd}, {}", epoll_flags(wanted));
                    server("epoll_ctl")
                        .on_fd(epfd)
                        .args("EPOLL_CTL_MOD")
                        .args(what)
                });
            match changed {
                Ok(()) => self.registered[fd as usize] = wanted,
                Err(err) => {
                    let why = Why::Failed("epoll_ctl", err.into());
                    conn.state = State::Dead(why);
                    self.close(fd);
                }
            }
        }
    }
    // ANCHOR_END: interests

    /// After the loop: the signalfd, the spare and the epoll descriptor
    /// go. Returns whether a second signal cut the shutdown short.
    pub fn stop(self) -> bool {
        close(self.signals);
        self.spare.close();
        close(self.epoll.0);
        self.forced
    }
}

// ANCHOR: drain
/// Edge-triggered: reads until `EAGAIN`, then sends until `EAGAIN`, as
/// nothing will report again what the event announced. Reading stops early
/// while `HIGH_WATER` bytes of replies wait; once they have gone out it
/// reads on, since no event will come for bytes that already arrived.
fn drain(conn: &mut Conn, shutdown_asked: &mut bool) {
    loop {
        let mut more = true;
        while more && conn.reads() {
            more = conn.receive(shutdown_asked);
        }
        conn.flush();
        // Stopped at EAGAIN or the end, or still too far behind: done.
        if !more || !conn.reads() {
            return;
        }
    }
}
// ANCHOR_END: drain

/// `flags`, plus `EPOLLET` when the server is edge-triggered.
fn trigger(limits: Limits, flags: EpollFlags) -> EpollFlags {
    if limits.edge { flags | EpollFlags::EPOLLET } else { flags }
}

/// `EMFILE` (this process's limit) or `ENFILE` (the system's). std has no
/// stable `ErrorKind` for them: match the number.
fn out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// Adds `fd` to `epoll`'s interest list, its number as the event's data.
pub fn register(
    epoll: &Epoll,
    fd: impl AsFd,
    flags: EpollFlags,
) -> Result<(), Failure> {
    let number = fd.as_fd().as_raw_fd();
    let what = || format!("fd {number}, {}", epoll_flags(flags));
    (epoll.add(fd, EpollEvent::new(flags, number as u64))).told(|| {
        let epfd = epoll.0.as_raw_fd();
        server("epoll_ctl").on_fd(epfd).args("EPOLL_CTL_ADD").args(what())
    })
}

/// Tells a client there is no room for it, and closes.
pub fn refuse(stream: TcpStream) {
    // A new connection's send buffer is empty: this short line fits.
    let _ = (&stream).write(BUSY).traced(|| {
        server("send").on(&stream).args(bytes(BUSY)).args("MSG_NOSIGNAL")
    });
    close(stream);
}

/// An `epoll_wait` line and what it returned:
/// `epoll_wait(fd 6, 64, -1) = 1  (fd 4: EPOLLIN)`.
pub fn waited(
    epfd: RawFd,
    max: usize,
    timeout: &str,
    events: &[EpollEvent],
    got: &nix::Result<usize>,
) -> transcript::Call {
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
