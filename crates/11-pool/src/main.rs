//! # Lesson 11: a bounded pool, a connection limit and a graceful shutdown
//!
//! The idea: a fixed number of worker threads take connections from a
//! channel, so a flood of clients cannot become a flood of threads. The
//! accept loop counts open connections, and the client above the limit gets
//! a clear `error: server busy` line and a close, not a hang. On Ctrl-C
//! (SIGINT), SIGTERM or a `shutdown` line, the server stops accepting,
//! answers what its clients have already sent, closes every connection and
//! exits with status 0.
//!
//! What was missing before: lesson 10 starts a thread for every connection,
//! however many arrive. It has no limit and no way to stop but being killed
//! mid-reply. Two traps wait on the way to a pool, and the demo shows both.
//! The popular worker loop `while let Ok(job) = rx.lock().unwrap().recv()`
//! holds the lock while the job runs, so the pool runs one job at a time
//! (edition 2024 included). And no thread wakes from `accept` because
//! another thread dropped or closed the listener, so a shutdown must wake it
//! another way: here, by connecting to itself.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream,
};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;
use socket2::{Domain, Socket, Type};
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

/// How long the demo waits for a server thread to report before it gives
/// up: far longer than any step takes, so it only ends a hang.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// The demo's idle limit: long enough that no step comes near it.
const DEMO_IDLE: Duration = Duration::from_secs(10);

/// How long a demo client waits for a reply that cannot come.
const CLIENT_PATIENCE: Duration = Duration::from_millis(200);

/// How long the demo watches a thread that cannot leave `accept`.
const STILL_BLOCKED: Duration = Duration::from_millis(100);

/// Workers and jobs in the experiment with the two worker loops.
const OVERLAP_JOBS: usize = 4;

/// How long a job of that experiment waits for the others to run
/// alongside it before it gives up: they all start at once when they can,
/// so only a pool that cannot run them together ever waits this long.
const OVERLAP_LIMIT: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "lesson-11",
    bin_name = "lesson-11",
    about = "Lesson 11: a bounded thread pool, a connection limit and a graceful shutdown"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// A pool of two workers, a full house, the two traps, then Ctrl-C (the default)
    Demo,
    /// Serve clients with a fixed pool of worker threads until Ctrl-C or a `shutdown` line
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Worker threads: how many clients are served at the same time
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Open connections at most, served or waiting for a worker; the next client is told "server busy"
        #[arg(long, default_value_t = 16)]
        max_conns: usize,
        /// Seconds a client may stay silent (or not read its replies) before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
}

/// What bounds the server.
#[derive(Clone, Copy)]
struct Limits {
    workers: usize,
    max_conns: usize,
    idle: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-11", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, workers, max_conns, idle }) => {
            let limits = Limits {
                workers: at_least_one("--workers", workers)?,
                max_conns: at_least_one("--max-conns", max_conns)?,
                idle: seconds("--idle", idle)?,
            };
            server(addr, limits)
        }
    })
}

/// The real server: serves until a signal or a `shutdown` line, then
/// finishes gracefully and reports what is left open (nothing).
fn server(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    // ANCHOR: server
    // Block the shutdown signals before any thread exists: every thread
    // inherits the mask, so no thread is interrupted by them, and the signal
    // thread collects them with sigwait (`man 2 sigprocmask`, `man 3 sigwait`).
    shutdown_signals().thread_block().or_fail("pthread_sigmask")?;
    let inherited = open_descriptors();
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log(format_args!(
        "Listening on {local} ({} workers, at most {} connections)",
        limits.workers, limits.max_conns
    ));
    run(listener, limits, &Say::Log(None), &Pace::Free)?;
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

/// SIGINT is Ctrl-C; SIGTERM is what `kill` and service managers send.
fn shutdown_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// The server's life: start the pool and the signal thread, accept until
/// told to stop, then let every open connection finish and wait for the
/// workers. Returns once nothing is left running.
fn run(
    listener: TcpListener,
    limits: Limits,
    say: &Say,
    pace: &Pace,
) -> Result<(), Failure> {
    // ANCHOR: run
    let local = listener.local_addr().or_fail("getsockname")?;
    // Made now, used at shutdown to wake the accept loop: by then the
    // process may be out of descriptors and unable to make one.
    let waker = Socket::new(Domain::for_address(local), Type::STREAM, None);
    say.call(|| {
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&waker)
    });
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        open: Mutex::new(BTreeMap::new()),
        waker: Mutex::new(Some(waker.or_fail("socket")?)),
        wake: Mutex::new(Wake::Ready),
        wake_changed: Condvar::new(),
        wake_addr: reachable(local),
    });
    let pool = Pool::start(limits.workers, worker)?;
    say.note(format!(
        "{} worker threads wait for connections on a channel",
        limits.workers
    ));
    start_signal_thread(&shared, say)?;

    accept_loop(&listener, &shared, &pool, limits, say, pace);
    // The thread that began the shutdown closes the waker; wait for it, so
    // that nothing is left open when this returns.
    shared.wait_for_wake(|wake| wake != Wake::Closed, Duration::from_secs(2));

    let fd = listener.as_raw_fd();
    drop(listener);
    say.call(|| call("close").on_fd(fd).gave(&()));
    finish_open_connections(&shared, say);
    // Closing the channel ends each worker once the queue is empty.
    pool.finish();
    say.event("every worker has finished");
    Ok(())
    // ANCHOR_END: run
}

/// What the accept loop, the workers and the signal thread share.
struct Shared {
    /// Set once, when the shutdown begins.
    stop: AtomicBool,
    /// Every connection accepted and not yet closed, queued or being served,
    /// in the order they arrived: the count the limit applies to, and the
    /// list a shutdown must finish.
    open: Mutex<BTreeMap<u64, Arc<TcpStream>>>,
    /// The socket that wakes the accept loop at shutdown; closed after.
    waker: Mutex<Option<Socket>>,
    /// Where it connects: the listener's own address.
    wake_addr: SocketAddr,
    /// How far the wake-up has got.
    wake: Mutex<Wake>,
    wake_changed: Condvar,
}

/// The wake-up connection's progress.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Not used yet.
    Ready,
    /// The accept loop has taken it.
    Taken,
    /// The waker is closed: the shutdown is done with it.
    Closed,
}

impl Shared {
    /// Starts the shutdown, once: set the flag, then wake the accept loop.
    fn begin_shutdown(&self, say: &Say) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // ANCHOR: wake
        // A thread blocked in accept stays there until a connection comes:
        // a flag changing does not wake it, and neither does another thread
        // dropping or closing the listener (`man 2 close`). So connect to
        // ourselves: accept returns that connection, and the loop sees the flag.
        let woke = match self.waker.lock().unwrap().as_ref() {
            Some(waker) => {
                let woke = waker.connect(&self.wake_addr.into());
                say.call(|| {
                    call("connect")
                        .on(waker)
                        .args(self.wake_addr)
                        .returned(&woke)
                });
                woke
            }
            None => Ok(()),
        };
        // ANCHOR_END: wake
        match woke {
            // The accept loop recognises the connection by the waker's
            // address: close the waker once the loop has taken it (a
            // second at most).
            Ok(()) => drop(self.wait_for_wake(|wake| wake == Wake::Ready, Duration::from_secs(1))),
            Err(err) => {
                say.event(format!("connect to ourselves: {err}: the accept loop stops at the next client"))
            }
        }
        if let Some(waker) = self.waker.lock().unwrap().take() {
            let fd = waker.as_raw_fd();
            drop(waker);
            say.call(|| call("close").on_fd(fd).gave(&()));
        }
        self.set_wake(Wake::Closed);
    }

    fn set_wake(&self, state: Wake) {
        let mut wake = self.wake.lock().unwrap();
        if *wake != Wake::Closed {
            *wake = state;
        }
        self.wake_changed.notify_all();
    }

    /// Waits, at most `limit`, while `waiting` holds for the wake-up state.
    fn wait_for_wake(
        &self,
        waiting: impl Fn(Wake) -> bool,
        limit: Duration,
    ) -> Wake {
        let wake = self.wake.lock().unwrap();
        *self
            .wake_changed
            .wait_timeout_while(wake, limit, |wake| waiting(*wake))
            .unwrap()
            .0
    }

    /// Whether a connection comes from our own wake-up socket.
    fn is_waker(&self, peer: SocketAddr) -> bool {
        let waker = self.waker.lock().unwrap();
        let local = waker.as_ref().and_then(|w| w.local_addr().ok());
        local.and_then(|addr| addr.as_socket()) == Some(peer)
    }

    /// Drops the shared handle of a connection that has been served.
    fn forget(&self, id: u64) {
        self.open.lock().unwrap().remove(&id);
    }
}

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

/// The thread that waits for SIGINT and SIGTERM (blocked everywhere else)
/// and starts the shutdown. A second signal ends the process at once, for
/// when a client keeps the graceful shutdown waiting.
fn start_signal_thread(shared: &Arc<Shared>, say: &Say) -> Result<(), Failure> {
    let shared = Arc::clone(shared);
    let (thread_say, reports) = say.for_thread();
    // ANCHOR: signal_thread
    let spawned = thread::Builder::new().spawn(move || {
        let mut signals_seen = 0;
        loop {
            match shutdown_signals().wait() {
                Ok(signal) if signals_seen == 0 => {
                    signals_seen += 1;
                    thread_say.event(format!(
                        "sigwait returned {signal}: shutting down"
                    ));
                    shared.begin_shutdown(&thread_say);
                }
                Ok(signal) => {
                    log(format_args!("{signal} again: exiting at once"));
                    std::process::exit(130);
                }
                Err(err) => {
                    thread_say.event(format!("sigwait: {err}"));
                    return;
                }
            }
        }
    });
    // ANCHOR_END: signal_thread
    spawned.or_fail("thread::spawn")?;
    say.hand_over(reports);
    Ok(())
}

/// Accepts until the shutdown begins, queueing each connection for the
/// pool, or refusing it when the limit is reached.
fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    pool: &Pool,
    limits: Limits,
    say: &Say,
    pace: &Pace,
) {
    let mut arrivals: u64 = 0;
    // ANCHOR: accept_loop
    while !shared.stop.load(Ordering::SeqCst) {
        pace.wait();
        let result = listener.accept();
        say.call(|| call("accept").on(listener).returned(&result));
        match result {
            Ok((conn, peer)) => {
                admit(conn, peer, &mut arrivals, shared, pool, limits, say)
            }
            Err(err) => {
                say.event(format!("accept: {err}"));
                pause_if_out_of_descriptors(&err);
            }
        }
    }
    say.note("the stop flag is set: take what is queued, then accept no more");
    // Clients in the listener's queue are connected as far as they know
    // (lesson 8) and may have sent requests: closing the listener would
    // reset them. poll with a timeout of 0 tells whether one is waiting.
    loop {
        let mut waiting = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut waiting, PollTimeout::ZERO);
        say.call(|| {
            call("poll")
                .args(format!("[fd {} POLLIN], 1, 0", listener.as_raw_fd()))
                .returned(&ready.map(|n| n as i64))
        });
        if ready != Ok(1) {
            break;
        }
        let result = listener.accept();
        say.call(|| call("accept").on(listener).returned(&result));
        if let Ok((conn, peer)) = result {
            admit(conn, peer, &mut arrivals, shared, pool, limits, say);
        }
    }
    // ANCHOR_END: accept_loop
}

/// Queues a new connection for the pool, or refuses it when the limit is
/// reached; closes the shutdown's own wake-up connection.
fn admit(
    conn: TcpStream,
    peer: SocketAddr,
    arrivals: &mut u64,
    shared: &Arc<Shared>,
    pool: &Pool,
    limits: Limits,
    say: &Say,
) {
    if shared.is_waker(peer) {
        say.note("our own wake-up connection: closed");
        close(conn, say);
        shared.set_wake(Wake::Taken);
        return;
    }
    // ANCHOR: limit
    let mut open = shared.open.lock().unwrap();
    if open.len() >= limits.max_conns {
        drop(open);
        say.event(format!(
            "{peer}: {} connections open, the limit: refused",
            limits.max_conns
        ));
        refuse(conn, say);
        return;
    }
    *arrivals += 1;
    let (id, conn) = (*arrivals, Arc::new(conn));
    open.insert(id, Arc::clone(&conn));
    drop(open);
    // ANCHOR_END: limit
    say.log(format!("Connected with {peer}"));
    let fd = conn.as_raw_fd();
    let (conn_say, reports) = say.for_connection(peer);
    let shared = Arc::clone(shared);
    let idle = limits.idle;
    // ANCHOR: execute
    pool.execute(Box::new(move || {
        conn_say.note(format!("a worker takes fd {fd}"));
        serve(&conn, idle, &shared, &conn_say);
        shared.forget(id);
        // The last handle: dropping it closes the connection.
        drop(conn);
        conn_say.call(|| call("close").on_fd(fd).gave(&()));
    }));
    // ANCHOR_END: execute
    say.note(format!("fd {fd} queued for the pool"));
    say.hand_over(reports);
}

/// Tells a client over the limit so, and closes.
fn refuse(conn: TcpStream, say: &Say) {
    // ANCHOR: refuse
    // A new connection's send buffer is empty, so this short line fits and
    // the send cannot hold up the accept loop.
    let sent = (&conn).write(BUSY);
    say.call(|| {
        call("send")
            .on(&conn)
            .args(bytes(BUSY))
            .args("MSG_NOSIGNAL")
            .returned(&sent)
    });
    close(conn, say);
    // ANCHOR_END: refuse
}

/// After the listener is closed: end the input of every open connection,
/// so each worker answers what its client has already sent and then
/// closes, instead of waiting for more.
fn finish_open_connections(shared: &Shared, say: &Say) {
    // ANCHOR: finish
    let open = shared.open.lock().unwrap();
    say.event(format!(
        "stopped accepting; {} connections to finish",
        open.len()
    ));
    for conn in open.values() {
        // A recv blocked on this socket returns 0 at once; bytes that had
        // arrived are still returned first (`man 2 shutdown`). A connection
        // still waiting in the queue gets the same when its worker comes.
        let done = conn.shutdown(Shutdown::Read);
        say.call(|| {
            call("shutdown").on(&**conn).args("SHUT_RD").returned(&done)
        });
    }
    // ANCHOR_END: finish
}

/// A unit of work for the pool.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of worker threads fed from one channel.
struct Pool {
    jobs: Sender<Job>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `size` threads, each running the loop `work`.
    fn start(
        size: usize,
        work: fn(&Mutex<Receiver<Job>>),
    ) -> Result<Pool, Failure> {
        // ANCHOR: pool
        let (jobs, queue) = channel::<Job>();
        // One receiver, shared: each job goes to exactly one worker.
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::with_capacity(size);
        for _ in 0..size {
            let queue = Arc::clone(&queue);
            let spawned = thread::Builder::new().spawn(move || work(&queue));
            workers.push(spawned.or_fail("thread::spawn")?);
        }
        Ok(Pool { jobs, workers })
        // ANCHOR_END: pool
    }

    /// Queues a job; the next free worker runs it. (Sending fails only when
    /// every worker has gone, which nothing here makes happen.)
    fn execute(&self, job: Job) {
        let _ = self.jobs.send(job);
    }

    /// Closes the channel and waits for every worker to finish.
    fn finish(self) {
        drop(self.jobs);
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

// ANCHOR: worker
/// A worker: takes the next job and runs it, until the channel is closed.
fn worker(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock guard is a temporary of this `let` statement, dropped at
        // its `;`: other workers take jobs while this one runs its own.
        // (lock() fails only if a thread panicked while holding it, and no
        // thread holds it for anything but recv.)
        let next = queue.lock().unwrap().recv();
        match next {
            Ok(job) => job(),
            // Closed and empty: the server is shutting down.
            Err(_) => return,
        }
    }
}
// ANCHOR_END: worker

// ANCHOR: worker_holding_the_lock
/// The trap, kept for the demo to measure. A temporary in the scrutinee of
/// `while let` (and of `if let` and `match`) lives until the end of the
/// body, in edition 2024 as before: the guard is held while `job()` runs,
/// and the other workers wait for the lock instead of taking jobs.
fn worker_holding_the_lock(queue: &Mutex<Receiver<Job>>) {
    while let Ok(job) = queue.lock().unwrap().recv() {
        job();
    }
}
// ANCHOR_END: worker_holding_the_lock

/// One connection, from the worker that takes it until it is done.
fn serve(conn: &TcpStream, idle: Duration, shared: &Shared, say: &Say) {
    // A client that goes quiet or stops reading holds a worker, which in a
    // pool is a scarce thing: both directions get a time limit.
    let set = conn.set_read_timeout(Some(idle));
    say.call(|| {
        call("setsockopt")
            .on(conn)
            .args(format!("SO_RCVTIMEO, {}", duration(idle)))
            .returned(&set)
    });
    let set = set.and_then(|()| conn.set_write_timeout(Some(idle)));
    say.call(|| {
        call("setsockopt")
            .on(conn)
            .args(format!("SO_SNDTIMEO, {}", duration(idle)))
            .returned(&set)
    });
    let why = match set {
        Ok(()) => answer_lines(conn, idle, shared, say),
        Err(err) => format!("setsockopt: {err}: closed"),
    };
    say.event(why);
}

/// Reads and answers lines until the conversation ends; returns why.
fn answer_lines(
    conn: &TcpStream,
    idle: Duration,
    shared: &Shared,
    say: &Say,
) -> String {
    // ANCHOR: answer_lines
    let mut lines = Lines::new(MAX_LINE);
    let mut buf = [0u8; RECV_SIZE];
    loop {
        // Blocks this worker only: the others serve their own clients.
        let got = (&*conn).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        say.call(|| {
            received(
                call("recv").on(conn).args(RECV_SIZE).returned(&got),
                &buf[..n],
            )
        });
        match got {
            Ok(0) if shared.stop.load(Ordering::SeqCst) => {
                return "input ended for the shutdown: closed".to_string();
            }
            Ok(0) => return "closed by the client".to_string(),
            Ok(_) => {}
            Err(err) if is_timeout(&err) => {
                return format!("idle for {}: closed", duration(idle));
            }
            Err(err) => return format!("recv: {err}: closed"),
        }
        // One recv may hold half a line or several lines (lesson 5).
        lines.feed(&buf[..n]);
        let mut replies = Vec::new();
        let mut too_long = false;
        let mut shutdown = false;
        while let Some(line) = lines.next_line() {
            match line {
                Ok(line) => {
                    shutdown |= is_shutdown(&line);
                    replies.extend_from_slice(&reply(&line));
                }
                Err(TooLong) => {
                    replies.extend_from_slice(TOO_LONG);
                    too_long = true;
                    break;
                }
            }
        }
        if replies.is_empty() {
            say.note(format!(
                "{} bytes of an unfinished line: recv again",
                lines.partial()
            ));
            continue;
        }
        if let Err(err) = send_all(conn, &replies, say) {
            return format!("send: {err}: closed");
        }
        if too_long {
            // The client may still be sending the rest of that line.
            linger(conn, idle, say);
            return format!("a line longer than {MAX_LINE} bytes: closed");
        }
        if shutdown {
            // This connection is finished like the others, by the shutdown.
            say.event("shutdown requested");
            shared.begin_shutdown(say);
        }
    }
    // ANCHOR_END: answer_lines
}

/// A lingering close, for a connection the server ends while the client
/// may still be sending. Closing a socket with unread bytes makes the
/// kernel send RST and throw away the replies it has not sent yet (lesson
/// 6): a client slow to read would lose them, and the refusal with them.
/// So: FIN after the replies, then read and drop whatever still comes until
/// the client closes its side, or `limit` has passed; only then close.
fn linger(conn: &TcpStream, limit: Duration, say: &Say) {
    let done = conn.shutdown(Shutdown::Write);
    say.call(|| call("shutdown").on(conn).args("SHUT_WR").returned(&done));
    let until = Instant::now() + limit;
    let mut buf = [0u8; RECV_SIZE];
    // Each recv also ends at SO_RCVTIMEO (the idle limit).
    while done.is_ok() && Instant::now() < until {
        let got = (&*conn).read(&mut buf);
        say.call(|| call("recv").on(conn).args(RECV_SIZE).returned(&got));
        if !matches!(got, Ok(n) if n > 0) {
            break;
        }
    }
}

/// `send` until every byte is taken: one call may take fewer (lesson 4).
fn send_all(conn: &TcpStream, mut data: &[u8], say: &Say) -> io::Result<()> {
    while !data.is_empty() {
        let sent = (&*conn).write(data);
        say.call(|| {
            call("send")
                .on(conn)
                .args(bytes(data))
                .args("MSG_NOSIGNAL")
                .returned(&sent)
        });
        data = &data[sent?..];
    }
    Ok(())
}

/// The demo. A pool of two workers with room for three connections: two
/// clients that say nothing hold both workers (as a browser's spare
/// connections would), a third waits in the queue, a fourth is refused.
/// Then the two traps, each measured. Then Ctrl-C: the third client, never
/// served so far, is answered during the shutdown.
///
/// The server threads report each call over channels, and this thread
/// prints the reports in an order the conversation makes certain. The
/// accept loop is paced: it calls `accept` only when this thread says so,
/// because a blocked `accept` has already taken the lowest free descriptor
/// number, and sockets made meanwhile would be numbered by scheduler luck.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "clients"]);
    // Before any thread exists, as the real server does, so that the
    // SIGINT the demo sends itself goes to the signal thread.
    shutdown_signals().thread_block().or_fail("pthread_sigmask")?;

    // ANCHOR: demo_pool
    t.section("two workers, at most three connections");
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    t.server_note(format!(
        "TcpListener::bind(\"{wanted}\") = fd {}: socket, setsockopt, bind, listen",
        listener.as_raw_fd()
    ));
    let limits = Limits { workers: 2, max_conns: 3, idle: DEMO_IDLE };
    let (tx, reports) = channel();
    let (go, permits) = channel();
    let server = thread::spawn(move || {
        run(listener, limits, &Say::To(tx), &Pace::Demo(permits))
    });
    show(&mut t, &reports, 2)?; // socket (the waker), "2 worker threads"
    let signal_thread = next_thread(&reports)?;

    let [a, b, c, d] = ["A", "B", "C", "D"].map(|name| socket(&mut t, name));
    let (a, b, c, d) = (a?, b?, c?, d?);
    let for_a = connected(&mut t, &a, addr, &go, &reports)?;
    show(&mut t, &for_a, 3)?; // "a worker takes", SO_RCVTIMEO, SO_SNDTIMEO
    let for_b = connected(&mut t, &b, addr, &go, &reports)?;
    show(&mut t, &for_b, 3)?;
    t.client_note("A and B say nothing, like a browser's spare connections");
    let for_c = connected(&mut t, &c, addr, &go, &reports)?;
    send(&mut t, &c, b"hello from C\n")?;
    let set = c.set_read_timeout(Some(CLIENT_PATIENCE));
    t.client(
        call("setsockopt")
            .on(&c)
            .args(format!("SO_RCVTIMEO, {}", duration(CLIENT_PATIENCE)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    if recv(&mut t, &c)?.is_some() {
        return Err(Failure::new("demo", "C was answered with no worker free"));
    }
    t.client_note("no reply: both workers wait in recv for A and B");

    connect(&mut t, &d, addr)?;
    permit(&go)?;
    show(&mut t, &reports, 4)?; // accept, "the limit: refused", send, close
    recv(&mut t, &d)?;
    recv(&mut t, &d)?;
    close_client(&mut t, d);
    // ANCHOR_END: demo_pool

    // ANCHOR: demo_traps
    t.section(format!(
        "the worker loop: {OVERLAP_JOBS} workers, {OVERLAP_JOBS} jobs"
    ));
    let together = overlap(worker_holding_the_lock)?;
    t.server_note(format!(
        "while let Ok(job) = queue.lock().unwrap().recv() {{ job() }}: {}",
        at_once(together)
    ));
    let together = overlap(worker)?;
    t.server_note(format!(
        "let next = queue.lock().unwrap().recv(); then run it: {}",
        at_once(together)
    ));

    accept_is_not_woken(&mut t)?;
    // ANCHOR_END: demo_traps

    // ANCHOR: demo_shutdown
    t.section("Ctrl-C: stop accepting, finish, exit");
    permit(&go)?;
    t.server_note(
        "the accept loop calls accept again: only a connection wakes it",
    );
    // To the process, as Ctrl-C does, not to this thread (raise would):
    // every thread blocks SIGINT, and the signal thread's sigwait takes it.
    kill(Pid::this(), Signal::SIGINT).or_fail("kill SIGINT")?;
    t.client_note("the demo sends itself SIGINT, as Ctrl-C does");
    show(&mut t, &signal_thread, 2)?; // "sigwait returned", connect
    show(&mut t, &reports, 3)?; // accept, "wake-up", close
    show(&mut t, &signal_thread, 1)?; // close the waker
    show(&mut t, &reports, 2)?; // "stop flag", poll
    show(&mut t, &reports, 5)?; // close listener, "to finish", 3 x shutdown
    show(&mut t, &for_a, 3)?; // recv 0, "input ended", close
    show(&mut t, &for_b, 3)?;
    recv(&mut t, &a)?;
    recv(&mut t, &b)?;
    show(&mut t, &for_c, 8)?; // "takes", 2 x setsockopt, recv, send, recv 0, "input ended", close
    recv(&mut t, &c)?;
    recv(&mut t, &c)?;
    t.client_note("C's request, sent before the shutdown, was answered");
    show(&mut t, &reports, 1)?; // "every worker has finished"
    server
        .join()
        .map_err(|_| Failure::new("demo", "the server thread panicked"))??;
    for client in [a, b, c] {
        close_client(&mut t, client);
    }
    // ANCHOR_END: demo_shutdown
    Ok(())
}

/// Runs `OVERLAP_JOBS` jobs on a pool of as many workers running the loop
/// `work`, and returns how many of them ran at the same time at most.
fn overlap(work: fn(&Mutex<Receiver<Job>>)) -> Result<usize, Failure> {
    let pool = Pool::start(OVERLAP_JOBS, work)?;
    let meter = Arc::new(Overlap::default());
    let (done, finished) = channel();
    for _ in 0..OVERLAP_JOBS {
        let (meter, done) = (Arc::clone(&meter), done.clone());
        pool.execute(Box::new(move || {
            meter.job();
            let _ = done.send(());
        }));
    }
    for _ in 0..OVERLAP_JOBS {
        finished
            .recv_timeout(REPORT_WAIT)
            .map_err(|_| Failure::new("demo", "a job never finished"))?;
    }
    pool.finish();
    Ok(meter.state.lock().unwrap().most)
}

/// "1 job at a time", "all 4 jobs at once".
fn at_once(jobs: usize) -> String {
    match jobs {
        1 => "1 job at a time".to_string(),
        OVERLAP_JOBS => format!("all {OVERLAP_JOBS} jobs at once"),
        n => format!("at most {n} jobs at once"),
    }
}

/// Counts jobs running at the same time.
#[derive(Default)]
struct Overlap {
    state: Mutex<OverlapState>,
    changed: Condvar,
}

#[derive(Default)]
struct OverlapState {
    running: usize,
    most: usize,
    /// Every job was running at once.
    all_met: bool,
    /// A job waited `OVERLAP_LIMIT` for the others and gave up.
    gave_up: bool,
}

impl Overlap {
    /// One job: count itself in, wait (bounded) until all jobs run at once,
    /// count itself out.
    fn job(&self) {
        let mut state = self.state.lock().unwrap();
        state.running += 1;
        state.most = state.most.max(state.running);
        state.all_met |= state.running == OVERLAP_JOBS;
        self.changed.notify_all();
        let deadline = Instant::now() + OVERLAP_LIMIT;
        while !state.all_met && !state.gave_up {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                state.gave_up = true;
                break;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
        state.running -= 1;
    }
}

/// Trap 2: a thread blocked in `accept` does not notice the listener being
/// dropped elsewhere, nor a flag; a connection wakes it.
fn accept_is_not_woken(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: demo_not_woken
    t.section("what wakes a thread blocked in accept");
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let listener_fd = listener.as_raw_fd();
    t.server_note(format!(
        "TcpListener::bind(\"{wanted}\") = fd {listener_fd}, shared with an accepting thread (Arc)"
    ));
    // Before the thread takes a descriptor number for its accept.
    let waker = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&waker),
    );
    let waker = waker.or_fail("socket")?;

    let listener = Arc::new(listener);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, reports) = channel();
    let acceptor = {
        let (listener, stop) = (Arc::clone(&listener), Arc::clone(&stop));
        thread::spawn(move || {
            accept_until_stopped(listener, &stop, &Say::To(tx))
        })
    };
    t.server_note(format!("a thread blocks in accept(fd {listener_fd})"));

    drop(listener);
    t.server_note(
        "drop(listener) here: no system call, the thread holds its own Arc",
    );
    still_blocked(t, &reports)?;
    stop.store(true, Ordering::SeqCst);
    t.server_note("stop flag set: accept does not look at flags");
    still_blocked(t, &reports)?;

    let woke = waker.connect(&addr.into());
    t.server(call("connect").on(&waker).args(addr).returned(&woke));
    woke.or_fail(format!("connect {addr}"))?;
    show(t, &reports, 4)?; // accept, "stop flag set", close, close listener
    acceptor
        .join()
        .map_err(|_| Failure::new("demo", "the accepting thread panicked"))?;
    let fd = waker.as_raw_fd();
    drop(waker);
    t.server(call("close").on_fd(fd).gave(&()));
    // ANCHOR_END: demo_not_woken
    Ok(())
}

/// The shape of every accept loop with a stop flag. When it ends, the
/// thread's handle is the last one, and dropping it closes the listener.
fn accept_until_stopped(
    listener: Arc<TcpListener>,
    stop: &AtomicBool,
    say: &Say,
) {
    loop {
        let result = listener.accept();
        say.call(|| call("accept").on(&*listener).returned(&result));
        let Ok((conn, _peer)) = result else { continue };
        if stop.load(Ordering::SeqCst) {
            say.note("the stop flag is set: leave the loop");
            close(conn, say);
            break;
        }
    }
    if let Ok(listener) = Arc::try_unwrap(listener) {
        let fd = listener.as_raw_fd();
        drop(listener);
        say.call(|| call("close").on_fd(fd).gave(&()));
    }
}

/// Shows that a thread has reported nothing for `STILL_BLOCKED`.
fn still_blocked(
    t: &mut Transcript,
    reports: &Receiver<Said>,
) -> Result<(), Failure> {
    match reports.recv_timeout(STILL_BLOCKED) {
        Err(RecvTimeoutError::Timeout) => {
            t.server_note(format!(
                "{} ms later no accept has returned: the thread is still in it",
                STILL_BLOCKED.as_millis()
            ));
            Ok(())
        }
        _ => Err(Failure::new("demo", "accept returned by itself")),
    }
}

/// Lets the paced accept loop call `accept` once more.
fn permit(go: &Sender<()>) -> Result<(), Failure> {
    go.send(()).map_err(|_| Failure::new("demo", "the accept loop has stopped"))
}

/// Lets the demo decide when the accept loop calls `accept` next.
enum Pace {
    /// The real server: no waiting.
    Free,
    /// The demo: one `accept` per permit from the main thread.
    Demo(Receiver<()>),
}

impl Pace {
    fn wait(&self) {
        if let Pace::Demo(permits) = self {
            let _ = permits.recv();
        }
    }
}

/// Where a server thread's narration goes.
#[derive(Clone)]
enum Say {
    /// The real server: system calls are not shown; events are printed as
    /// log lines, prefixed with the client's address when there is one.
    Log(Option<SocketAddr>),
    /// The demo: everything goes to the main thread, which prints it.
    To(Sender<Said>),
}

/// One thing a server thread reported to the demo.
enum Said {
    Call(Call),
    Note(String),
    /// The reports of a connection or thread, from now on separate.
    Thread(Receiver<Said>),
}

impl Say {
    /// A system call just made: shown by the demo only.
    fn call(&self, call: impl FnOnce() -> Call) {
        if let Say::To(tx) = self {
            let _ = tx.send(Said::Call(call()));
        }
    }

    /// Commentary: shown by the demo only.
    fn note(&self, text: impl Display) {
        if let Say::To(tx) = self {
            let _ = tx.send(Said::Note(text.to_string()));
        }
    }

    /// A line for the real server's log only.
    fn log(&self, text: impl Display) {
        match self {
            Say::Log(Some(peer)) => log(format_args!("{peer}: {text}")),
            Say::Log(None) => log(format_args!("{text}")),
            Say::To(_) => {}
        }
    }

    /// An event worth a line in the server's log, and a note in the demo.
    fn event(&self, text: impl Display) {
        self.log(&text);
        self.note(&text);
    }

    /// Where a new connection's reports go, and the demo's end of them.
    fn for_connection(
        &self,
        peer: SocketAddr,
    ) -> (Say, Option<Receiver<Said>>) {
        match self {
            Say::Log(_) => (Say::Log(Some(peer)), None),
            Say::To(_) => self.for_thread(),
        }
    }

    /// Where a new thread's reports go, and the demo's end of them.
    fn for_thread(&self) -> (Say, Option<Receiver<Said>>) {
        match self {
            Say::Log(_) => (Say::Log(None), None),
            Say::To(_) => {
                let (tx, rx) = channel();
                (Say::To(tx), Some(rx))
            }
        }
    }

    /// Hands the demo the reports of a new connection or thread.
    fn hand_over(&self, reports: Option<Receiver<Said>>) {
        if let (Say::To(tx), Some(reports)) = (self, reports) {
            let _ = tx.send(Said::Thread(reports));
        }
    }
}

/// Prints the next `n` reports from a server thread, in the server column.
fn show(
    t: &mut Transcript,
    reports: &Receiver<Said>,
    n: usize,
) -> Result<(), Failure> {
    for _ in 0..n {
        match reports.recv_timeout(REPORT_WAIT) {
            Ok(Said::Call(call)) => t.server(call),
            Ok(Said::Note(text)) => t.server_note(text),
            Ok(Said::Thread(_)) => {
                return Err(Failure::new("demo", "unexpected new thread"));
            }
            Err(_) => {
                return Err(Failure::new(
                    "demo",
                    "a server thread stopped reporting",
                ));
            }
        }
    }
    Ok(())
}

/// The separate reports the server handed over next.
fn next_thread(reports: &Receiver<Said>) -> Result<Receiver<Said>, Failure> {
    match reports.recv_timeout(REPORT_WAIT) {
        Ok(Said::Thread(reports)) => Ok(reports),
        _ => Err(Failure::new("demo", "the server handed over no reports")),
    }
}

/// A demo client's socket, made while the accept loop is not in `accept`.
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
    let connected = socket2::SockRef::from(stream).connect(&addr.into());
    t.client(call("connect").on(stream).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))
}

/// Connects, lets the accept loop take the connection and queue it, and
/// returns the reports of the worker that will serve it.
fn connected(
    t: &mut Transcript,
    stream: &TcpStream,
    addr: SocketAddr,
    go: &Sender<()>,
    reports: &Receiver<Said>,
) -> Result<Receiver<Said>, Failure> {
    connect(t, stream, addr)?;
    permit(go)?;
    show(t, reports, 2)?; // accept, "queued for the pool"
    next_thread(reports)
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

/// One `recv`; `None` when it timed out.
fn recv(
    t: &mut Transcript,
    stream: &TcpStream,
) -> Result<Option<Vec<u8>>, Failure> {
    let mut buf = [0u8; RECV_SIZE];
    let got = (&*stream).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.client(received(
        call("recv").on(stream).args(RECV_SIZE).returned(&got),
        &buf[..n],
    ));
    match got {
        Ok(n) => Ok(Some(buf[..n].to_vec())),
        Err(err) if is_timeout(&err) => Ok(None),
        Err(err) => Err(Failure::new("recv", err)),
    }
}

fn close_client(t: &mut Transcript, stream: TcpStream) {
    let fd = stream.as_raw_fd();
    drop(stream);
    t.client(call("close").on_fd(fd).gave(&()));
}

/// A server thread closes a connection.
fn close(conn: TcpStream, say: &Say) {
    let fd = conn.as_raw_fd();
    drop(conn);
    say.call(|| call("close").on_fd(fd).gave(&()));
}

/// Out of file descriptors, `accept` fails at once for as long as the
/// condition lasts; retrying at once would spin. Pause instead.
fn pause_if_out_of_descriptors(err: &io::Error) {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) {
        thread::sleep(Duration::from_millis(100));
    }
}

/// A read or write timeout is `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems (lesson 9).
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
