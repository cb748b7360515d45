//! The server: one thread, every socket non-blocking, one `poll` per turn.
//! Each turn waits in `poll`, accepts until `EAGAIN`, reads and flushes
//! the connections that are ready, and closes what is finished; what each
//! connection waits for next is asked anew in the next turn's list.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFlags, poll};
use socket2::{Domain, Socket, Type};
use transcript::lines::BUSY;
use transcript::process::open_descriptors;
use transcript::{
    Failure, OrFail, Told, bytes, event, log, server, server_note, tell,
};

use crate::conn::{Conn, State};
use crate::conns::Conns;
use crate::demo::polled;
use crate::shutdown::{Signals, close};

/// The listener's queue of connections not yet accepted (lesson 8).
const BACKLOG: i32 = 128;

/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// What bounds the server.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Open connections at most; the next client is told "server busy".
    pub max_conns: usize,
    /// How long a connection may make no progress before it is closed.
    pub idle: Duration,
}

/// The event loop's whole state: one thread owns it all.
pub struct Server {
    /// `None` once the shutdown has begun: no more clients.
    pub listener: Option<Socket>,
    pub local: SocketAddr,
    /// The self-pipe a signal writes to (`shutdown.rs`).
    pub signals: Signals,
    /// Every open connection, by descriptor number.
    pub conns: Conns,
    pub limits: Limits,
    /// Until when accepting pauses because descriptors ran out.
    pub accept_paused_until: Option<Instant>,
    /// The shutdown has begun.
    pub stopping: bool,
}

// ANCHOR: run
/// The real server: serves until a signal or a `shutdown` line, finishes
/// gracefully, and reports what is left open (nothing).
pub fn run(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    let inherited = open_descriptors();
    let mut server = Server::start(addr, limits)?;
    log!(
        "Listening on {} (at most {} connections)",
        server.local,
        limits.max_conns
    );
    while !server.finished() {
        server.turn()?;
    }
    server.stop();
    let left = open_descriptors();
    if left == inherited {
        log!("Shut down: every descriptor it opened is closed");
    } else {
        log!("Shut down: open descriptors {left} (at start: {inherited})");
    }
    Ok(())
}
// ANCHOR_END: run

// ANCHOR: start
impl Server {
    /// The listening socket and the self-pipe for signals.
    pub fn start(addr: SocketAddr, limits: Limits) -> Result<Server, Failure> {
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
        let signals = Signals::catch()?;
        Ok(Server {
            listener: Some(listener),
            local,
            signals,
            conns: Conns::default(),
            limits,
            accept_paused_until: None,
            stopping: false,
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
    /// what is finished.
    pub fn turn(&mut self) -> Result<(), Failure> {
        let timeout = self.timeout(Instant::now());
        let mut watched = self.watch_list();
        // The only call in the loop that waits: until one of the sockets
        // can make progress, or the nearest idle deadline (man 2 poll).
        let result = poll(&mut watched, timeout);
        tell(|| polled(&watched, &result, timeout, self.limits.idle));
        match result {
            Ok(_) => {}
            // A signal handler ran during poll; its byte is in the pipe.
            Err(Errno::EINTR) => return Ok(()),
            Err(err) => {
                return Err(Failure::new("poll", io::Error::from(err)));
            }
        }
        // The ready ones: poll has set what happened in their revents.
        let ready: Vec<(RawFd, PollFlags)> = (watched.iter())
            .filter_map(|p| Some((p.as_fd().as_raw_fd(), p.revents()?)))
            .filter(|(_, revents)| !revents.is_empty())
            .collect();
        drop(watched);
        let mut shutdown_asked = false;
        for (fd, revents) in ready {
            if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all();
            } else if fd == self.signals.as_fd().as_raw_fd() {
                self.on_signal();
            } else {
                self.on_ready(fd, revents, &mut shutdown_asked);
            }
        }
        if shutdown_asked {
            self.begin_shutdown();
        }
        self.reap_idle(Instant::now());
        self.close_finished();
        Ok(())
    }
}
// ANCHOR_END: turn

// ANCHOR: accept_all
impl Server {
    /// The listener is readable: accept every queued connection, until
    /// `EAGAIN` says the queue is empty.
    pub fn accept_all(&mut self) {
        while let Some(listener) = &self.listener {
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
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if !self.stopping {
                        server_note(
                            "EAGAIN: nobody else is waiting; back to poll",
                        );
                    }
                    return;
                }
                Err(err) if out_of_descriptors(&err) => {
                    // The listener stays readable while clients wait: poll
                    // would report it again at once, for ever. Stop
                    // watching it for a moment (lesson 13 does better).
                    event(format_args!("accept: {err}: pausing accepts"));
                    self.accept_paused_until =
                        Some(Instant::now() + ACCEPT_PAUSE);
                    return;
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
    /// Keeps a new connection.
    fn admit(&mut self, stream: TcpStream, peer: SocketAddr) {
        let fd = stream.as_raw_fd();
        let conn = Conn::new(stream, peer);
        self.conns.insert(fd, conn);
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
    /// `poll` reported something on a connection: read once if it is
    /// readable, then send what waits.
    fn on_ready(&mut self, fd: RawFd, revents: PollFlags, asked: &mut bool) {
        let Some(conn) = self.conns.get_mut(fd) else { return };
        // Replies left over from an earlier turn mean the kernel's buffer
        // was full then: only POLLOUT (or an error) says to try again.
        let blocked = !conn.out.is_empty()
            && !revents.intersects(
                PollFlags::POLLOUT | PollFlags::POLLERR | PollFlags::POLLHUP,
            );
        // A reset or a hang-up shows as POLLERR/POLLHUP: recv says which.
        // Level-triggered: one recv is enough; if more is waiting, the
        // next poll reports this socket again.
        let readable =
            PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        if revents.intersects(readable) {
            match conn.state {
                State::Open if conn.reads() => drop(conn.receive(asked)),
                State::Lingering(_) => drop(conn.discard()),
                _ => {}
            }
        }
        if conn.out.is_empty() || matches!(conn.state, State::Dead(_)) {
            return;
        }
        if blocked {
            server_note(format_args!(
                "fd {fd}: the new reply waits behind the others, for POLLOUT"
            ));
        } else {
            conn.flush();
        }
    }
}
// ANCHOR_END: on_ready

// ANCHOR: close_finished
impl Server {
    /// Closes every connection that is done: dead, or with its replies
    /// out. One whose client may still be sending lingers first.
    fn close_finished(&mut self) {
        let done: Vec<RawFd> = (self.conns.iter())
            .filter(|(_, conn)| conn.finished())
            .map(|(fd, _)| fd)
            .collect();
        for fd in done {
            let Some(conn) = self.conns.get_mut(fd) else { continue };
            if let State::Ending { linger: true, .. } = conn.state {
                conn.start_lingering();
                if !conn.finished() {
                    continue;
                }
            }
            self.close(fd);
        }
    }

    /// Closes a connection: dropping its socket is `close(2)`.
    pub fn close(&mut self, fd: RawFd) {
        let Some(conn) = self.conns.remove(fd) else { return };
        if let Some(why) = conn.why() {
            event(format_args!("{}: {why}", conn.peer));
        }
        close(conn.stream);
    }
}
// ANCHOR_END: close_finished
