//! # Lesson 12: non-blocking sockets and `poll`
//!
//! The idea: one thread serves every client. Every socket is non-blocking,
//! so no call ever waits: a `recv` with nothing to read, an `accept` with
//! nobody queued and a `send` into a full buffer all fail at once with
//! `EAGAIN` (`WouldBlock`). The one call that waits is `poll`: it sleeps
//! until at least one of the sockets can make progress, and says which
//! (`POLLIN`: something to read or accept; `POLLOUT`: room to write;
//! `POLLHUP`/`POLLERR`: the connection is gone). Each connection keeps its
//! own buffers: the bytes of an unfinished line, and the replies the kernel
//! has not taken yet, which wait for `POLLOUT` instead of being dropped.
//!
//! What was wrong before: in lessons 10 and 11 every client in service
//! holds a thread, blocked in `recv` while the client is slow or idle. A
//! pool of N workers is stopped by N idle clients. Here an idle client costs
//! a few hundred bytes of buffers, and a slow one delays nobody. Ctrl-C is
//! turned into a byte on a socket pair that `poll` watches with the rest
//! (the self-pipe trick), so the loop needs no second thread to notice it.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction,
};
use nix::unistd::Pid;
use socket2::{Domain, SockRef, Socket, Type};
use transcript::cli::{at_least_one, seconds};
use transcript::lines::{
    BUSY, Lines, MAX_LINE, TOO_LONG, TooLong, is_shutdown, reply,
};
use transcript::process::{log, open_descriptors};
use transcript::{
    Call, Failure, OrFail, Transcript, bytes, call, duration, received,
};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// Replies a connection may have waiting before the server stops reading
/// its requests: a client that sends without reading cannot make the
/// server buffer without bound.
const HIGH_WATER: usize = 64 * 1024;

/// The listener's queue of connections not yet accepted (lesson 8).
const BACKLOG: i32 = 128;

/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The demo's idle limit: long enough that no step comes near it.
const DEMO_IDLE: Duration = Duration::from_secs(10);

/// The longest the demo waits for an event it is about to show.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "lesson-12",
    bin_name = "lesson-12",
    about = "Lesson 12: non-blocking sockets and poll: one thread serves every client"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// One thread, several clients, a reset, a half-close, a full buffer, then Ctrl-C (the default)
    Demo,
    /// Serve every client from one thread with poll, until Ctrl-C or a `shutdown` line
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
    },
}

/// What bounds the server.
#[derive(Clone, Copy)]
struct Limits {
    max_conns: usize,
    idle: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-12", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, max_conns, idle }) => {
            let limits = Limits {
                max_conns: at_least_one("--max-conns", max_conns)?,
                idle: seconds("--idle", idle)?,
            };
            server(addr, limits)
        }
    })
}

/// The real server: serves until a signal or a `shutdown` line, finishes
/// gracefully, and reports what is left open (nothing).
fn server(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    // ANCHOR: server
    let inherited = open_descriptors();
    let mut server = Server::start(addr, limits, Say::server_log())?;
    log(format_args!(
        "Listening on {} (at most {} connections)",
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
    // ANCHOR_END: server
}

/// One client's connection, as the event loop keeps it.
struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Bytes of a line not finished yet (lesson 5).
    lines: Lines,
    /// Replies the kernel has not taken yet. A short `send` leaves the rest
    /// here, to go when `poll` reports `POLLOUT`; nothing is dropped.
    out: Vec<u8>,
    /// The kernel refused the last `send` (`EAGAIN`): try again only when
    /// `poll` reports `POLLOUT`.
    blocked: bool,
    /// No more requests will be read: the client ended its stream, sent a
    /// line too long, or the server is shutting down.
    reading_done: bool,
    /// Why the connection is to be closed now, whatever it still holds
    /// (reset, idle); `None` while it is alive.
    dead: Option<String>,
    /// Why it will be closed once its replies are out.
    ending: String,
    /// It ended on a line too long, and the client may still be sending the
    /// rest of it: close only after a lingering close (see `close_finished`).
    linger_first: bool,
    /// FIN sent after the replies; what the client still sends is read and
    /// dropped until it closes its side or the idle limit passes.
    lingering: bool,
    /// When it last read or wrote anything.
    last_progress: Instant,
    /// Request bytes received so far.
    bytes_in: usize,
}

impl Conn {
    // ANCHOR: interest
    /// The events `poll` is to watch for: readable while it takes requests
    /// and is not too far behind with replies; writable while replies wait.
    fn interest(&self) -> PollFlags {
        if self.lingering {
            return PollFlags::POLLIN;
        }
        let mut events = PollFlags::empty();
        if !self.reading_done && self.out.len() < HIGH_WATER {
            events |= PollFlags::POLLIN;
        }
        if !self.out.is_empty() {
            events |= PollFlags::POLLOUT;
        }
        events
    }
    // ANCHOR_END: interest
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
    listener: Option<Socket>,
    local: SocketAddr,
    /// The loop's end of the self-pipe; the signal handler writes to the
    /// other end.
    wake: UnixStream,
    wake_writer: UnixStream,
    conns: BTreeMap<RawFd, Conn>,
    limits: Limits,
    /// Until when accepting pauses because descriptors ran out.
    accept_paused_until: Option<Instant>,
    shutdown_asked: bool,
    stopping: bool,
    /// The connection accepted last (the demo asks).
    last_accepted: Option<RawFd>,
    say: Say,
}

impl Server {
    /// The listening socket, the self-pipe and the signal handlers.
    fn start(
        addr: SocketAddr,
        limits: Limits,
        mut say: Say,
    ) -> Result<Server, Failure> {
        // ANCHOR: start
        // Non-blocking from birth: one flag to socket(), no extra call.
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
        // What std's TcpListener::bind does too: a restart can rebind (lesson 7).
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

        // The self-pipe: a signal handler may do almost nothing (man 7
        // signal-safety), but it may write a byte, and poll watches the
        // other end along with the sockets. A socket pair serves as a pipe.
        let pair = Socket::pair(Domain::UNIX, Type::STREAM.nonblocking(), None);
        let fds = pair.as_ref().map(|(a, b)| {
            format!("fds {} and {}", a.as_raw_fd(), b.as_raw_fd())
        });
        say.call(|| {
            let made = call("socketpair")
                .args("AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC");
            match &fds {
                Ok(fds) => made.gave(&()).detail(fds),
                Err(err) => made.failed(*err),
            }
        });
        let (wake, wake_writer) = pair.or_fail("socketpair")?;
        let (wake, wake_writer) =
            (UnixStream::from(wake), UnixStream::from(wake_writer));
        catch_shutdown_signals(&wake_writer)?;
        say.note(format!(
            "SIGINT and SIGTERM now run a handler that writes a byte to fd {}",
            wake_writer.as_raw_fd()
        ));
        // ANCHOR_END: start
        Ok(Server {
            listener: Some(listener),
            local,
            wake,
            wake_writer,
            conns: BTreeMap::new(),
            limits,
            accept_paused_until: None,
            shutdown_asked: false,
            stopping: false,
            last_accepted: None,
            say,
        })
    }

    /// Done: shutting down, and the last connection is closed.
    fn finished(&self) -> bool {
        self.stopping && self.conns.is_empty()
    }

    /// One round of the event loop: wait for events, handle each, close
    /// what is finished.
    fn turn(&mut self) -> Result<(), Failure> {
        // ANCHOR: turn
        let now = Instant::now();
        let accepting = self.listener.is_some()
            && self.accept_paused_until.is_none_or(|until| now >= until);
        if accepting {
            self.accept_paused_until = None;
        }
        let mut watched = Vec::new();
        if let (true, Some(listener)) = (accepting, &self.listener) {
            watched.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        watched.push(PollFd::new(self.wake.as_fd(), PollFlags::POLLIN));
        for conn in self.conns.values() {
            watched.push(PollFd::new(conn.stream.as_fd(), conn.interest()));
        }
        let timeout = self.timeout(now);
        // The only call in the loop that waits: until one of the sockets can
        // make progress, or the nearest idle deadline (man 2 poll).
        let result = poll(&mut watched, timeout);
        let ready: Vec<(RawFd, PollFlags)> = watched
            .iter()
            .filter_map(|p| {
                Some((
                    p.as_fd().as_raw_fd(),
                    p.revents().filter(|r| !r.is_empty())?,
                ))
            })
            .collect();
        self.say.call(|| {
            let asked: Vec<String> = watched
                .iter()
                .map(|p| {
                    format!(
                        "fd {} {}",
                        p.as_fd().as_raw_fd(),
                        flags(p.events())
                    )
                })
                .collect();
            let got: Vec<String> = ready
                .iter()
                .map(|(fd, r)| format!("fd {fd}: {}", flags(*r)))
                .collect();
            let timeout = match timeout {
                PollTimeout::NONE => "-1".to_string(),
                _ => format!("≤{}", self.limits.idle.as_millis()),
            };
            let shown = call("poll").args(format!(
                "[{}], {}, {timeout}",
                asked.join(", "),
                asked.len()
            ));
            let shown = shown.returned(&result.map(|n| n as i64));
            if got.is_empty() { shown } else { shown.detail(got.join("; ")) }
        });
        drop(watched);
        match result {
            Ok(_) => {}
            // A signal handler ran during poll; its byte is in the pipe.
            Err(Errno::EINTR) => return Ok(()),
            Err(err) => return Err(Failure::new("poll", io::Error::from(err))),
        }
        for (fd, revents) in ready {
            if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all();
            } else if fd == self.wake.as_raw_fd() {
                self.on_signal();
            } else {
                self.on_conn(fd, revents);
            }
        }
        if std::mem::take(&mut self.shutdown_asked) {
            self.begin_shutdown();
        }
        self.reap_idle(Instant::now());
        self.close_finished();
        Ok(())
        // ANCHOR_END: turn
    }

    /// How long `poll` may sleep: until the nearest idle deadline (or the
    /// end of an accept pause), or for ever with no connection open.
    fn timeout(&self, now: Instant) -> PollTimeout {
        let deadlines =
            self.conns.values().map(|c| c.last_progress + self.limits.idle);
        let nearest = deadlines.chain(self.accept_paused_until).min();
        match nearest {
            None => PollTimeout::NONE,
            Some(when) => {
                // Rounded up: waking a millisecond early would find nothing due.
                let ms = when
                    .saturating_duration_since(now)
                    .as_micros()
                    .div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    /// The listener is readable: accept every queued connection, until
    /// `EAGAIN` says the queue is empty.
    fn accept_all(&mut self) {
        // ANCHOR: accept_all
        while let Some(listener) = &self.listener {
            // The new connection is non-blocking from birth too.
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
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if !self.stopping {
                        self.say.note(
                            "EAGAIN: nobody else is waiting; back to poll",
                        );
                    }
                    return;
                }
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE)
                    ) =>
                {
                    // The listener stays readable while clients wait: poll
                    // would report it again at once, for ever. Stop watching
                    // it for a moment instead (lesson 13 does better).
                    self.say.event(format!("accept: {err}: pausing accepts"));
                    self.accept_paused_until =
                        Some(Instant::now() + ACCEPT_PAUSE);
                    return;
                }
                Err(err) => {
                    // One connection failed (reset while queued): not ours to fix.
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
                self.refuse(stream);
                continue;
            }
            self.say.log(format!("Connected with {peer}"));
            let conn = Conn {
                stream,
                peer,
                lines: Lines::new(MAX_LINE),
                out: Vec::new(),
                blocked: false,
                reading_done: false,
                dead: None,
                ending: String::new(),
                linger_first: false,
                lingering: false,
                last_progress: Instant::now(),
                bytes_in: 0,
            };
            self.last_accepted = Some(conn.stream.as_raw_fd());
            self.conns.insert(conn.stream.as_raw_fd(), conn);
        }
        // ANCHOR_END: accept_all
    }

    /// Tells a client over the limit so, and closes.
    fn refuse(&mut self, stream: TcpStream) {
        // A new connection's send buffer is empty: this short line fits.
        let sent = (&stream).write(BUSY);
        self.say.call(|| {
            call("send")
                .on(&stream)
                .args(bytes(BUSY))
                .args("MSG_NOSIGNAL")
                .returned(&sent)
        });
        let fd = stream.as_raw_fd();
        drop(stream);
        self.say.call(|| call("close").on_fd(fd).gave(&()));
    }

    /// `poll` reported something on a connection.
    fn on_conn(&mut self, fd: RawFd, revents: PollFlags) {
        // ANCHOR: on_conn
        let Some(conn) = self.conns.get_mut(&fd) else { return };
        if conn.dead.is_some() {
            return;
        }
        if conn.lingering {
            self.drain(fd);
            return;
        }
        // POLLOUT, or an error the next send will report: try sending again.
        if revents.intersects(
            PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP,
        ) {
            conn.blocked = false;
        }
        // A reset or a hang-up shows as POLLERR/POLLHUP too: recv says which.
        let readable =
            PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if revents.intersects(readable) && !conn.reading_done {
            // Level-triggered: one recv is enough; if more is waiting, the
            // next poll reports this socket again.
            self.receive(fd);
        }
        let Some(conn) = self.conns.get(&fd) else { return };
        if conn.out.is_empty() || conn.dead.is_some() {
            return;
        }
        if conn.blocked {
            self.say.note(format!(
                "fd {fd}: the new reply waits behind the others, for POLLOUT"
            ));
        } else {
            self.flush(fd);
        }
        // ANCHOR_END: on_conn
    }

    /// One `recv` on a connection, and the lines it completes.
    fn receive(&mut self, fd: RawFd) -> Received {
        // ANCHOR: receive
        let Some(conn) = self.conns.get_mut(&fd) else {
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
            // Nothing after all: not an error, just nothing to do yet.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Received::Nothing;
            }
            Err(err) => {
                conn.dead = Some(format!("recv: {err}: closed"));
                return Received::Failed;
            }
        }
        conn.lines.feed(&buf[..n]);
        let queued_before = conn.out.len();
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
        if conn.out.len() == queued_before {
            self.say.note(format!(
                "{} bytes of an unfinished line: kept for the next recv",
                conn.lines.partial()
            ));
        }
        Received::Bytes
        // ANCHOR_END: receive
    }

    /// Sends waiting replies until they are all out or the kernel refuses.
    fn flush(&mut self, fd: RawFd) {
        // ANCHOR: flush
        let Some(conn) = self.conns.get_mut(&fd) else { return };
        while !conn.out.is_empty() {
            let sent = (&conn.stream).write(&conn.out);
            self.say.call(|| {
                call("send")
                    .on(&conn.stream)
                    .args(bytes(&conn.out))
                    .args("MSG_NOSIGNAL")
                    .returned(&sent)
            });
            match sent {
                Ok(n) => {
                    // Only what the kernel took leaves the buffer.
                    conn.out.drain(..n);
                    conn.last_progress = Instant::now();
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    conn.blocked = true;
                    self.say
                        .note(format!("fd {fd}: the kernel's buffer is full; the rest waits for POLLOUT"));
                    return;
                }
                Err(err) => {
                    conn.dead = Some(format!("send: {err}: closed"));
                    return;
                }
            }
        }
        // ANCHOR_END: flush
    }

    /// The self-pipe is readable: a signal came.
    fn on_signal(&mut self) {
        let mut byte = [0u8; 16];
        let got = (&self.wake).read(&mut byte);
        self.say.call(|| {
            call("recv").on(&self.wake).args(byte.len()).returned(&got)
        });
        self.say.event("a shutdown signal: stop accepting, answer what has arrived, then close");
        self.begin_shutdown();
    }

    /// Stops accepting and ends every connection's input: what has arrived
    /// is answered, then each connection closes as its replies go out.
    fn begin_shutdown(&mut self) {
        // ANCHOR: begin_shutdown
        if std::mem::replace(&mut self.stopping, true) {
            return;
        }
        // Clients in the listener's queue think they are connected (lesson
        // 8): take them, rather than reset them by closing the listener.
        self.accept_all();
        if let Some(listener) = self.listener.take() {
            let fd = listener.as_raw_fd();
            drop(listener);
            self.say.call(|| call("close").on_fd(fd).gave(&()));
        }
        let fds: Vec<RawFd> = self.conns.keys().copied().collect();
        for fd in fds {
            // Read what has arrived, until EAGAIN: those requests are
            // answered. After that, the connection reads no more.
            while self
                .conns
                .get(&fd)
                .is_some_and(|c| !c.reading_done && c.dead.is_none())
            {
                if !matches!(self.receive(fd), Received::Bytes) {
                    break;
                }
            }
            if let Some(conn) = self.conns.get_mut(&fd) {
                if !conn.reading_done {
                    conn.reading_done = true;
                    conn.ending =
                        "input ended for the shutdown: closed".to_string();
                }
                if !conn.blocked {
                    self.flush(fd);
                }
            }
        }
        // ANCHOR_END: begin_shutdown
    }

    /// Marks connections that made no progress for the idle limit.
    fn reap_idle(&mut self, now: Instant) {
        let idle = self.limits.idle;
        for conn in self.conns.values_mut() {
            if conn.dead.is_none()
                && now.duration_since(conn.last_progress) >= idle
            {
                conn.dead = Some(if conn.lingering {
                    conn.ending.clone()
                } else {
                    format!("idle for {}: closed", duration(idle))
                });
            }
        }
    }

    // ANCHOR: linger
    /// A lingering close, for a connection that ended on a line too long
    /// while the client may still be sending. Closing a socket with unread
    /// bytes makes the kernel send RST and throw away the replies it has not
    /// sent yet (lesson 6): a client slow to read would lose them, and the
    /// refusal with them. So: FIN after the replies, then read and drop
    /// whatever still comes until the client closes its side, or the idle
    /// limit has passed (the drained bytes are not progress).
    fn start_lingering(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(&fd) else { return };
        let done = conn.stream.shutdown(Shutdown::Write);
        self.say.call(|| {
            call("shutdown").on(&conn.stream).args("SHUT_WR").returned(&done)
        });
        match done {
            Ok(()) => {
                conn.lingering = true;
                conn.last_progress = Instant::now();
            }
            Err(err) => conn.dead = Some(format!("shutdown: {err}: closed")),
        }
    }

    /// One `recv` on a lingering connection; what it brings is dropped.
    fn drain(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.get_mut(&fd) else { return };
        let mut buf = [0u8; RECV_SIZE];
        let got = (&conn.stream).read(&mut buf);
        self.say.call(|| {
            call("recv").on(&conn.stream).args(RECV_SIZE).returned(&got)
        });
        match got {
            Ok(n) if n > 0 => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            // The client closed its side (or reset): nothing is left unread.
            _ => conn.dead = Some(conn.ending.clone()),
        }
    }
    // ANCHOR_END: linger

    /// Closes every connection that is dead, or done with its replies out.
    fn close_finished(&mut self) {
        let done: Vec<RawFd> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.dead.is_some()
                    || (c.reading_done && c.out.is_empty() && !c.lingering)
            })
            .map(|(fd, _)| *fd)
            .collect();
        for fd in done {
            if self
                .conns
                .get(&fd)
                .is_some_and(|c| c.dead.is_none() && c.linger_first)
            {
                self.start_lingering(fd);
                continue;
            }
            let Some(conn) = self.conns.remove(&fd) else { continue };
            let why = conn.dead.clone().unwrap_or(conn.ending.clone());
            self.say.event(format!("{}: {why}", conn.peer));
            drop(conn);
            self.say.call(|| call("close").on_fd(fd).gave(&()));
        }
    }

    /// After the loop: the signals get their default action back, then the
    /// self-pipe is closed. Returns the narration, for the demo to print.
    fn stop(mut self) -> Say {
        restore_default_signals();
        self.say.note("the signals get their default action back; then the self-pipe goes");
        for end in [self.wake, self.wake_writer] {
            let fd = end.as_raw_fd();
            drop(end);
            self.say.call(|| call("close").on_fd(fd).gave(&()));
        }
        self.say
    }
}

/// The write end of the self-pipe, for the signal handler.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Shutdown signals received so far.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

// ANCHOR: handler
/// Runs in the middle of whatever the thread was doing: only
/// async-signal-safe calls (`man 7 signal-safety`). A second signal ends
/// the process at once, for when a client keeps the shutdown waiting.
extern "C" fn on_shutdown_signal(_signal: libc::c_int) {
    let saved = Errno::last_raw();
    if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(130) };
    }
    let byte = b"!";
    // SAFETY: write is async-signal-safe; the pointer and length describe
    // a live static byte. A full pipe (EAGAIN) already holds a wake-up.
    let _ = unsafe {
        libc::write(WAKE_FD.load(Ordering::SeqCst), byte.as_ptr().cast(), 1)
    };
    // The interrupted code may be about to read errno: leave it as it was.
    Errno::set_raw(saved);
}
// ANCHOR_END: handler

fn catch_shutdown_signals(wake_writer: &UnixStream) -> Result<(), Failure> {
    WAKE_FD.store(wake_writer.as_raw_fd(), Ordering::SeqCst);
    // SA_RESTART: calls other than poll resume after the handler; poll
    // always returns EINTR, and the loop then finds the byte.
    let action = SigAction::new(
        SigHandler::Handler(on_shutdown_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only makes async-signal-safe calls and reads
        // atomics.
        unsafe { sigaction(signal, &action) }
            .or_fail(format!("sigaction {signal}"))?;
    }
    Ok(())
}

/// Before the self-pipe is closed, so a late signal cannot write to a
/// descriptor number that something else may get next.
fn restore_default_signals() {
    let default =
        SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { sigaction(signal, &default) };
    }
    WAKE_FD.store(-1, Ordering::SeqCst);
}

/// Where the event loop's narration goes.
struct Say {
    /// The demo prints each call; the real server logs only events.
    demo: bool,
    /// The demo may silence the calls of a busy stretch and sum it up.
    quiet: bool,
    said: Vec<Said>,
}

enum Said {
    Call(Call),
    Note(String),
}

impl Say {
    /// The real server's: events are logged, calls are not shown.
    fn server_log() -> Say {
        Say { demo: false, quiet: false, said: Vec::new() }
    }

    fn call(&mut self, call: impl FnOnce() -> Call) {
        if self.demo && !self.quiet {
            self.said.push(Said::Call(call()));
        }
    }

    fn note(&mut self, text: impl Display) {
        if self.demo && !self.quiet {
            self.said.push(Said::Note(text.to_string()));
        }
    }

    /// A line for the real server's log only.
    fn log(&mut self, text: impl Display) {
        if !self.demo {
            log(format_args!("{text}"));
        }
    }

    /// A line in the server's log, and a note in the demo.
    fn event(&mut self, text: impl Display) {
        self.log(&text);
        self.note(&text);
    }
}

/// The demo, in one thread: it plays the clients between the server's
/// turns, so every step happens in the order printed. Before a turn it
/// waits (bounded) until the events the turn is to handle have arrived, so
/// that what one `poll` returns does not depend on how fast loopback is.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "clients"]);
    let limits = Limits { max_conns: 64, idle: DEMO_IDLE };

    // ANCHOR: demo_start
    t.section("one thread, every socket non-blocking");
    let say = Say { demo: true, quiet: false, said: Vec::new() };
    let mut server = Server::start(([127, 0, 0, 1], 0).into(), limits, say)?;
    show(&mut t, &mut server);
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
    t.client_note(
        "B is answered while A's line is unfinished: no one waited in recv",
    );
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
    // ANCHOR_END: demo_start

    // ANCHOR: demo_reset
    t.section("a client that resets, a client that half-closes");
    let c = socket(&mut t, "C")?;
    connect(&mut t, &c, addr)?;
    turn(&mut t, &mut server, &[(listener_fd, PollFlags::POLLIN)])?;
    let c_fd = newest(&server);
    // SO_LINGER 0: close sends RST instead of FIN (lesson 6).
    let set = SockRef::from(&c).set_linger(Some(Duration::ZERO));
    t.client(call("setsockopt").on(&c).args("SO_LINGER, 0 s").returned(&set));
    set.or_fail("setsockopt SO_LINGER")?;
    close(&mut t, c);
    turn(&mut t, &mut server, &[(c_fd, PollFlags::POLLHUP)])?;

    let d = socket(&mut t, "D")?;
    connect(&mut t, &d, addr)?;
    turn(&mut t, &mut server, &[(listener_fd, PollFlags::POLLIN)])?;
    let d_fd = newest(&server);
    send(&mut t, &d, b"bye\n")?;
    let done = d.shutdown(std::net::Shutdown::Write);
    t.client(call("shutdown").on(&d).args("SHUT_WR").returned(&done));
    done.or_fail("shutdown")?;
    turn(&mut t, &mut server, &[(d_fd, PollFlags::POLLIN)])?;
    turn(&mut t, &mut server, &[(d_fd, PollFlags::POLLIN)])?;
    recv(&mut t, &d)?;
    recv(&mut t, &d)?;
    close(&mut t, d);
    // ANCHOR_END: demo_reset

    full_buffer(&mut t, &mut server, addr, listener_fd)?;
    more_than_a_flag(&mut t)?;
    read_exact_loses(&mut t)?;

    // ANCHOR: demo_shutdown
    t.section("Ctrl-C: a byte through the self-pipe");
    let f = socket(&mut t, "F")?;
    connect(&mut t, &f, addr)?;
    turn(&mut t, &mut server, &[(listener_fd, PollFlags::POLLIN)])?;
    let f_fd = newest(&server);
    send(&mut t, &f, b"in flight\n")?;
    // To this process, as Ctrl-C does; the handler runs before kill returns.
    kill(Pid::this(), Signal::SIGINT).or_fail("kill SIGINT")?;
    t.client_note(format!(
        "the demo sends itself SIGINT; the handler writes a byte to fd {}",
        server.wake_writer.as_raw_fd()
    ));
    let wake_fd = server.wake.as_raw_fd();
    turn(
        &mut t,
        &mut server,
        &[(wake_fd, PollFlags::POLLIN), (f_fd, PollFlags::POLLIN)],
    )?;
    while !server.finished() {
        turn(&mut t, &mut server, &[])?;
    }
    t.server_note("no connection left: the loop ends");
    for said in server.stop().said {
        match said {
            Said::Call(call) => t.server(call),
            Said::Note(text) => t.server_note(text),
        }
    }
    recv(&mut t, &f)?;
    recv(&mut t, &f)?;
    t.client_note("F's request, sent before the signal, was answered");
    close(&mut t, f);
    // ANCHOR_END: demo_shutdown
    Ok(())
}

/// A client that sends many lines and reads none: the replies fill the
/// kernel's buffers, `send` fails with `EAGAIN`, and the rest waits in the
/// connection's own buffer until `poll` reports `POLLOUT`.
fn full_buffer(
    t: &mut Transcript,
    server: &mut Server,
    addr: SocketAddr,
    listener_fd: RawFd,
) -> Result<(), Failure> {
    // ANCHOR: demo_full
    const LINES: usize = 24;
    t.section(format!("a client that sends {LINES} lines and reads none"));
    let e = socket(t, "E")?;
    // Small buffers on both sides, so the replies overflow them soon.
    let set = SockRef::from(&e).set_recv_buffer_size(4096);
    t.client(call("setsockopt").on(&e).args("SO_RCVBUF, 4096").returned(&set));
    set.or_fail("setsockopt SO_RCVBUF")?;
    connect(t, &e, addr)?;
    turn(t, server, &[(listener_fd, PollFlags::POLLIN)])?;
    let e_fd = newest(server);
    let conn = &server.conns[&e_fd].stream;
    let set = SockRef::from(conn).set_send_buffer_size(4096);
    t.server(
        call("setsockopt").on(conn).args("SO_SNDBUF, 4096").returned(&set),
    );
    t.server_note(
        "(the demo shrinks the server's buffer for E, as a slow network would)",
    );
    set.or_fail("setsockopt SO_SNDBUF")?;

    let requests: Vec<u8> = (0..LINES)
        .flat_map(|n| format!("{n:02} {}\n", "e".repeat(996)).into_bytes())
        .collect();
    send(t, &e, &requests)?;
    // A busy stretch, summed up below instead of shown call by call: how
    // the bytes split over recv and send calls depends on the kernel.
    server.say.quiet = true;
    while server.conns.get(&e_fd).is_some_and(|c| c.bytes_in < requests.len()) {
        settle(server, &[(e_fd, PollFlags::POLLIN)])?;
        server.turn()?;
    }
    server.say.quiet = false;
    if server.conns.get(&e_fd).is_some_and(|c| c.blocked && !c.out.is_empty()) {
        t.server_note(format!(
            "the server has read all {LINES} lines; send took what fit, then failed with EAGAIN"
        ));
        t.server_note(format!(
            "the other replies wait in fd {e_fd}'s output buffer, and poll is asked for POLLOUT"
        ));
    } else {
        t.server_note("NOT what this part shows: the kernel took every reply");
    }
    send(t, &e, b"last\n")?;
    turn(t, server, &[(e_fd, PollFlags::POLLIN)])?;

    // E reads all it has; whenever replies still wait and the server's
    // socket has room (POLLOUT), the server gets a turn.
    server.say.quiet = true;
    let expected: Vec<u8> = [&requests[..], b"last\n"].concat();
    let mut replies = Vec::new();
    e.set_nonblocking(true).or_fail("set_nonblocking")?;
    let deadline = Instant::now() + SETTLE_LIMIT;
    while replies.len() < expected.len() {
        let mut buf = [0u8; RECV_SIZE];
        match (&e).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let waiting =
                    server.conns.get(&e_fd).is_some_and(|c| !c.out.is_empty());
                if waiting
                    && peek(server, e_fd, PollFlags::POLLOUT)
                        .contains(PollFlags::POLLOUT)
                {
                    server.turn()?;
                } else if Instant::now() > deadline {
                    return Err(Failure::new(
                        "demo",
                        "E's replies stopped coming",
                    ));
                } else {
                    wait_readable(&e, Duration::from_millis(10)).ok();
                }
            }
            Err(err) => return Err(Failure::new("recv", err)),
        }
    }
    e.set_nonblocking(false).or_fail("set_nonblocking")?;
    server.say.quiet = false;
    t.client_note(format!(
        "E reads: {} replies, {}",
        replies.iter().filter(|&&b| b == b'\n').count(),
        if replies == expected { "all in order" } else { "NOT what was sent" }
    ));
    t.server_note(format!(
        "fd {e_fd}: each POLLOUT let the server send more, until nothing waited"
    ));
    close(t, e);
    turn(t, server, &[(e_fd, PollFlags::POLLIN)])?;
    // ANCHOR_END: demo_full
    Ok(())
}

/// Non-blocking is more than a flag: `BufReader` hides bytes from `poll`,
/// and `write_all` loses track of what it sent.
fn more_than_a_flag(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: demo_flag
    t.section("non-blocking is more than a flag");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    // A client with a small receive buffer, so that what it does not read
    // soon fills it.
    let client =
        Socket::new(Domain::IPV4, Type::STREAM, None).or_fail("socket")?;
    client.set_recv_buffer_size(4096).or_fail("setsockopt SO_RCVBUF")?;
    client.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
    let client = TcpStream::from(client);
    let (near, _) = listener.accept().or_fail("accept")?;
    near.set_nonblocking(true).or_fail("set_nonblocking")?;
    drop(listener);
    t.server_note(format!(
        "a connected pair, made as in lesson 3: client fd {}, and fd {} here, non-blocking",
        client.as_raw_fd(),
        near.as_raw_fd()
    ));

    send(t, &client, b"one\ntwo\n")?;
    wait_readable(&near, SETTLE_LIMIT)?;
    let mut reader = BufReader::new(&near);
    let mut line = String::new();
    t.server_note(
        "BufReader::read_line() makes one recv, into an 8 KiB buffer:",
    );
    let got = reader.read_line(&mut line);
    let kept = reader.buffer().to_vec();
    let took = match &got {
        Ok(n) => Ok(n + kept.len()),
        Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
    };
    let all = [line.as_bytes(), &kept].concat();
    t.server(
        call("recv").on(&near).args(8192).returned(&took).detail(bytes(&all)),
    );
    got.or_fail("read_line")?;
    t.server_note(format!(
        "read_line returns {}; {} stays in the BufReader",
        bytes(line.as_bytes()),
        bytes(&kept)
    ));
    let mut asked = [PollFd::new(near.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut asked, PollTimeout::ZERO);
    t.server(
        call("poll")
            .args(format!("[fd {} POLLIN], 1, 0", near.as_raw_fd()))
            .returned(&ready.map(|n| n as i64)),
    );
    t.server_note("poll looks at the kernel's buffer, which is empty: a loop that waits for POLLIN");
    t.server_note("before it reads again never gets to the second line. Empty the BufReader first.");

    let set = SockRef::from(&near).set_send_buffer_size(4096);
    t.server(
        call("setsockopt").on(&near).args("SO_SNDBUF, 4096").returned(&set),
    );
    set.or_fail("setsockopt SO_SNDBUF")?;
    let big = vec![b'w'; 100_000];
    let wrote = (&near).write_all(&big);
    t.server_note(format!(
        "write_all(100000 bytes) = {}: several sends, then EAGAIN",
        match &wrote {
            Ok(()) => "Ok".to_string(),
            Err(err) => format!("Err({:?})", err.kind()),
        }
    ));
    let fd = near.as_raw_fd();
    drop(near);
    t.server(call("close").on_fd(fd).gave(&()));
    let mut arrived = Vec::new();
    client
        .set_read_timeout(Some(SETTLE_LIMIT))
        .or_fail("setsockopt SO_RCVTIMEO")?;
    (&client).read_to_end(&mut arrived).or_fail("recv")?;
    let part = !arrived.is_empty() && arrived.len() < big.len();
    t.client_note(format!(
        "the client reads to the end: {} of the 100000 bytes",
        if part { "some, not all," } else { "NOT part" }
    ));
    t.server_note("write_all sent part, then failed without saying how much: the caller cannot");
    t.server_note("resume. A non-blocking server keeps its own buffer and resumes on POLLOUT.");
    close(t, client);
    // ANCHOR_END: demo_flag
    Ok(())
}

/// `read_exact` on a non-blocking socket: the bytes it read before
/// `WouldBlock` are taken from the kernel, and the error does not say how
/// many there were.
fn read_exact_loses(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: demo_read_exact
    t.section("read_exact on a non-blocking socket");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    let (near, _) = listener.accept().or_fail("accept")?;
    near.set_nonblocking(true).or_fail("set_nonblocking")?;
    drop(listener);
    t.server_note(format!(
        "a connected pair, made as in lesson 3: client fd {}, and fd {} here, non-blocking",
        client.as_raw_fd(),
        near.as_raw_fd()
    ));
    // A 10-byte frame, of which 6 bytes have come so far. One small send
    // on loopback arrives whole, so once the socket is readable all 6 are.
    send(t, &client, b"012345")?;
    wait_readable(&near, SETTLE_LIMIT)?;
    let before = unread(&near);
    t.server(unread_call(&near, &before));
    let before = before.or_fail("ioctl FIONREAD")?;
    let mut frame = [0u8; 10];
    t.server_note(
        "read_exact(10 bytes) calls recv until it has 10 or an error comes:",
    );
    let got = (&near).read_exact(&mut frame).map(|()| frame.len());
    let after = unread(&near);
    // Its calls cannot be seen from here, only what they took from the
    // kernel's buffer: one recv for what was there, then one that failed.
    let took =
        before.saturating_sub(*after.as_ref().unwrap_or(&0)).min(frame.len());
    t.server(
        call("recv")
            .on(&near)
            .args(frame.len())
            .gave(&took)
            .detail(bytes(&frame[..took])),
    );
    t.server(call("recv").on(&near).args(frame.len() - took).returned(&got));
    t.server(unread_call(&near, &after));
    after.or_fail("ioctl FIONREAD")?;
    t.server_note(format!(
        "read_exact returns {}: it does not say how many bytes it took",
        match &got {
            Ok(_) => "NOT an error".to_string(),
            Err(err) => format!("Err({:?})", err.kind()),
        }
    ));
    send(t, &client, b"6789")?;
    wait_readable(&near, SETTLE_LIMIT)?;
    let mut buf = [0u8; 16];
    let rest = (&near).read(&mut buf);
    let n = *rest.as_ref().unwrap_or(&0);
    t.server(received(
        call("recv").on(&near).args(16).returned(&rest),
        &buf[..n],
    ));
    t.server_note(if n == 4 {
        "only the last 4 bytes are left: read_exact took the first 6, and its caller was not told"
    } else {
        "NOT what this part shows: the first bytes are still there"
    });
    let fd = near.as_raw_fd();
    drop(near);
    t.server(call("close").on_fd(fd).gave(&()));
    close(t, client);
    // ANCHOR_END: demo_read_exact
    Ok(())
}

/// How many received bytes wait unread in `stream`'s receive buffer
/// (`ioctl(FIONREAD)`; `man 7 tcp` calls it SIOCINQ).
fn unread(stream: &TcpStream) -> io::Result<usize> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int, which `count` is.
    if unsafe { libc::ioctl(stream.as_raw_fd(), libc::FIONREAD, &mut count) }
        == -1
    {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The transcript line for an [`unread`] call.
fn unread_call(stream: &TcpStream, count: &io::Result<usize>) -> Call {
    let shown = call("ioctl").on(stream).args("FIONREAD");
    match count {
        Ok(n) => shown.gave(&()).detail(format!("{n} bytes unread")),
        Err(err) => shown.failed(err),
    }
}

/// Waits, at most `limit`, until `stream` has something to read.
fn wait_readable(stream: &TcpStream, limit: Duration) -> Result<(), Failure> {
    let mut asked = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
    let limit = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    match poll(&mut asked, limit) {
        Ok(1) => Ok(()),
        _ => Err(Failure::new("demo", "the bytes never arrived")),
    }
}

/// Prints what the server narrated since the last call.
fn show(t: &mut Transcript, server: &mut Server) {
    for said in server.say.said.drain(..) {
        match said {
            Said::Call(call) => t.server(call),
            Said::Note(text) => t.server_note(text),
        }
    }
}

/// One narrated turn of the event loop, once every event in `expected`
/// has arrived.
fn turn(
    t: &mut Transcript,
    server: &mut Server,
    expected: &[(RawFd, PollFlags)],
) -> Result<(), Failure> {
    settle(server, expected)?;
    server.turn()?;
    show(t, server);
    Ok(())
}

/// Waits (bounded) until each descriptor in `expected` reports its
/// events, looking with `poll` and a timeout of 0: pacing for the demo,
/// not part of the server.
fn settle(
    server: &Server,
    expected: &[(RawFd, PollFlags)],
) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    for &(fd, events) in expected {
        loop {
            let now = peek(server, fd, events);
            if now.contains(events) {
                break;
            }
            if Instant::now() > deadline {
                return Err(Failure::new(
                    "demo",
                    format!("fd {fd} never reported {}", flags(events)),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

fn peek(server: &Server, fd: RawFd, events: PollFlags) -> PollFlags {
    let borrowed =
        if server.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
            server.listener.as_ref().map(|l| l.as_fd())
        } else if server.wake.as_raw_fd() == fd {
            Some(server.wake.as_fd())
        } else {
            server.conns.get(&fd).map(|c| c.stream.as_fd())
        };
    let Some(borrowed) = borrowed else { return PollFlags::empty() };
    let mut asked = [PollFd::new(borrowed, events)];
    match poll(&mut asked, PollTimeout::ZERO) {
        Ok(1) => asked[0].revents().unwrap_or(PollFlags::empty()),
        _ => PollFlags::empty(),
    }
}

/// The connection accepted last.
fn newest(server: &Server) -> RawFd {
    server.last_accepted.unwrap_or(-1)
}

/// `POLLIN|POLLOUT`, as strace prints them.
fn flags(events: PollFlags) -> String {
    let names = [
        (PollFlags::POLLIN, "POLLIN"),
        (PollFlags::POLLPRI, "POLLPRI"),
        (PollFlags::POLLOUT, "POLLOUT"),
        (PollFlags::POLLERR, "POLLERR"),
        (PollFlags::POLLHUP, "POLLHUP"),
        (PollFlags::POLLNVAL, "POLLNVAL"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(f, _)| events.contains(*f))
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
