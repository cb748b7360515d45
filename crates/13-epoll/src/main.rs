//! # Lesson 13: `epoll`, level- and edge-triggered
//!
//! The idea: the same one-thread server as lesson 12, on `epoll`. The list
//! of sockets to watch lives in the kernel: `epoll_ctl` adds, changes or
//! removes one entry, and `epoll_wait` returns only the sockets that are
//! ready, however many are watched. Each entry is level-triggered (reported
//! for as long as it is ready, like `poll`) or edge-triggered (`EPOLLET`:
//! reported when something new happens). With edge triggering a loop must
//! drain every ready socket until `EAGAIN`, the listener included: bytes or
//! connections left behind are not reported again.
//!
//! What was missing before: `poll` passes the whole list on every call and
//! the kernel walks all of it, even when one socket is ready. Lesson 12 also
//! needed a signal handler and a self-pipe for Ctrl-C, and when `accept`
//! failed with `EMFILE` (out of descriptors) it could only stop watching the
//! listener for a while. Here the shutdown signals are read from a
//! `signalfd` in the same `epoll`, and a spare descriptor, kept open for the
//! purpose, lets the server accept and refuse the client it has no room for.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use socket2::{Domain, SockRef, Socket, Type};
use transcript::cli::{at_least_one, seconds};
use transcript::lines::{
    BUSY, Lines, MAX_LINE, TOO_LONG, TooLong, is_shutdown, reply,
};
use transcript::process::{log, open_descriptors, open_fds};
use transcript::{
    Call, Failure, OrFail, Outcome, Ret, Transcript, bytes, call, duration,
    received,
};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// Replies a connection may have waiting before the server stops reading
/// its requests (lesson 12).
const HIGH_WATER: usize = 64 * 1024;

/// The listener's queue of connections not yet accepted (lesson 8).
const BACKLOG: i32 = 128;

/// Events one `epoll_wait` may return; more wait for the next call.
const MAX_EVENTS: usize = 64;

/// How long accepting pauses when even the spare descriptor is gone.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The demo's idle limit: long enough that no step comes near it.
const DEMO_IDLE: Duration = Duration::from_secs(10);

/// The longest the demo waits for an event it is about to show.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "lesson-13",
    bin_name = "lesson-13",
    about = "Lesson 13: epoll, level- and edge-triggered, with a signalfd shutdown and EMFILE handled"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// One read per event under both triggers, the server edge-triggered, EMFILE, then Ctrl-C (the default)
    Demo,
    /// Serve every client from one thread with epoll, until Ctrl-C or a `shutdown` line
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Open connections at most; the next client is told "server busy"
        #[arg(long, default_value_t = 1024)]
        max_conns: usize,
        /// Seconds a connection may make no progress (nothing read, nothing written) before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
        /// Register sockets edge-triggered (EPOLLET) instead of level-triggered
        #[arg(long)]
        edge: bool,
    },
}

/// What bounds the server, and how it registers sockets.
#[derive(Clone, Copy)]
struct Limits {
    max_conns: usize,
    idle: Duration,
    edge: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-13", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, max_conns, idle, edge }) => {
            let limits = Limits {
                max_conns: at_least_one("--max-conns", max_conns)?,
                idle: seconds("--idle", idle)?,
                edge,
            };
            server(addr, limits)
        }
    })
}

/// The real server: serves until a signal or a `shutdown` line, finishes
/// gracefully, and reports what is left open (nothing).
fn server(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    let inherited = open_descriptors();
    let mut server = Server::start(addr, limits, Say::server_log())?;
    let trigger = if limits.edge { "edge" } else { "level" };
    log(format_args!(
        "Listening on {} (at most {} connections, {trigger}-triggered)",
        server.local, limits.max_conns
    ));
    while !server.finished() {
        server.turn()?;
    }
    server.stop();
    let left = open_descriptors();
    if left == inherited {
        log(format_args!("Shut down: every descriptor it opened is closed"));
    } else {
        log(format_args!(
            "Shut down: open descriptors {left} (at start: {inherited})"
        ));
    }
    Ok(())
}

/// SIGINT is Ctrl-C; SIGTERM is what `kill` and service managers send.
fn shutdown_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// A descriptor just created, for a transcript line (`= fd 5`).
struct NewFd(RawFd);

impl Outcome for NewFd {
    fn ret(&self) -> Ret {
        Ret::Fd(self.0)
    }
}

/// One client's connection, as the event loop keeps it.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    lines: Lines,
    /// Replies the kernel has not taken yet (lesson 12).
    out: Vec<u8>,
    /// The kernel refused the last `send`: wait for `EPOLLOUT`.
    blocked: bool,
    /// Reading stopped because too many replies wait (`HIGH_WATER`).
    paused: bool,
    /// No more requests will be read.
    reading_done: bool,
    dead: Option<String>,
    ending: String,
    /// It ended on a line too long, and the client may still be sending:
    /// close only after a lingering close (lessons 10 and 12).
    linger_first: bool,
    /// FIN sent after the replies; what still comes is read and dropped
    /// until the client closes its side or the idle limit passes.
    lingering: bool,
    last_progress: Instant,
    bytes_in: usize,
    /// The events its `epoll` entry asks for now.
    registered: EpollFlags,
}

/// The open connections, found by descriptor number. The kernel gives each
/// new descriptor the lowest number free (`man 2 open`), so the numbers
/// stay dense, and a `Vec` indexed by them costs one slot per connection:
/// no tree node or hash bucket around each one.
#[derive(Default)]
struct Conns {
    slots: Vec<Option<Conn>>,
    open: usize,
}

impl Conns {
    fn get(&self, fd: RawFd) -> Option<&Conn> {
        self.slots.get(usize::try_from(fd).ok()?)?.as_ref()
    }

    fn get_mut(&mut self, fd: RawFd) -> Option<&mut Conn> {
        self.slots.get_mut(usize::try_from(fd).ok()?)?.as_mut()
    }

    fn insert(&mut self, fd: RawFd, conn: Conn) {
        let Ok(i) = usize::try_from(fd) else { return };
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(conn).is_none() {
            self.open += 1;
        }
    }

    fn remove(&mut self, fd: RawFd) -> Option<Conn> {
        let conn = self.slots.get_mut(usize::try_from(fd).ok()?)?.take()?;
        self.open -= 1;
        Some(conn)
    }

    fn len(&self) -> usize {
        self.open
    }

    fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Every connection, by ascending descriptor number.
    fn iter(&self) -> impl Iterator<Item = (RawFd, &Conn)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i as RawFd, c.as_ref()?)))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (RawFd, &mut Conn)> {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| Some((i as RawFd, c.as_mut()?)))
    }
}

/// What one `recv` brought.
enum Received {
    Bytes,
    End,
    Nothing,
    Failed,
}

/// The event loop's whole state: one thread owns it all.
struct Server {
    epoll: Epoll,
    listener: Option<Socket>,
    local: SocketAddr,
    /// Where the blocked shutdown signals are read from.
    signals: SignalFd,
    /// An open descriptor kept spare, to be given up when `accept` fails
    /// with `EMFILE`, so the client can be accepted and told.
    spare: Option<File>,
    conns: Conns,
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
    last_accepted: Option<RawFd>,
    say: Say,
}

impl Server {
    /// The signalfd, the listener, the spare descriptor and the epoll.
    fn start(
        addr: SocketAddr,
        limits: Limits,
        mut say: Say,
    ) -> Result<Server, Failure> {
        // ANCHOR: start
        // Blocked signals are not delivered; they wait, and a signalfd
        // hands them out as data to read (man 2 signalfd). Blocked before
        // any thread exists, so no thread takes them the old way.
        let blocked = shutdown_signals().thread_block();
        say.call(|| {
            call("sigprocmask")
                .args("SIG_BLOCK, [SIGINT SIGTERM]")
                .returned(&blocked)
        });
        blocked.or_fail("sigprocmask")?;
        let signals = SignalFd::with_flags(
            &shutdown_signals(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        );
        say.call(|| {
            let made = call("signalfd")
                .args("-1, [SIGINT SIGTERM], SFD_NONBLOCK|SFD_CLOEXEC");
            match &signals {
                Ok(fd) => made.gave(&NewFd(fd.as_raw_fd())),
                Err(err) => made.failed(err),
            }
        });
        let signals = signals.or_fail("signalfd")?;

        let listener = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            None,
        );
        say.call(|| {
            call("socket")
                .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
                .returned(&listener)
        });
        let listener = listener.or_fail("socket")?;
        let reuse = listener.set_reuse_address(true);
        say.call(|| {
            call("setsockopt")
                .on(&listener)
                .args("SO_REUSEADDR, 1")
                .returned(&reuse)
        });
        reuse.or_fail("setsockopt SO_REUSEADDR")?;
        let bound = listener.bind(&addr.into());
        say.call(|| call("bind").on(&listener).args(addr).returned(&bound));
        bound.or_fail(format!("bind {addr}"))?;
        let listening = listener.listen(BACKLOG);
        say.call(|| {
            call("listen").on(&listener).args(BACKLOG).returned(&listening)
        });
        listening.or_fail("listen")?;
        let local = listener.local_addr().or_fail("getsockname")?;
        let local = local
            .as_socket()
            .ok_or(Failure::new("getsockname", "not an IP address"))?;

        // Kept for the day accept fails with EMFILE (see accept_all).
        let spare = File::open("/dev/null");
        say.call(|| {
            call("open")
                .args("\"/dev/null\", O_RDONLY|O_CLOEXEC")
                .returned(&spare)
        });
        let spare = spare.or_fail("open /dev/null")?;

        // The interest list lives in the kernel, behind this descriptor.
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC);
        say.call(|| {
            let made = call("epoll_create1").args("EPOLL_CLOEXEC");
            match &epoll {
                Ok(epoll) => made.gave(&NewFd(epoll.0.as_raw_fd())),
                Err(err) => made.failed(err),
            }
        });
        let epoll = epoll.or_fail("epoll_create1")?;
        let mut server = Server {
            epoll,
            listener: None,
            local,
            signals,
            spare: Some(spare),
            conns: Conns::default(),
            touched: Vec::new(),
            next_reap: None,
            limits,
            accept_paused_until: None,
            shutdown_asked: false,
            stopping: false,
            last_accepted: None,
            say,
        };
        let flags = server.trigger(EpollFlags::EPOLLIN);
        server.register(&listener, flags)?;
        server.listener = Some(listener);
        // Level-triggered: one signal is read per event, and a second one
        // is reported again until it is read.
        register(
            &server.epoll,
            &mut server.say,
            &server.signals,
            EpollFlags::EPOLLIN,
        )?;
        // ANCHOR_END: start
        Ok(server)
    }

    /// `flags`, plus `EPOLLET` when the server is edge-triggered.
    fn trigger(&self, flags: EpollFlags) -> EpollFlags {
        if self.limits.edge { flags | EpollFlags::EPOLLET } else { flags }
    }

    /// Adds a descriptor to the interest list, its number as the event's data.
    fn register(
        &mut self,
        fd: impl AsFd,
        flags: EpollFlags,
    ) -> Result<(), Failure> {
        register(&self.epoll, &mut self.say, fd, flags)
    }

    fn finished(&self) -> bool {
        self.stopping && self.conns.is_empty()
    }

    /// One round: wait for ready sockets, handle each, close what is
    /// finished, update what the others ask for.
    fn turn(&mut self) -> Result<(), Failure> {
        // ANCHOR: turn
        let now = Instant::now();
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            // The pause is over; with edge triggering no event may come for
            // clients already waiting, so look for them now.
            self.accept_paused_until = None;
            self.accept_all();
        }
        let timeout = self.timeout(now);
        let mut events = [EpollEvent::empty(); MAX_EVENTS];
        // The only call in the loop that waits: until one of the sockets can
        // make progress, or the next idle check (man 2 epoll_wait). Only
        // the ready ones come back, at most MAX_EVENTS of them.
        let result = self.epoll.wait(&mut events, timeout);
        let ready: Vec<(RawFd, EpollFlags)> = events
            [..*result.as_ref().unwrap_or(&0)]
            .iter()
            .map(|e| (e.data() as RawFd, e.events()))
            .collect();
        let epfd = self.epoll.0.as_raw_fd();
        let idle = self.limits.idle;
        self.say.call(|| {
            let got: Vec<String> = ready
                .iter()
                .map(|(fd, f)| format!("fd {fd}: {}", epoll_flags(*f)))
                .collect();
            let timeout = if timeout == EpollTimeout::NONE {
                "-1".to_string()
            } else {
                format!("≤{}", idle.as_millis())
            };
            let shown = call("epoll_wait")
                .on_fd(epfd)
                .args(format!("{MAX_EVENTS}, {timeout}"));
            let shown = shown.returned(&result.map(|n| n as i64));
            if got.is_empty() { shown } else { shown.detail(got.join("; ")) }
        });
        match result {
            Ok(_) => {}
            // Our signals are blocked, but a stopped and continued process
            // sees EINTR too (man 7 signal): go round again.
            Err(Errno::EINTR) => return Ok(()),
            Err(err) => {
                return Err(Failure::new("epoll_wait", io::Error::from(err)));
            }
        }
        for (fd, flags) in ready {
            if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all();
            } else if fd == self.signals.as_raw_fd() {
                self.on_signal();
            } else {
                self.on_conn(fd, flags);
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
        // ANCHOR_END: turn
    }

    /// Until the next idle check or the end of an accept pause, or for ever
    /// with nothing open.
    fn timeout(&self, now: Instant) -> EpollTimeout {
        match self.next_reap.into_iter().chain(self.accept_paused_until).min() {
            None => EpollTimeout::NONE,
            Some(when) => {
                let ms = when
                    .saturating_duration_since(now)
                    .as_micros()
                    .div_ceil(1000);
                EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
            }
        }
    }

    /// The listener is ready: accept until `EAGAIN`. Edge-triggered, a
    /// client left in the queue would not be reported again.
    fn accept_all(&mut self) {
        // ANCHOR: accept_all
        while let Some(listener) = &self.listener {
            if self.accept_paused_until.is_some() {
                return;
            }
            let result =
                listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
            self.say.call(|| {
                call("accept")
                    .on(listener)
                    .args("SOCK_NONBLOCK|SOCK_CLOEXEC")
                    .returned(&result)
            });
            let (socket, peer) = match result {
                Ok(pair) => pair,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE)
                    ) =>
                {
                    if self.out_of_descriptors(err) {
                        continue;
                    }
                    return;
                }
                Err(err) => {
                    self.say.event(format!("accept: {err}"));
                    continue;
                }
            };
            let peer =
                peer.as_socket().unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
            let stream = TcpStream::from(socket);
            if self.conns.len() >= self.limits.max_conns {
                self.say.event(format!(
                    "{peer}: {} connections open, the limit: refused",
                    self.limits.max_conns
                ));
                refuse(stream, &mut self.say);
                continue;
            }
            self.say.log(format!("Connected with {peer}"));
            let fd = stream.as_raw_fd();
            let wanted = self.trigger(EpollFlags::EPOLLIN);
            if self.register(&stream, wanted).is_err() {
                refuse(stream, &mut self.say);
                continue;
            }
            let conn = Conn {
                stream,
                peer,
                lines: Lines::new(MAX_LINE),
                out: Vec::new(),
                blocked: false,
                paused: false,
                reading_done: false,
                dead: None,
                ending: String::new(),
                linger_first: false,
                lingering: false,
                last_progress: Instant::now(),
                bytes_in: 0,
                registered: wanted,
            };
            // The newest connection's deadline may be the nearest.
            let deadline = conn.last_progress + self.limits.idle;
            self.next_reap = Some(
                self.next_reap.map_or(deadline, |next| next.min(deadline)),
            );
            self.last_accepted = Some(fd);
            self.conns.insert(fd, conn);
        }
        // ANCHOR_END: accept_all
    }

    /// `accept` failed with `EMFILE` (this process's limit) or `ENFILE` (the
    /// system's). The client stays queued and the listener stays ready: a
    /// level-triggered loop that just retries would spin at full speed.
    /// Give up the spare descriptor, accept the client into its place, tell
    /// it "server busy", close it, and take the spare back. Returns whether
    /// a client was there: the kernel takes a descriptor number before it
    /// looks at the queue, so `EMFILE` comes even when nobody waits, and
    /// only the `accept` with the spare's number says which it is.
    fn out_of_descriptors(&mut self, err: io::Error) -> bool {
        // ANCHOR: emfile
        let Some(spare) = self.spare.take() else {
            // Even the spare is gone: stop accepting for a moment instead.
            self.say.event(format!("accept: {err}: pausing accepts"));
            self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
            return false;
        };
        self.say.event(format!("accept: {err}: using the spare descriptor"));
        let fd = spare.as_raw_fd();
        drop(spare);
        self.say.call(|| call("close").on_fd(fd).gave(&()));
        let mut someone = false;
        if let Some(listener) = &self.listener {
            let result =
                listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
            self.say.call(|| {
                call("accept")
                    .on(listener)
                    .args("SOCK_NONBLOCK|SOCK_CLOEXEC")
                    .returned(&result)
            });
            match result {
                Ok((socket, _)) => {
                    refuse(TcpStream::from(socket), &mut self.say);
                    someone = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.say.note(
                    "nobody was waiting: accept takes a descriptor number before it looks at the queue",
                ),
                Err(_) => {}
            }
        }
        let spare = File::open("/dev/null");
        self.say.call(|| {
            call("open")
                .args("\"/dev/null\", O_RDONLY|O_CLOEXEC")
                .returned(&spare)
        });
        self.spare = spare.ok();
        someone
        // ANCHOR_END: emfile
    }

    /// `epoll_wait` reported a connection.
    fn on_conn(&mut self, fd: RawFd, flags: EpollFlags) {
        // ANCHOR: on_conn
        // Whatever happens next, the end of the turn looks at it.
        self.touched.push(fd);
        let Some(conn) = self.conns.get_mut(fd) else { return };
        if conn.dead.is_some() {
            return;
        }
        if conn.lingering {
            self.drop_what_comes(fd);
            return;
        }
        if flags.intersects(
            EpollFlags::EPOLLOUT | EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP,
        ) {
            conn.blocked = false;
        }
        let readable =
            EpollFlags::EPOLLIN | EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if flags.intersects(readable) && !conn.reading_done {
            if self.limits.edge {
                // Nothing will report again what this event announced.
                self.drain(fd);
            } else if conn.out.len() < HIGH_WATER {
                // Level-triggered, one recv per event is enough: whatever
                // it leaves is reported by the next epoll_wait. Reading on
                // until EAGAIN would cost a second recv for every request.
                self.receive(fd);
            } else {
                conn.paused = true;
            }
        }
        self.flush(fd);
        // Replies went out: a paused connection may read again. With edge
        // triggering nothing will announce the bytes already waiting.
        if let Some(conn) = self.conns.get_mut(fd)
            && conn.paused
            && conn.out.len() < HIGH_WATER
        {
            conn.paused = false;
            self.drain(fd);
            self.flush(fd);
        }
        // ANCHOR_END: on_conn
    }

    /// Reads until `EAGAIN` (or the end, or too many waiting replies):
    /// edge-triggered, what is left unread is not reported again.
    fn drain(&mut self, fd: RawFd) {
        // ANCHOR: drain
        loop {
            let Some(conn) = self.conns.get_mut(fd) else { return };
            if conn.reading_done || conn.dead.is_some() {
                return;
            }
            if conn.out.len() >= HIGH_WATER {
                conn.paused = true;
                return;
            }
            if !matches!(self.receive(fd), Received::Bytes) {
                return;
            }
        }
        // ANCHOR_END: drain
    }

    /// One `recv`, and the lines it completes.
    fn receive(&mut self, fd: RawFd) -> Received {
        let Some(conn) = self.conns.get_mut(fd) else {
            return Received::Failed;
        };
        let mut buf = [0u8; RECV_SIZE];
        let got = (&conn.stream).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        self.say.call(|| {
            received(
                call("recv").on(&conn.stream).args(RECV_SIZE).returned(&got),
                &buf[..n],
            )
        });
        match got {
            Ok(0) => {
                conn.reading_done = true;
                conn.ending = "closed by the client".to_string();
                return Received::End;
            }
            Ok(n) => {
                conn.last_progress = Instant::now();
                conn.bytes_in += n;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Received::Nothing;
            }
            Err(err) => {
                conn.dead = Some(format!("recv: {err}: closed"));
                return Received::Failed;
            }
        }
        conn.lines.feed(&buf[..n]);
        while let Some(line) = conn.lines.next_line() {
            match line {
                Ok(line) => {
                    self.shutdown_asked |= is_shutdown(&line);
                    conn.out.extend_from_slice(&reply(&line));
                }
                Err(TooLong) => {
                    conn.out.extend_from_slice(TOO_LONG);
                    conn.reading_done = true;
                    conn.ending =
                        format!("a line longer than {MAX_LINE} bytes: closed");
                    conn.linger_first = true;
                    break;
                }
            }
        }
        Received::Bytes
    }

    /// Sends waiting replies until they are all out or the kernel refuses.
    fn flush(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd) else { return };
        while !conn.out.is_empty() && !conn.blocked && conn.dead.is_none() {
            let sent = (&conn.stream).write(&conn.out);
            self.say.call(|| {
                call("send")
                    .on(&conn.stream)
                    .args(bytes(&conn.out))
                    .args("MSG_NOSIGNAL")
                    .returned(&sent)
            });
            match sent {
                Ok(n) if n == conn.out.len() => {
                    // All out: give the buffer back. An idle connection
                    // then holds no memory but its entry in `conns`.
                    conn.out = Vec::new();
                    conn.last_progress = Instant::now();
                }
                Ok(n) => {
                    conn.out.drain(..n);
                    conn.last_progress = Instant::now();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    conn.blocked = true
                }
                Err(err) => conn.dead = Some(format!("send: {err}: closed")),
            }
        }
    }

    /// Makes each connection's `epoll` entry ask for what it needs now:
    /// `EPOLLIN` while it reads, `EPOLLOUT` while replies wait for room.
    fn update_interests(&mut self, touched: &[RawFd]) {
        // ANCHOR: interests
        let edge = self.limits.edge;
        let epfd = self.epoll.0.as_raw_fd();
        for &fd in touched {
            let Some(conn) = self.conns.get_mut(fd) else { continue };
            let mut wanted = EpollFlags::empty();
            if (!conn.reading_done && !conn.paused) || conn.lingering {
                wanted |= EpollFlags::EPOLLIN;
            }
            if conn.blocked {
                wanted |= EpollFlags::EPOLLOUT;
            }
            if wanted.is_empty() || edge && wanted == EpollFlags::EPOLLIN {
                // Nothing to ask for (it closes soon), or edge-triggered
                // input, which stays registered as it was.
                continue;
            }
            if edge {
                wanted |= EpollFlags::EPOLLET;
            }
            if wanted == conn.registered {
                continue;
            }
            let mut event = EpollEvent::new(wanted, fd as u64);
            let changed = self.epoll.modify(conn.stream.as_fd(), &mut event);
            self.say.call(|| {
                call("epoll_ctl")
                    .on_fd(epfd)
                    .args(format!(
                        "EPOLL_CTL_MOD, fd {fd}, {}",
                        epoll_flags(wanted)
                    ))
                    .returned(&changed)
            });
            match changed {
                Ok(()) => conn.registered = wanted,
                Err(err) => {
                    conn.dead = Some(format!("epoll_ctl: {err}: closed"))
                }
            }
        }
        // ANCHOR_END: interests
    }

    /// The signalfd is readable: a shutdown signal is waiting to be read.
    fn on_signal(&mut self) {
        // ANCHOR: on_signal
        let got = self.signals.read_signal();
        let signo = got
            .as_ref()
            .ok()
            .and_then(|s| s.as_ref())
            .map(|s| s.ssi_signo as i32);
        let name = signo
            .and_then(|n| Signal::try_from(n).ok())
            .map_or("a signal".to_string(), |s| s.to_string());
        let fd = self.signals.as_raw_fd();
        self.say.call(|| {
            let read = call("read")
                .on_fd(fd)
                .args(size_of::<libc::signalfd_siginfo>());
            match &got {
                Ok(Some(_)) => read
                    .gave(&size_of::<libc::signalfd_siginfo>())
                    .detail(&name),
                Ok(None) => read.failed(&Errno::EAGAIN),
                Err(err) => read.failed(err),
            }
        });
        if !matches!(got, Ok(Some(_))) {
            return;
        }
        if self.stopping {
            // A second signal while a client holds the shutdown up.
            log(format_args!("{name} again: exiting at once"));
            std::process::exit(130);
        }
        self.say.event(format!(
            "{name}: stop accepting, answer what has arrived, then close"
        ));
        self.begin_shutdown();
        // ANCHOR_END: on_signal
    }

    /// Stops accepting and ends every connection's input (lesson 11's rules).
    fn begin_shutdown(&mut self) {
        if std::mem::replace(&mut self.stopping, true) {
            return;
        }
        self.accept_all();
        if let Some(listener) = self.listener.take() {
            let fd = listener.as_raw_fd();
            // Closing it also removes it from the interest list (man 7 epoll).
            drop(listener);
            self.say.call(|| call("close").on_fd(fd).gave(&()));
        }
        let fds: Vec<RawFd> = self.conns.iter().map(|(fd, _)| fd).collect();
        self.touched.extend(&fds);
        for fd in fds {
            self.drain(fd);
            if let Some(conn) = self.conns.get_mut(fd)
                && !conn.reading_done
            {
                conn.reading_done = true;
                conn.ending =
                    "input ended for the shutdown: closed".to_string();
            }
            self.flush(fd);
        }
    }

    /// Drops connections idle past the limit. Looking at every connection
    /// each turn would cost as much as `poll` did, so it looks only when
    /// `next_reap` has come, and notes the nearest deadline it saw. A
    /// connection's deadline only moves later as it makes progress, so no
    /// deadline can come before `next_reap` (a new connection lowers it).
    fn reap_idle(&mut self, now: Instant) {
        // ANCHOR: reap_idle
        if self.next_reap.is_none_or(|next| now < next) {
            return;
        }
        let idle = self.limits.idle;
        let mut next: Option<Instant> = None;
        for (fd, conn) in self.conns.iter_mut() {
            let deadline = conn.last_progress + idle;
            if conn.dead.is_some() {
                continue;
            }
            if now >= deadline {
                conn.dead = Some(if conn.lingering {
                    conn.ending.clone()
                } else {
                    format!("idle for {}: closed", duration(idle))
                });
                self.touched.push(fd);
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        self.next_reap = next;
        // ANCHOR_END: reap_idle
    }

    // ANCHOR: linger
    /// A lingering close (lesson 10), for a connection that ended on a line
    /// too long while the client may still be sending: FIN after the
    /// replies, then read and drop what comes until the client closes its
    /// side, or the idle limit passes. Closing with unread bytes would send
    /// RST and throw away replies the kernel has not sent yet (lesson 6).
    fn start_lingering(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd) else { return };
        let done = conn.stream.shutdown(Shutdown::Write);
        self.say.call(|| {
            call("shutdown").on(&conn.stream).args("SHUT_WR").returned(&done)
        });
        match done {
            Ok(()) => {
                conn.lingering = true;
                conn.last_progress = Instant::now();
                // Edge-triggered, bytes that came before now announce
                // nothing: read them at once.
                self.drop_what_comes(fd);
            }
            Err(err) => conn.dead = Some(format!("shutdown: {err}: closed")),
        }
    }

    /// Reads and drops until `EAGAIN`; the end of the stream (or an error)
    /// finishes the lingering close.
    fn drop_what_comes(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(fd) else { return };
        loop {
            let mut buf = [0u8; RECV_SIZE];
            let got = (&conn.stream).read(&mut buf);
            self.say.call(|| {
                call("recv").on(&conn.stream).args(RECV_SIZE).returned(&got)
            });
            match got {
                Ok(n) if n > 0 => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                _ => {
                    conn.dead = Some(conn.ending.clone());
                    return;
                }
            }
        }
    }
    // ANCHOR_END: linger

    /// Closing a socket also takes it off the interest list.
    fn close_finished(&mut self, touched: &[RawFd]) {
        for &fd in touched {
            let finished = |c: &Conn| {
                c.dead.is_some()
                    || (c.reading_done && c.out.is_empty() && !c.lingering)
            };
            if !self.conns.get(fd).is_some_and(finished) {
                continue;
            }
            if self
                .conns
                .get(fd)
                .is_some_and(|c| c.dead.is_none() && c.linger_first)
            {
                self.start_lingering(fd);
                if self.conns.get(fd).is_none_or(|c| c.dead.is_none()) {
                    continue;
                }
            }
            let Some(conn) = self.conns.remove(fd) else { continue };
            if self.conns.is_empty() {
                // Nothing left to reap: wait for ever.
                self.next_reap = None;
            }
            let why = conn.dead.clone().unwrap_or(conn.ending.clone());
            self.say.event(format!("{}: {why}", conn.peer));
            drop(conn);
            self.say.call(|| call("close").on_fd(fd).gave(&()));
        }
    }

    /// After the loop: the signalfd, the spare and the epoll descriptor go.
    fn stop(mut self) -> Say {
        let signals = self.signals.as_raw_fd();
        drop(self.signals);
        self.say.call(|| call("close").on_fd(signals).gave(&()));
        if let Some(spare) = self.spare.take() {
            let fd = spare.as_raw_fd();
            drop(spare);
            self.say.call(|| call("close").on_fd(fd).gave(&()));
        }
        let epfd = self.epoll.0.as_raw_fd();
        drop(self.epoll);
        self.say.call(|| call("close").on_fd(epfd).gave(&()));
        self.say
    }
}

/// Adds `fd` to `epoll`'s interest list, its number as the event's data.
fn register(
    epoll: &Epoll,
    say: &mut Say,
    fd: impl AsFd,
    flags: EpollFlags,
) -> Result<(), Failure> {
    let number = fd.as_fd().as_raw_fd();
    let added = epoll.add(fd, EpollEvent::new(flags, number as u64));
    let epfd = epoll.0.as_raw_fd();
    say.call(|| {
        call("epoll_ctl")
            .on_fd(epfd)
            .args(format!("EPOLL_CTL_ADD, fd {number}, {}", epoll_flags(flags)))
            .returned(&added)
    });
    added.or_fail("epoll_ctl EPOLL_CTL_ADD")
}

/// Tells a client there is no room for it, and closes.
fn refuse(stream: TcpStream, say: &mut Say) {
    // A new connection's send buffer is empty: this short line fits.
    let sent = (&stream).write(BUSY);
    say.call(|| {
        call("send")
            .on(&stream)
            .args(bytes(BUSY))
            .args("MSG_NOSIGNAL")
            .returned(&sent)
    });
    let fd = stream.as_raw_fd();
    drop(stream);
    say.call(|| call("close").on_fd(fd).gave(&()));
}

/// Where the event loop's narration goes (as in lesson 12).
struct Say {
    demo: bool,
    said: Vec<Said>,
}

enum Said {
    Call(Call),
    Note(String),
}

impl Say {
    fn server_log() -> Say {
        Say { demo: false, said: Vec::new() }
    }

    fn call(&mut self, call: impl FnOnce() -> Call) {
        if self.demo {
            self.said.push(Said::Call(call()));
        }
    }

    fn note(&mut self, text: impl Display) {
        if self.demo {
            self.said.push(Said::Note(text.to_string()));
        }
    }

    fn log(&mut self, text: impl Display) {
        if !self.demo {
            log(format_args!("{text}"));
        }
    }

    fn event(&mut self, text: impl Display) {
        self.log(&text);
        self.note(&text);
    }
}

/// The demo, in one thread, as in lesson 12: the clients act between the
/// server's turns, and each turn waits (bounded) until the events it is to
/// handle have arrived.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "clients"]);
    level_and_edge(&mut t)?;

    // ANCHOR: demo_server
    t.section("the server, edge-triggered: it drains every socket");
    let limits = Limits { max_conns: 64, idle: DEMO_IDLE, edge: true };
    let mut server = Server::start(
        ([127, 0, 0, 1], 0).into(),
        limits,
        Say { demo: true, said: Vec::new() },
    )?;
    show(&mut t, &mut server.say);
    let addr = server.local;
    let listener_fd = server.listener.as_ref().map_or(-1, |l| l.as_raw_fd());

    let a = socket(&mut t, "A")?;
    let b = socket(&mut t, "B")?;
    connect(&mut t, &a, addr)?;
    turn(&mut t, &mut server, &[(listener_fd, PollFlags::POLLIN)])?;
    let a_fd = newest(&server);
    connect(&mut t, &b, addr)?;
    turn(&mut t, &mut server, &[(listener_fd, PollFlags::POLLIN)])?;
    let b_fd = newest(&server);
    send(&mut t, &a, b"slow ")?;
    send(&mut t, &b, b"hello from B\n")?;
    turn(
        &mut t,
        &mut server,
        &[(a_fd, PollFlags::POLLIN), (b_fd, PollFlags::POLLIN)],
    )?;
    recv(&mut t, &b)?;
    send(&mut t, &a, b"client\n")?;
    turn(&mut t, &mut server, &[(a_fd, PollFlags::POLLIN)])?;
    recv(&mut t, &a)?;
    close(&mut t, a);
    close(&mut t, b);
    turn(
        &mut t,
        &mut server,
        &[(a_fd, PollFlags::POLLIN), (b_fd, PollFlags::POLLIN)],
    )?;
    // ANCHOR_END: demo_server

    // The problem first, then the way out.
    spin_without_a_spare(&mut t)?;
    out_of_descriptors(&mut t, &mut server, addr, listener_fd)?;

    // ANCHOR: demo_shutdown
    t.section("Ctrl-C: a signalfd in the same epoll");
    let f = socket(&mut t, "F")?;
    connect(&mut t, &f, addr)?;
    turn(&mut t, &mut server, &[(listener_fd, PollFlags::POLLIN)])?;
    let f_fd = newest(&server);
    // To the process, as Ctrl-C does. Blocked, it waits in the signalfd.
    let sent = kill(Pid::this(), Signal::SIGINT);
    t.client(call("kill").args("getpid(), SIGINT").returned(&sent));
    sent.or_fail("kill SIGINT")?;
    send(&mut t, &f, b"in flight\n")?;
    let signals_fd = server.signals.as_raw_fd();
    turn(
        &mut t,
        &mut server,
        &[(signals_fd, PollFlags::POLLIN), (f_fd, PollFlags::POLLIN)],
    )?;
    while !server.finished() {
        turn(&mut t, &mut server, &[])?;
    }
    t.server_note("no connection left: the loop ends");
    let mut say = server.stop();
    show(&mut t, &mut say);
    recv(&mut t, &f)?;
    recv(&mut t, &f)?;
    t.client_note("F's request, sent after the signal but before the loop saw it, was answered");
    close(&mut t, f);
    // ANCHOR_END: demo_shutdown
    Ok(())
}

/// How many more turns the naive loop below is watched for.
const SPIN_TURNS: usize = 1000;

/// Pitfall 10, the other way: a level-triggered loop that only logs an
/// `EMFILE` from `accept` and waits again. The client stays queued, the
/// listener stays ready, and every `epoll_wait` returns at once.
fn spin_without_a_spare(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: demo_spin
    t.section("without the spare: EMFILE in a level-triggered loop");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    t.server_note(format!(
        "a non-blocking listener, made as in lesson 3: fd {}",
        listener.as_raw_fd()
    ));
    let epoll = new_epoll(t)?;
    add(t, &epoll, &listener, EpollFlags::EPOLLIN)?;
    let h = socket(t, "H")?;
    connect(t, &h, addr)?;
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).or_fail("getrlimit")?;
    let free = lowest_free_descriptor()?;
    let lowered = setrlimit(Resource::RLIMIT_NOFILE, free as u64, hard);
    t.server(
        call("setrlimit")
            .args(format!("RLIMIT_NOFILE, {free}"))
            .returned(&lowered),
    );
    lowered.or_fail("setrlimit")?;
    // The loop: wait, accept, log the error, wait again.
    for _ in 0..2 {
        wait(t, &epoll, EpollTimeout::ZERO)?;
        let result = listener.accept();
        t.server(
            call("accept").on(&listener).args("SOCK_CLOEXEC").returned(&result),
        );
    }
    let mut spun = 0;
    for _ in 0..SPIN_TURNS {
        let mut events = [EpollEvent::empty(); 8];
        let ready = epoll.wait(&mut events, EpollTimeout::ZERO);
        let refused = listener
            .accept()
            .is_err_and(|e| e.raw_os_error() == Some(libc::EMFILE));
        spun += usize::from(ready == Ok(1) && refused);
    }
    t.server_note(format!(
        "{SPIN_TURNS} more turns: {} the listener ready at once and accept failing with EMFILE",
        if spun == SPIN_TURNS { "each found" } else { "NOT what this part shows: not each found" }
    ));
    t.server_note("with a timeout of -1 the same: the loop never sleeps, and H is never answered");
    let restored = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
    t.server(
        call("setrlimit").args("RLIMIT_NOFILE, as before").returned(&restored),
    );
    restored.or_fail("setrlimit")?;
    let accepted = listener.accept();
    t.server(
        call("accept").on(&listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _) = accepted.or_fail("accept")?;
    t.server_note("a descriptor is free again: H is accepted at last");
    let fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(fd).gave(&()));
    let fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(fd).gave(&()));
    close_fd(t, epoll);
    close(t, h);
    // ANCHOR_END: demo_spin
    Ok(())
}

/// Pitfall 22: with one read per event, edge triggering strands bytes and
/// connections that level triggering would report again.
fn level_and_edge(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: demo_triggers
    t.section("one read per event: level-triggered, then edge-triggered");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    let (near, _) = listener.accept().or_fail("accept")?;
    near.set_nonblocking(true).or_fail("set_nonblocking")?;
    t.server_note(format!(
        "a connected pair, made as in lesson 3: client fd {}, and fd {} here, non-blocking",
        client.as_raw_fd(),
        near.as_raw_fd()
    ));
    for edge in [false, true] {
        let epoll = new_epoll(t)?;
        let flags = if edge {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLET
        } else {
            EpollFlags::EPOLLIN
        };
        add(t, &epoll, &near, flags)?;
        send(t, &client, b"0123456789")?;
        wait(t, &epoll, EpollTimeout::NONE)?;
        // A handler that reads once per event, and only 4 bytes.
        let mut four = [0u8; 4];
        let got = (&near).read(&mut four);
        let n = *got.as_ref().unwrap_or(&0);
        t.server(received(
            call("recv").on(&near).args(4).returned(&got),
            &four[..n],
        ));
        let again = wait(t, &epoll, EpollTimeout::ZERO)?;
        t.server_note(match (edge, again) {
            (false, 1) => "reported again: 6 bytes are still unread",
            (true, 0) => "no event, yet 6 bytes are unread: nothing new happened. A loop that waits",
            _ => "NOT what this part shows",
        });
        if edge {
            t.server_note("for the next event before reading strands them. Read until EAGAIN:");
        }
        drain_all(t, &near)?;
        close_fd(t, epoll);
    }

    t.server_note("the listener too: two clients wait, and the listener is edge-triggered");
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    let epoll = new_epoll(t)?;
    add(t, &epoll, &listener, EpollFlags::EPOLLIN | EpollFlags::EPOLLET)?;
    let first = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    let second = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client_note(format!(
        "two clients connect: fds {} and {}",
        first.as_raw_fd(),
        second.as_raw_fd()
    ));
    waiting_in_queue(t, &listener, 2)?;
    wait(t, &epoll, EpollTimeout::NONE)?;
    let one = listener.accept();
    t.server(call("accept").on(&listener).returned(&one));
    let one = one.or_fail("accept")?;
    let again = wait(t, &epoll, EpollTimeout::ZERO)?;
    t.server_note(if again == 0 {
        "no event, yet a client still waits: accept until EAGAIN, as accept_all does"
    } else {
        "NOT what this part shows"
    });
    let two = listener.accept();
    t.server(call("accept").on(&listener).returned(&two));
    let two = two.or_fail("accept")?;
    let none = listener.accept();
    t.server(call("accept").on(&listener).returned(&none));
    for stream in [one.0, two.0, near] {
        let fd = stream.as_raw_fd();
        drop(stream);
        t.server(call("close").on_fd(fd).gave(&()));
    }
    for stream in [first, second, client] {
        close(t, stream);
    }
    close_fd(t, epoll);
    let fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(fd).gave(&()));
    // ANCHOR_END: demo_triggers
    Ok(())
}

/// Pitfall 10: `EMFILE` from `accept`, made to happen by lowering the
/// limit on open descriptors, and handled with the spare.
fn out_of_descriptors(
    t: &mut Transcript,
    server: &mut Server,
    addr: SocketAddr,
    listener_fd: RawFd,
) -> Result<(), Failure> {
    // ANCHOR: demo_emfile
    t.section("out of descriptors: EMFILE, and the spare");
    let g = socket(t, "G")?;
    connect(t, &g, addr)?;
    let limits = getrlimit(Resource::RLIMIT_NOFILE);
    t.server(
        call("getrlimit").args("RLIMIT_NOFILE").returned(&limits.map(|_| ())),
    );
    let (soft, hard) = limits.or_fail("getrlimit")?;
    // A new descriptor gets the lowest free number, and must be below the
    // limit: with the limit at that number, the next one is refused.
    // (Descriptors above it, say leaked by a shell, stay open.)
    let free = lowest_free_descriptor()?;
    let lowered = setrlimit(Resource::RLIMIT_NOFILE, free as u64, hard);
    t.server(
        call("setrlimit")
            .args(format!("RLIMIT_NOFILE, {free}"))
            .returned(&lowered),
    );
    lowered.or_fail("setrlimit")?;
    t.server_note(format!(
        "(the demo lowers the limit: fds 0 to {} are open, and no more may be)",
        free - 1
    ));
    turn(t, server, &[(listener_fd, PollFlags::POLLIN)])?;
    let restored = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
    t.server(
        call("setrlimit").args("RLIMIT_NOFILE, as before").returned(&restored),
    );
    restored.or_fail("setrlimit")?;
    recv(t, &g)?;
    recv(t, &g)?;
    close(t, g);
    let listener =
        server.listener.as_ref().ok_or(Failure::new("demo", "no listener"))?;
    let mut asked = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    t.server_note(match poll(&mut asked, PollTimeout::ZERO) {
        Ok(0) => "the listener is not ready any more: nobody waits in its queue, nothing spins",
        _ => "NOT what this part shows: the listener is still ready",
    });
    // ANCHOR_END: demo_emfile
    Ok(())
}

/// The number the next descriptor would get: the lowest one not open
/// (`man 2 open`).
fn lowest_free_descriptor() -> Result<RawFd, Failure> {
    let open = open_fds().or_fail("read /proc/self/fd")?;
    Ok((0..).find(|n| open.binary_search(n).is_err()).unwrap_or(0))
}

fn new_epoll(t: &mut Transcript) -> Result<Epoll, Failure> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC);
    let made = call("epoll_create1").args("EPOLL_CLOEXEC");
    t.server(match &epoll {
        Ok(epoll) => made.gave(&NewFd(epoll.0.as_raw_fd())),
        Err(err) => made.failed(err),
    });
    epoll.or_fail("epoll_create1")
}

fn add(
    t: &mut Transcript,
    epoll: &Epoll,
    fd: impl AsFd,
    flags: EpollFlags,
) -> Result<(), Failure> {
    let mut say = Say { demo: true, said: Vec::new() };
    let added = register(epoll, &mut say, fd, flags);
    show(t, &mut say);
    added
}

/// One narrated `epoll_wait`; returns how many events came.
fn wait(
    t: &mut Transcript,
    epoll: &Epoll,
    timeout: EpollTimeout,
) -> Result<usize, Failure> {
    let mut events = [EpollEvent::empty(); 8];
    let got = epoll.wait(&mut events, timeout);
    let n = *got.as_ref().unwrap_or(&0);
    let shown: Vec<String> = events[..n]
        .iter()
        .map(|e| format!("fd {}: {}", e.data(), epoll_flags(e.events())))
        .collect();
    let timeout = if timeout == EpollTimeout::NONE { "-1" } else { "0" };
    let line = call("epoll_wait")
        .on_fd(epoll.0.as_raw_fd())
        .args(format!("8, {timeout}"));
    let line = line.returned(&got.map(|n| n as i64));
    t.server(if shown.is_empty() {
        line
    } else {
        line.detail(shown.join("; "))
    });
    got.or_fail("epoll_wait")
}

/// Reads until `EAGAIN`.
fn drain_all(t: &mut Transcript, stream: &TcpStream) -> Result<(), Failure> {
    loop {
        let mut buf = [0u8; RECV_SIZE];
        let got = (&*stream).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.server(received(
            call("recv").on(stream).args(RECV_SIZE).returned(&got),
            &buf[..n],
        ));
        match got {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Ok(());
            }
            Err(err) => return Err(Failure::new("recv", err)),
        }
    }
}

/// Waits (bounded) until the listener's queue holds `count` connections,
/// and shows the count, as `ss` shows it in Recv-Q (lesson 8).
fn waiting_in_queue(
    t: &mut Transcript,
    listener: &TcpListener,
    count: u32,
) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let queued = accept_queue(listener);
        if queued.as_ref().is_ok_and(|&n| n >= count)
            || Instant::now() > deadline
        {
            let shown = queued
                .as_ref()
                .map(|_| ())
                .map_err(|e| io::Error::new(e.kind(), e.to_string()));
            let line = call("getsockopt")
                .on(listener)
                .args("TCP_INFO")
                .returned(&shown);
            t.server(match &queued {
                Ok(n) => line.detail(format!(
                    "tcpi_unacked {n}: clients waiting to be accepted"
                )),
                Err(_) => line,
            });
            queued.or_fail("getsockopt TCP_INFO")?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// For a listening socket, `tcpi_unacked` is the length of its accept
/// queue (what `ss -lt` prints as Recv-Q).
fn accept_queue(listener: &TcpListener) -> io::Result<u32> {
    // SAFETY: tcp_info is plain data, valid when zeroed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor is open; the pointer and length describe
    // `info`, which the kernel fills in, at most `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if ret == 0 {
        Ok(info.tcpi_unacked)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn close_fd(t: &mut Transcript, epoll: Epoll) {
    let fd = epoll.0.as_raw_fd();
    drop(epoll);
    t.server(call("close").on_fd(fd).gave(&()));
}

/// Prints what the server narrated since the last call.
fn show(t: &mut Transcript, say: &mut Say) {
    for said in say.said.drain(..) {
        match said {
            Said::Call(call) => t.server(call),
            Said::Note(text) => t.server_note(text),
        }
    }
}

/// One narrated turn, once every event in `expected` has arrived.
fn turn(
    t: &mut Transcript,
    server: &mut Server,
    expected: &[(RawFd, PollFlags)],
) -> Result<(), Failure> {
    settle(server, expected)?;
    server.turn()?;
    show(t, &mut server.say);
    Ok(())
}

/// Waits (bounded) until each descriptor in `expected` reports its events
/// to a `poll` with a timeout of 0, which leaves epoll's state alone:
/// pacing for the demo, not part of the server.
fn settle(
    server: &Server,
    expected: &[(RawFd, PollFlags)],
) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    for &(fd, events) in expected {
        loop {
            let borrowed = if server
                .listener
                .as_ref()
                .is_some_and(|l| l.as_raw_fd() == fd)
            {
                server.listener.as_ref().map(|l| l.as_fd())
            } else if server.signals.as_raw_fd() == fd {
                Some(server.signals.as_fd())
            } else {
                server.conns.get(fd).map(|c| c.stream.as_fd())
            };
            let Some(borrowed) = borrowed else {
                return Err(Failure::new(
                    "demo",
                    format!("fd {fd} is not the server's"),
                ));
            };
            let mut asked = [PollFd::new(borrowed, events)];
            let ready = poll(&mut asked, PollTimeout::ZERO);
            if ready == Ok(1)
                && asked[0].revents().is_some_and(|r| r.contains(events))
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(Failure::new(
                    "demo",
                    format!("fd {fd} never became ready"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

fn newest(server: &Server) -> RawFd {
    server.last_accepted.unwrap_or(-1)
}

/// `EPOLLIN|EPOLLET`, as strace prints them.
fn epoll_flags(flags: EpollFlags) -> String {
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

/// A demo client's socket (blocking: the clients are ordinary programs).
fn socket(t: &mut Transcript, name: &str) -> Result<TcpStream, Failure> {
    t.client_note(format!("client {name}"));
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&socket),
    );
    Ok(TcpStream::from(socket.or_fail("socket")?))
}

fn connect(
    t: &mut Transcript,
    stream: &TcpStream,
    addr: SocketAddr,
) -> Result<(), Failure> {
    let connected = SockRef::from(stream).connect(&addr.into());
    t.client(call("connect").on(stream).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))
}

fn send(
    t: &mut Transcript,
    stream: &TcpStream,
    data: &[u8],
) -> Result<(), Failure> {
    let sent = (&*stream).write(data);
    t.client(
        call("send")
            .on(stream)
            .args(bytes(data))
            .args("MSG_NOSIGNAL")
            .returned(&sent),
    );
    match sent.or_fail("send")? {
        n if n == data.len() => Ok(()),
        n => Err(Failure::new("send", format!("only {n} bytes sent"))),
    }
}

fn recv(t: &mut Transcript, stream: &TcpStream) -> Result<Vec<u8>, Failure> {
    let mut buf = [0u8; RECV_SIZE];
    let got = (&*stream).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.client(received(
        call("recv").on(stream).args(RECV_SIZE).returned(&got),
        &buf[..n],
    ));
    Ok(buf[..got.or_fail("recv")?].to_vec())
}

fn close(t: &mut Transcript, stream: TcpStream) {
    let fd = stream.as_raw_fd();
    drop(stream);
    t.client(call("close").on_fd(fd).gave(&()));
}
