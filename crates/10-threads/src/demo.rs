//! The demo: two clients, A (slow: half a line, then a pause) and B
//! (quick), first against a server with one thread, then against one with
//! a thread per connection; then what a thread costs.
//!
//! The server threads do not print: each is `narrated`, so its narration
//! goes into a channel of its own, and this thread prints each piece when
//! the conversation makes its place certain. So the transcript is the same
//! on every run, however the kernel schedules the threads.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use transcript::child::{self, ChildSaid};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, client, client_note, hushed,
    narrated, section, server, server_note, tell,
};

// The demo clients' sockets are made before any server thread can be
// waiting in `accept`: a thread blocked in accept has already taken the
// lowest free descriptor number for the connection it waits for, so
// sockets made while it waits would be numbered by luck.
use transcript::demo::{
    REPORT_WAIT, Threads, answered_within, connect, joined, next_thread,
    recv_or_timeout, send, show, socket,
};

use crate::fork;
use crate::server::{accept_one, serve};

/// The demo's idle limit for its connections: long enough that no step of
/// the demo comes near it, so it never fires.
const DEMO_IDLE: Duration = Duration::from_secs(10);

/// How long the demo's second client waits for a reply that cannot come
/// from a server busy with the first client.
const CLIENT_PATIENCE: Duration = Duration::from_millis(200);

/// How many threads the demo starts to measure what one costs.
const MEASURED_THREADS: usize = 100;

/// The timeline: one thread for both clients, then a thread each, then
/// what threads cost.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "clients"]);
    let threads = transcript::threads();
    let (listener, addr) = listen()?;
    let listener = one_thread(listener, addr, &threads)?;
    let listener = thread_each(listener, addr, &threads)?;
    thread_cost()?;
    close(listener, server);
    process_each()
}

/// The listener both parts use, on a port the kernel picks.
fn listen() -> Result<(TcpListener, SocketAddr), Failure> {
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    server_note(format_args!(
        "TcpListener::bind(\"{wanted}\") = fd {}: socket, setsockopt, bind, \
         listen (lesson 3)",
        listener.as_raw_fd()
    ));
    Ok((listener, addr))
}

// ANCHOR: one_at_a_time
/// Lesson 2's loop, for comparison: the next `accept` waits until the
/// current client is done.
fn one_at_a_time(listener: &TcpListener, clients: usize) {
    for _ in 0..clients {
        let accepted =
            listener.accept().traced(|| server("accept").on(listener));
        if let Ok((conn, peer)) = accepted {
            serve(conn, peer, DEMO_IDLE);
        }
    }
}
// ANCHOR_END: one_at_a_time

/// A waits in the middle of a line; B, behind it, waits for its turn.
fn one_thread(
    listener: TcpListener,
    addr: SocketAddr,
    threads: &Threads,
) -> Result<TcpListener, Failure> {
    section("one thread for all clients, as in lesson 2");
    let (a, b) = (socket("A")?, socket("B")?);
    let server = thread::spawn(narrated(move || {
        one_at_a_time(&listener, 2);
        listener
    }));
    let said = next_thread(threads)?;
    connect(&a, addr)?;
    show(&said, 3)?; // accept, SO_RCVTIMEO, SO_SNDTIMEO
    send(&a, b"slow ")?;
    show(&said, 2)?; // recv, "unfinished line"
    b_is_not_answered(&b, addr)?;
    send(&a, b"client\n")?;
    show(&said, 2)?; // recv, send
    recv_or_timeout(&a)?;
    // A is done: shutdown(SHUT_WR) ends its stream like close would, but
    // A keeps its descriptor number until the end of this part, so the
    // server's next accept cannot be given it (which would make the
    // kernel's record of who used fd 4 first depend on thread timing).
    a.shutdown(Shutdown::Write)
        .told(|| client("shutdown").on(&a).args("SHUT_WR"))?;
    show(&said, 3)?; // recv 0, "closed by the client", close
    server_note("only now does the server get back to accept");
    show(&said, 5)?; // accept, SO_RCVTIMEO, SO_SNDTIMEO, recv, send
    recv_or_timeout(&b)?;
    close(b, client);
    show(&said, 3)?; // recv 0, "closed by the client", close
    close(a, client);
    joined(server)
}

/// B connects and sends a line, while the server's only thread waits for
/// the rest of A's.
fn b_is_not_answered(b: &TcpStream, addr: SocketAddr) -> Result<(), Failure> {
    connect(b, addr)?;
    client_note(
        "connected: the kernel completed the handshake, nobody accepted",
    );
    send(b, b"hello from B\n")?;
    if answered_within(b, CLIENT_PATIENCE)? {
        return Err(Failure::new("demo", "B was answered by a busy server"));
    }
    client_note("no reply for B: the server's only thread waits in recv for A");
    Ok(())
}

/// The same two clients, a thread each: B is answered while A dawdles.
fn thread_each(
    listener: TcpListener,
    addr: SocketAddr,
    threads: &Threads,
) -> Result<TcpListener, Failure> {
    section("one thread per client");
    let (a, b) = (socket("A")?, socket("B")?);
    let acceptor = thread::spawn(narrated(move || {
        let served = [0; 2].map(|_| accept_one(&listener, DEMO_IDLE));
        (listener, served)
    }));
    let said = next_thread(threads)?;
    connect(&a, addr)?;
    show(&said, 2)?; // accept, thread::spawn
    let for_a = next_thread(threads)?;
    show(&for_a, 2)?; // SO_RCVTIMEO, SO_SNDTIMEO
    send(&a, b"slow ")?;
    show(&for_a, 2)?; // recv, "unfinished line"

    connect(&b, addr)?;
    show(&said, 2)?; // accept, thread::spawn
    let for_b = next_thread(threads)?;
    show(&for_b, 2)?; // SO_RCVTIMEO, SO_SNDTIMEO
    send(&b, b"hello from B\n")?;
    show(&for_b, 2)?; // recv, send
    recv_or_timeout(&b)?;
    client_note("B is answered while A is still in the middle of its line");

    send(&a, b"client\n")?;
    show(&for_a, 2)?; // recv, send
    recv_or_timeout(&a)?;
    close(a, client);
    show(&for_a, 3)?; // recv 0, "closed by the client", close
    close(b, client);
    show(&for_b, 3)?; // recv 0, "closed by the client", close
    let (listener, served) = joined(acceptor)?;
    for thread in served.into_iter().flatten() {
        joined(thread)?;
    }
    Ok(listener)
}

/// Starts `MEASURED_THREADS` threads that wait, as a connection's thread
/// waits in `recv`, and reads what the kernel says they cost.
fn thread_cost() -> Result<(), Failure> {
    section(format_args!("what {MEASURED_THREADS} waiting threads cost"));
    // `join` returns when a thread has finished, a moment before the kernel
    // stops counting it: wait (bounded) for the demo's earlier threads to go.
    let before = Status::settled(1)?;
    server_note(format_args!("/proc/self/status: Threads: {}", before.threads));
    let (started_tx, started) = channel();
    let release = Arc::new(Barrier::new(MEASURED_THREADS + 1));
    let mut waiting = Vec::new();
    for _ in 0..MEASURED_THREADS {
        let (started_tx, release) = (started_tx.clone(), Arc::clone(&release));
        let spawned = thread::Builder::new().spawn(move || {
            let _ = started_tx.send(());
            release.wait();
        });
        waiting.push(spawned.or_fail("thread::spawn")?);
    }
    // Measure once every thread runs, so each has touched its stack.
    for _ in 0..MEASURED_THREADS {
        started.recv_timeout(REPORT_WAIT).map_err(|_| {
            Failure::new("demo", "a measured thread never started")
        })?;
    }
    let after = Status::read()?;
    release.wait();
    for thread in waiting {
        let _ = thread.join();
    }
    server_note(format_args!(
        "{MEASURED_THREADS} threads started and waiting: Threads: {}",
        after.threads
    ));
    let per_thread =
        after.rss_kib.saturating_sub(before.rss_kib) / MEASURED_THREADS as u64;
    // A rounded bucket, not the figure: the exact growth varies by a page
    // or two from run to run (about 10 KiB per thread on x86-64 Linux).
    server_note(if per_thread < 32 {
        "VmRSS grew by less than 32 KiB per thread: the stack pages it touched"
    } else {
        "VmRSS grew by 32 KiB or more per thread"
    });
    Ok(())
}

/// The two lines of `/proc/self/status` that say what threads cost.
struct Status {
    threads: u64,
    rss_kib: u64,
}

impl Status {
    /// The status once the process has `threads` threads, or after a second
    /// if it never gets there (the transcript then shows the surprise).
    fn settled(threads: u64) -> Result<Status, Failure> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let status = Status::read()?;
            if status.threads == threads || Instant::now() > deadline {
                return Ok(status);
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn read() -> Result<Status, Failure> {
        let text = std::fs::read_to_string("/proc/self/status")
            .or_fail("read /proc/self/status")?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim().trim_end_matches(" kB").parse().ok()
                })
                .ok_or(Failure::new("/proc/self/status", format!("no {name}")))
        };
        Ok(Status { threads: field("Threads:")?, rss_kib: field("VmRSS:")? })
    }
}

/// Closes a socket of `side`'s: dropping it is `close(2)`.
fn close(socket: impl AsRawFd, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}

/// How many short connections each design serves, per round, to compare
/// what a process and a thread per connection cost.
const MEASURED_CONNECTIONS: usize = 20;

/// Rounds of that comparison, alternating the designs: the median round
/// is shown, so one disturbed round (another program on the CPU) does not
/// decide it.
const ROUNDS: usize = 5;

/// A process per connection: who closes what, a zombie and its reaping,
/// SIG_IGN, and what a process costs next to a thread.
fn process_each() -> Result<(), Failure> {
    section("one process per client (fork)");
    let (listener, addr) = listen()?;
    let children = child::children();
    // SIGCHLD keeps its default action here: the first child is a zombie
    // until the demo waits for it.
    let pid = served_by_a_child(&listener, addr, &children, "A")?;
    zombie(pid)?;
    let reaped = waitpid(pid, None).map(|_| i64::from(pid.as_raw()));
    reaped.told(|| server("waitpid").args("the child, 0").shown("its pid"))?;
    server_note("reaped: the zombie is gone from the process table");

    fork::reap_automatically()?;
    let pid = served_by_a_child(&listener, addr, &children, "B")?;
    let none = waitpid(pid, None).map(|_| 0i64);
    let _ = none.traced(|| server("waitpid").args("the child, 0"));
    server_note("ECHILD: with SIG_IGN the kernel reaped the child itself");
    fork_cost(&listener, addr)?;
    close(listener, server);
    Ok(())
}

/// One client, served by a child process, from `connect` to the end of
/// the stream; returns the child's pid.
fn served_by_a_child(
    listener: &TcpListener,
    addr: SocketAddr,
    children: &Receiver<ChildSaid>,
    name: &str,
) -> Result<Pid, Failure> {
    let c = socket(name)?;
    connect(&c, addr)?;
    let pid = fork::accept_one(listener, DEMO_IDLE)
        .ok_or(Failure::new("demo", "no child was forked"))?;
    let mut said = children
        .recv_timeout(REPORT_WAIT)
        .map_err(|_| Failure::new("demo", "no child's narration"))?;
    // A note, close(listener), SO_RCVTIMEO, SO_SNDTIMEO.
    show_child(&mut said, 4)?;
    send(&c, format!("hello from {name}\n").as_bytes())?;
    show_child(&mut said, 2)?; // recv, send
    recv_or_timeout(&c)?;
    // The child also holds a copy of this client's socket (the demo plays
    // both sides in one process): close would not end the connection
    // while that copy lives, shutdown does.
    c.shutdown(Shutdown::Write)
        .told(|| client("shutdown").on(&c).args("SHUT_WR"))?;
    show_child(&mut said, 3)?; // recv 0, "closed by the client", close
    recv_or_timeout(&c)?;
    client_note("0: the end of the stream, as the last copy was closed");
    close(c, client);
    Ok(pid)
}

/// Prints the next `n` pieces of a child's narration.
fn show_child(said: &mut ChildSaid, n: usize) -> Result<(), Failure> {
    for _ in 0..n {
        said.next_said()
            .ok_or(Failure::new("demo", "a child fell silent"))?
            .show();
    }
    Ok(())
}

/// Waits (bounded) until the child has exited, and shows its state in
/// `/proc`: Z, a zombie, until its parent waits for it.
fn zombie(pid: Pid) -> Result<(), Failure> {
    let stat = format!("/proc/{pid}/stat");
    let deadline = Instant::now() + REPORT_WAIT;
    loop {
        let text =
            std::fs::read_to_string(&stat).or_fail(format!("read {stat}"))?;
        // The state follows the command's name in parentheses.
        let state = text.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        if state == Some('Z') || Instant::now() > deadline {
            server_note(format_args!(
                "the child has exited: /proc/<pid>/stat says state {}",
                state
                    .map_or("unknown".to_string(), |s| format!("{s} (zombie)"))
            ));
            return Ok(());
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Serves `MEASURED_CONNECTIONS` short connections with a process each,
/// then with a thread each, `ROUNDS` times, and shows how their times
/// compare: a ratio, as the seconds depend on the machine.
fn fork_cost(listener: &TcpListener, addr: SocketAddr) -> Result<(), Failure> {
    // The measured threads' narration goes to channels no one reads.
    let _unread = transcript::threads();
    let mut ratios = Vec::new();
    for _ in 0..ROUNDS {
        let processes = hushed(|| timed(listener, addr, Design::Process))?;
        let threads = hushed(|| timed(listener, addr, Design::Thread))?;
        ratios.push(processes.as_secs_f64() / threads.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ROUNDS / 2];
    // The figure depends on the machine, its load, and whether strace
    // (which slows every call) is watching: stderr gets it, the transcript
    // what was measured.
    eprintln!(
        "lesson-10: a process each took {median:.1} times as long as a \
         thread each (median of {ROUNDS} rounds)"
    );
    server_note(format_args!(
        "{MEASURED_CONNECTIONS} short connections a process each, then a \
         thread each, {ROUNDS} rounds: the ratio of the times is on stderr"
    ));
    Ok(())
}

#[derive(Clone, Copy)]
enum Design {
    Process,
    Thread,
}

/// The time to serve `MEASURED_CONNECTIONS` connections one after the
/// other: connect, a line, its reply, the end of the stream, and the
/// thread joined or the process gone.
fn timed(
    listener: &TcpListener,
    addr: SocketAddr,
    design: Design,
) -> Result<Duration, Failure> {
    let started = Instant::now();
    for _ in 0..MEASURED_CONNECTIONS {
        let c = TcpStream::connect(addr).or_fail("connect")?;
        let server = match design {
            Design::Process => fork::accept_one(listener, DEMO_IDLE).map(Ok),
            Design::Thread => accept_one(listener, DEMO_IDLE).map(Err),
        }
        .ok_or(Failure::new("demo", "a connection was not served"))?;
        (&c).write_all(b"x\n").or_fail("send")?;
        let mut buf = [0u8; 16];
        let _ = (&c).read(&mut buf).or_fail("recv")?;
        c.shutdown(Shutdown::Write).or_fail("shutdown")?;
        let _ = (&c).read(&mut buf).or_fail("recv")?;
        match server {
            // With SIG_IGN, waitpid returns ECHILD once the child is gone.
            Ok(pid) => drop(waitpid(pid, None)),
            Err(thread) => joined(thread)?,
        }
    }
    Ok(started.elapsed())
}
