//! The demo. A pool of two workers with room for three connections: two
//! clients that say nothing hold both workers (as a browser's spare
//! connections would), a third waits in the queue, a fourth is refused.
//! Then the two traps, each measured. Then Ctrl-C: the third client, never
//! served so far, is answered during the shutdown.
//!
//! The server's threads and jobs are `narrated`: each one's narration goes
//! into a channel of its own, and this thread prints each piece when the
//! conversation makes its place certain. The accept loop is paced: it
//! calls `accept` only when this thread says so, because a blocked
//! `accept` has already taken the lowest free descriptor number, and
//! sockets made meanwhile would be numbered by scheduler luck.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socket2::{Domain, Socket, Type};
use transcript::{
    Failure, OrFail, Said, Told, Transcript, client_note, narrated, section,
    server, server_note,
};

// The demo clients' sockets are made while the accept loop is not in
// `accept` (lesson 10 says why).
use transcript::demo::{
    REPORT_WAIT, Threads, answered_within, close_client, connect, joined,
    next_thread, recv_or_timeout, send, show, socket,
};

use crate::pool::{Job, Pool, worker};
use crate::server::{Limits, close, serve_until_stopped, shutdown_signals};

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

/// The server as the demo runs it, and what the demo holds of it.
struct Running {
    addr: SocketAddr,
    /// One permit per `accept` the accept loop may call.
    go: Sender<()>,
    /// The narration of the server's main thread (the accept loop).
    said: Receiver<Said>,
    /// The narration of the signal thread.
    signals: Receiver<Said>,
    thread: JoinHandle<Result<(), Failure>>,
}

/// The timeline: a full house, the two traps, then Ctrl-C.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "clients"]);
    // Before any thread exists, as the real server does, so that the
    // SIGINT the demo sends itself goes to the signal thread.
    shutdown_signals().thread_block().or_fail("pthread_sigmask")?;
    let threads = transcript::threads();

    section("two workers, at most three connections");
    let server = start(&threads)?;
    let [a, b, c, d] = ["A", "B", "C", "D"].map(socket);
    let clients = [a?, b?, c?, d?];
    let workers = full_house(&server, &clients, &threads)?;
    let [a, b, c, d] = clients;
    close_client(d);

    section(format_args!(
        "the worker loop: {OVERLAP_JOBS} workers, {OVERLAP_JOBS} jobs"
    ));
    let together = overlap(worker_holding_the_lock)?;
    server_note(format_args!(
        "while let Ok(job) = queue.lock().unwrap().recv() {{ job() }}: {}",
        at_once(together)
    ));
    let together = overlap(worker)?;
    server_note(format_args!(
        "let next = queue.lock().unwrap().recv(); then run it: {}",
        at_once(together)
    ));

    accept_is_not_woken(&threads)?;
    ctrl_c(server, workers, [&a, &b, &c])?;
    for client in [a, b, c] {
        close_client(client);
    }
    Ok(())
}

/// The server on a port the kernel picks, its accept loop paced.
fn start(threads: &Threads) -> Result<Running, Failure> {
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    server_note(format_args!(
        "TcpListener::bind(\"{wanted}\") = fd {}: socket, setsockopt, bind, \
         listen",
        listener.as_raw_fd()
    ));
    let limits = Limits { workers: 2, max_conns: 3, idle: DEMO_IDLE };
    let (go, permits) = channel();
    // The pace: one `accept` per permit (none once the demo has gone).
    let pace = move || {
        let _ = permits.recv();
    };
    let thread = thread::spawn(narrated(move || {
        serve_until_stopped(listener, limits, &pace)
    }));
    let said = next_thread(threads)?;
    show(&said, 2)?; // socket (the waker), "2 worker threads"
    let signals = next_thread(threads)?;
    Ok(Running { addr, go, said, signals, thread })
}

/// A and B hold both workers, C waits for one, D is refused. Returns the
/// narration of the jobs that serve A, B and C.
fn full_house(
    server: &Running,
    clients: &[TcpStream; 4],
    threads: &Threads,
) -> Result<[Receiver<Said>; 3], Failure> {
    let [a, b, c, d] = clients;
    let for_a = connected(server, a, threads)?;
    show(&for_a, 3)?; // "a worker takes", SO_RCVTIMEO, SO_SNDTIMEO
    let for_b = connected(server, b, threads)?;
    show(&for_b, 3)?;
    client_note("A and B say nothing, like a browser's spare connections");
    let for_c = connected(server, c, threads)?;
    send(c, b"hello from C\n")?;
    if answered_within(c, CLIENT_PATIENCE)? {
        return Err(Failure::new("demo", "C was answered with no worker free"));
    }
    client_note("no reply: both workers wait in recv for A and B");

    connect(d, server.addr)?;
    permit(&server.go)?;
    show(&server.said, 4)?; // accept, "the limit: refused", send, close
    recv_or_timeout(d)?;
    recv_or_timeout(d)?;
    Ok([for_a, for_b, for_c])
}

/// SIGINT: the accept loop is woken, the listener closed, A and B ended,
/// and C, queued all along, is answered before its end.
fn ctrl_c(
    server: Running,
    [for_a, for_b, for_c]: [Receiver<Said>; 3],
    [a, b, c]: [&TcpStream; 3],
) -> Result<(), Failure> {
    section("Ctrl-C: stop accepting, finish, exit");
    permit(&server.go)?;
    server_note(
        "the accept loop calls accept again: only a connection wakes it",
    );
    // To the process, as Ctrl-C does, not to this thread (raise would):
    // every thread blocks SIGINT, and the signal thread's sigwait takes it.
    kill(Pid::this(), Signal::SIGINT).or_fail("kill SIGINT")?;
    client_note("the demo sends itself SIGINT, as Ctrl-C does");
    show(&server.signals, 2)?; // "sigwait returned", connect
    // accept, "wake-up", close, close the waker, "stop flag", poll
    show(&server.said, 6)?;
    show(&server.said, 5)?; // close listener, "to finish", 3 x shutdown
    show(&for_a, 5)?; // recv 0, SIOCOUTQ, SHUT_WR, "input ended", close
    show(&for_b, 5)?;
    recv_or_timeout(a)?;
    recv_or_timeout(b)?;
    // "takes", 2 x setsockopt, recv, send, recv 0, SIOCOUTQ, SHUT_WR,
    // "input ended", close
    show(&for_c, 10)?;
    recv_or_timeout(c)?;
    recv_or_timeout(c)?;
    client_note("C's request, sent before the shutdown, was answered");
    show(&server.said, 1)?; // "every worker has finished"
    joined(server.thread)?
}

/// Runs `OVERLAP_JOBS` jobs on a pool of as many workers running the loop
/// `work`, and returns how many of them ran at the same time at most.
fn overlap(work: fn(&Mutex<Receiver<Job>>)) -> Result<usize, Failure> {
    let pool = Pool::start(OVERLAP_JOBS, work)?;
    let meter = Arc::new(Overlap::default());
    let (done, finished) = channel();
    for _ in 0..OVERLAP_JOBS {
        let (meter, done) = (Arc::clone(&meter), done.clone());
        pool.execute(move || {
            meter.job();
            let _ = done.send(());
        });
    }
    for _ in 0..OVERLAP_JOBS {
        finished
            .recv_timeout(REPORT_WAIT)
            .map_err(|_| Failure::new("demo", "a job never finished"))?;
    }
    pool.finish();
    Ok(meter.state.lock().unwrap().most)
}

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

// ANCHOR: demo_not_woken
/// Trap 2: a thread blocked in `accept` does not notice the listener being
/// dropped elsewhere, nor a flag; a connection wakes it.
fn accept_is_not_woken(threads: &Threads) -> Result<(), Failure> {
    section("what wakes a thread blocked in accept");
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let fd = listener.as_raw_fd();
    server_note(format_args!(
        "TcpListener::bind(\"{wanted}\") = fd {fd}, shared with an \
         accepting thread (Arc)"
    ));
    // Before the thread takes a descriptor number for its accept.
    let waker = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let (listener, stop) =
        (Arc::new(listener), Arc::new(AtomicBool::new(false)));
    let acceptor = thread::spawn(narrated({
        let (listener, stop) = (Arc::clone(&listener), Arc::clone(&stop));
        move || accept_until_stopped(listener, &stop)
    }));
    let said = next_thread(threads)?;
    server_note(format_args!("a thread blocks in accept(fd {fd})"));
    drop(listener);
    server_note(
        "drop(listener) here: no system call, the thread holds its own Arc",
    );
    still_blocked(&said)?;
    stop.store(true, Ordering::SeqCst);
    server_note("stop flag set: accept does not look at flags");
    still_blocked(&said)?;
    waker
        .connect(&addr.into())
        .told(|| server("connect").on(&waker).args(addr))?;
    show(&said, 4)?; // accept, "stop flag set", close, close listener
    joined(acceptor)?;
    close(waker);
    Ok(())
}
// ANCHOR_END: demo_not_woken

// ANCHOR: accept_until_stopped
/// The shape of every accept loop with a stop flag. When it ends, the
/// thread's handle is the last one, and dropping it closes the listener.
fn accept_until_stopped(listener: Arc<TcpListener>, stop: &AtomicBool) {
    loop {
        let accepted =
            listener.accept().traced(|| server("accept").on(&*listener));
        let Ok((conn, _peer)) = accepted else { continue };
        if stop.load(Ordering::SeqCst) {
            server_note("the stop flag is set: leave the loop");
            close(conn);
            break;
        }
    }
    if let Ok(listener) = Arc::try_unwrap(listener) {
        close(listener);
    }
}
// ANCHOR_END: accept_until_stopped

/// Shows that a thread has said nothing for `STILL_BLOCKED`.
fn still_blocked(said: &Receiver<Said>) -> Result<(), Failure> {
    match said.recv_timeout(STILL_BLOCKED) {
        Err(RecvTimeoutError::Timeout) => {
            server_note(format_args!(
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

/// Connects, lets the accept loop take the connection and queue it, and
/// returns the narration of the job that will serve it.
fn connected(
    server: &Running,
    stream: &TcpStream,
    threads: &Threads,
) -> Result<Receiver<Said>, Failure> {
    connect(stream, server.addr)?;
    permit(&server.go)?;
    show(&server.said, 2)?; // accept, "queued for the pool"
    next_thread(threads)
}
