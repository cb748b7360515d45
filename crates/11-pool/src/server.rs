//! The server hardened: the pool of `plain.rs` (now in `pool.rs`), with
//! a limit on open connections, time limits on each, and a graceful
//! shutdown on SIGINT, SIGTERM or a `shutdown` line. It speaks lesson 10's
//! line protocol.
//!
//! Each socket call carries its line of the demo's timeline as a suffix
//! (`.traced(|| ...)`), printed only in the demo; a thread or a job is
//! `narrated`, so that the demo can print what it does in the order of the
//! conversation (see the transcript crate).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream,
};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use socket2::{Domain, Socket, Type};
use transcript::lines::BUSY;
use transcript::process::open_descriptors;
use transcript::{
    Failure, OrFail, Told, bytes, event, log, narrated, server, server_note,
    tell,
};

use crate::connection;
use crate::pool::{Pool, worker};

/// What bounds the server.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Worker threads: clients served at the same time.
    pub workers: usize,
    /// Connections open at most, served or waiting for a worker.
    pub max_conns: usize,
    /// How long a client may be silent, take to finish a line, or leave
    /// its replies unread.
    pub idle: Duration,
}

/// The real server: serves until a signal or a `shutdown` line, then
/// finishes gracefully and reports what is left open (nothing).
pub fn run(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    // Block the shutdown signals before any thread exists: every thread
    // inherits the mask, so no thread is interrupted by them, and the signal
    // thread collects them with sigwait (`man 2 sigprocmask`, `man 3 sigwait`).
    shutdown_signals().thread_block().or_fail("pthread_sigmask")?;
    let inherited = open_descriptors();
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let Limits { workers, max_conns, .. } = limits;
    log!(
        "Listening on {local} ({workers} workers, at most {max_conns} \
         connections)"
    );
    serve_until_stopped(listener, limits, &|| ())?;
    let left = open_descriptors();
    if left == inherited {
        log!("Shut down: every descriptor it opened is closed");
    } else {
        log!("Shut down: open descriptors {left} (at start: {inherited})");
    }
    Ok(())
}

/// SIGINT is Ctrl-C; SIGTERM is what `kill` and service managers send.
pub fn shutdown_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

// ANCHOR: serve_until_stopped
/// The server's life: start the pool and the signal thread, accept until
/// told to stop, then let every open connection finish and wait for the
/// workers. `pace` runs before each `accept`: the demo's hook, a no-op in
/// the real server. Returns once nothing is left running.
pub fn serve_until_stopped(
    listener: TcpListener,
    limits: Limits,
    pace: &dyn Fn(),
) -> Result<(), Failure> {
    let local = listener.local_addr().or_fail("getsockname")?;
    // Made now, used at shutdown to wake the accept loop: by then the
    // process may be out of descriptors and unable to make one.
    let waker = Socket::new(Domain::for_address(local), Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        open: Mutex::default(),
        waker: Mutex::new(Some(waker)),
        wake_addr: reachable(local),
    });
    let pool = Pool::start(limits.workers, worker)?;
    let workers = limits.workers;
    server_note(format_args!(
        "{workers} worker threads wait for connections on a channel"
    ));
    start_signal_thread(&shared)?;

    accept_loop(&listener, &shared, &pool, limits, pace);
    close(listener);
    // If the wake-up connection never came, the waker is still open.
    shared.close_waker();
    finish_open_connections(&shared);
    // Closing the channel ends each worker once the queue is empty.
    pool.finish();
    event("every worker has finished");
    Ok(())
}
// ANCHOR_END: serve_until_stopped

// ANCHOR: shared
/// What the accept loop, the workers and the signal thread share.
pub struct Shared {
    /// Set once, when the shutdown begins.
    pub stop: AtomicBool,
    /// Every connection accepted and not yet closed, queued or being
    /// served, by descriptor: the count the limit applies to, and the list
    /// a shutdown must finish.
    open: Mutex<BTreeMap<RawFd, Arc<TcpStream>>>,
    /// The socket that wakes the accept loop at shutdown; the accept loop
    /// closes it once it has taken the wake-up connection.
    waker: Mutex<Option<Socket>>,
    /// Where it connects: the listener's own address.
    wake_addr: SocketAddr,
}
// ANCHOR_END: shared

// ANCHOR: impl_shared
impl Shared {
    /// Starts the shutdown, once: set the flag, then wake the accept loop.
    pub fn begin_shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // A thread blocked in accept stays there until a connection comes:
        // a flag changing does not wake it, and neither does another thread
        // dropping or closing the listener (`man 2 close`). So connect to
        // ourselves: accept returns that connection, and the loop sees the
        // flag.
        let waker = self.waker.lock().unwrap();
        let Some(waker) = waker.as_ref() else { return };
        let addr = self.wake_addr;
        if let Err(err) = waker
            .connect(&addr.into())
            .traced(|| server("connect").on(waker).args(addr))
        {
            event(format_args!(
                "connect to ourselves: {err}: the accept loop stops at the \
                 next client"
            ));
        }
    }

    /// Whether a connection comes from our own wake-up socket.
    fn is_waker(&self, peer: SocketAddr) -> bool {
        let waker = self.waker.lock().unwrap();
        let local = waker.as_ref().and_then(|w| w.local_addr().ok());
        local.and_then(|addr| addr.as_socket()) == Some(peer)
    }

    /// Closes the waker, if it is still open.
    fn close_waker(&self) {
        if let Some(waker) = self.waker.lock().unwrap().take() {
            close(waker);
        }
    }
}
// ANCHOR_END: impl_shared

/// A listener on every address (0.0.0.0) is reached through loopback.
fn reachable(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            (Ipv4Addr::LOCALHOST, local.port()).into()
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            (Ipv6Addr::LOCALHOST, local.port()).into()
        }
        _ => local,
    }
}

// ANCHOR: signal_thread
/// The thread that waits for SIGINT and SIGTERM (blocked everywhere else)
/// and starts the shutdown. A second signal ends the process at once, for
/// when a client keeps the graceful shutdown waiting.
fn start_signal_thread(shared: &Arc<Shared>) -> Result<(), Failure> {
    let shared = Arc::clone(shared);
    let waiting = narrated(move || {
        let mut seen = 0;
        loop {
            match shutdown_signals().wait() {
                Ok(signal) if seen == 0 => {
                    seen += 1;
                    event(format_args!(
                        "sigwait returned {signal}: shutting down"
                    ));
                    shared.begin_shutdown();
                }
                Ok(signal) => {
                    log!("{signal} again: exiting at once");
                    std::process::exit(130);
                }
                // A stop (Ctrl-Z) and continue may interrupt it (man 7
                // signal): it is not a signal, so wait again.
                Err(Errno::EINTR) => {}
                Err(err) => return event(format_args!("sigwait: {err}")),
            }
        }
    });
    thread::Builder::new().spawn(waiting).or_fail("thread::spawn")?;
    Ok(())
}
// ANCHOR_END: signal_thread

// ANCHOR: accept_loop
/// Accepts until the shutdown begins, queueing each connection for the
/// pool, or refusing it when the limit is reached; then takes the clients
/// already waiting in the listener's queue.
fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    pool: &Pool,
    limits: Limits,
    pace: &dyn Fn(),
) {
    while !shared.stop.load(Ordering::SeqCst) {
        pace();
        match listener.accept().traced(|| server("accept").on(listener)) {
            Ok((conn, peer)) => admit(conn, peer, shared, pool, limits),
            Err(err) => {
                event(format_args!("accept: {err}"));
                pause_if_out_of_descriptors(&err);
            }
        }
    }
    server_note(
        "the stop flag is set: take what is queued, then accept no more",
    );
    // Clients in the listener's queue are connected as far as they know
    // (lesson 8) and may have sent requests: closing the listener would
    // reset them. poll with a timeout of 0 tells whether one is waiting.
    let fd = listener.as_raw_fd();
    loop {
        let mut waiting = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let ready =
            poll(&mut waiting, PollTimeout::ZERO).map(i64::from).traced(|| {
                server("poll").args(format_args!("[fd {fd} POLLIN], 1, 0"))
            });
        if ready != Ok(1) {
            return;
        }
        let accepted =
            listener.accept().traced(|| server("accept").on(listener));
        if let Ok((conn, peer)) = accepted {
            admit(conn, peer, shared, pool, limits);
        }
    }
}
// ANCHOR_END: accept_loop

// ANCHOR: admit
/// Queues a new connection for the pool, or refuses it when the limit is
/// reached; closes the shutdown's own wake-up connection.
fn admit(
    conn: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    pool: &Pool,
    limits: Limits,
) {
    if shared.is_waker(peer) {
        server_note("our own wake-up connection: closed");
        close(conn);
        return shared.close_waker();
    }
    let mut open = shared.open.lock().unwrap();
    if open.len() >= limits.max_conns {
        drop(open);
        let max = limits.max_conns;
        event(format_args!(
            "{peer}: {max} connections open, the limit: refused"
        ));
        return refuse(conn);
    }
    let (fd, conn) = (conn.as_raw_fd(), Arc::new(conn));
    open.insert(fd, Arc::clone(&conn));
    drop(open);
    log!("Connected with {peer}");
    let shared = Arc::clone(shared);
    pool.execute(narrated(move || {
        server_note(format_args!("a worker takes fd {fd}"));
        connection::serve(&conn, peer, limits.idle, &shared);
        shared.open.lock().unwrap().remove(&fd);
        // The last handle: dropping it closes the connection.
        drop(conn);
        tell(|| server("close").on_fd(fd).gave(&()));
    }));
    server_note(format_args!("fd {fd} queued for the pool"));
}
// ANCHOR_END: admit

// ANCHOR: refuse
/// Tells a client over the limit so, and closes.
fn refuse(conn: TcpStream) {
    // A new connection's send buffer is empty, so this short line fits and
    // the send cannot hold up the accept loop.
    let _ = (&conn).write(BUSY).traced(|| {
        server("send").on(&conn).args(bytes(BUSY)).args("MSG_NOSIGNAL")
    });
    close(conn);
}
// ANCHOR_END: refuse

// ANCHOR: finish
/// After the listener is closed: end the input of every open connection,
/// so each worker answers what its client has already sent and then
/// closes, instead of waiting for more.
fn finish_open_connections(shared: &Shared) {
    let open = shared.open.lock().unwrap();
    event(format_args!(
        "stopped accepting; {} connections to finish",
        open.len()
    ));
    for conn in open.values() {
        // A recv blocked on this socket returns 0 at once; bytes that had
        // arrived are still returned first (`man 2 shutdown`). A connection
        // still waiting in the queue gets the same when its worker comes.
        let _ = conn
            .shutdown(Shutdown::Read)
            .traced(|| server("shutdown").on(&**conn).args("SHUT_RD"));
    }
}
// ANCHOR_END: finish

/// Closes a socket the server made: dropping it is `close(2)`.
pub fn close(socket: impl AsRawFd) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| server("close").on_fd(fd).gave(&()));
}

/// Out of file descriptors, `accept` fails at once for as long as the
/// condition lasts; retrying at once would spin. Pause instead.
fn pause_if_out_of_descriptors(err: &io::Error) {
    if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        thread::sleep(Duration::from_millis(100));
    }
}
