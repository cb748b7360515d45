//! # Lesson 10: many clients, one thread each
//!
//! The idea: `accept` in a loop and hand every connection to a thread of
//! its own. A thread that waits in `recv` for a slow client blocks only
//! itself; the accept loop goes straight back to `accept`, and the other
//! clients' threads keep serving them.
//!
//! What was missing before: the servers of lessons 2 to 9 serve one client
//! at a time. The article's closing remark, that several clients need
//! threads, is where this lesson starts. While one client is connected,
//! even one that has sent half a line and gone quiet, the next client's
//! connection waits in the listener's queue (lesson 8) and its requests go
//! unanswered. The demo shows that first, then the same two clients against
//! a thread per connection, then what each of those threads costs.
//!
//! The protocol is the one all four multi-client servers (lessons 10 to 13)
//! speak: newline-terminated lines of at most 1024 bytes, each answered by
//! itself; a longer line gets `error: line too long` and the connection is
//! closed. The buffer logic lives in `transcript::lines`; every socket call
//! is here.

use std::fmt::Display;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use socket2::{Domain, SockRef, Socket, Type};
use transcript::cli::seconds;
use transcript::lines::{Lines, MAX_LINE, TOO_LONG, TooLong, reply};
use transcript::process::log;
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

/// The demo's idle limit for its connections: long enough that no step of
/// the demo comes near it, so it never fires.
const DEMO_IDLE: Duration = Duration::from_secs(10);

/// How long the demo's second client waits for a reply that cannot come
/// from a server busy with the first client.
const CLIENT_PATIENCE: Duration = Duration::from_millis(200);

/// How many threads the demo starts to measure what one costs.
const MEASURED_THREADS: usize = 100;

#[derive(Parser)]
#[command(
    name = "lesson-10",
    bin_name = "lesson-10",
    about = "Lesson 10: many clients, one thread each"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Two clients against one thread, then a thread each; what a thread costs (the default)
    Demo,
    /// Serve every client on a thread of its own, answering each line with itself
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent (or not read its replies) before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-10", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, idle }) => {
            server(addr, seconds("--idle", idle)?)
        }
    })
}

/// The real server: one thread per connection, for ever.
fn server(addr: SocketAddr, idle: Duration) -> Result<(), Failure> {
    // ANCHOR: server
    // socket, SO_REUSEADDR, bind and listen (lesson 3).
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log(format_args!("Listening on {local}"));
    accept_loop(&listener, idle, &Say::Log(None), None);
    Ok(())
    // ANCHOR_END: server
}

/// Accepts connections and starts a thread for each; stops after `limit`
/// connections if there is one (the demo's), and returns the threads it
/// started then, so the demo can wait for them.
fn accept_loop(
    listener: &TcpListener,
    idle: Duration,
    say: &Say,
    limit: Option<usize>,
) -> Vec<JoinHandle<()>> {
    let mut threads = Vec::new();
    let mut accepted = 0;
    // ANCHOR: accept_loop
    while limit.is_none_or(|limit| accepted < limit) {
        let result = listener.accept();
        say.call(|| call("accept").on(listener).returned(&result));
        let (conn, peer) = match result {
            Ok(pair) => pair,
            Err(err) => {
                // One connection failed (it was reset while queued, or we are
                // out of descriptors): not a reason to stop serving.
                say.event(format!("accept: {err}"));
                pause_if_out_of_descriptors(&err);
                continue;
            }
        };
        accepted += 1;
        say.log(format!("Connected with {peer}"));
        let fd = conn.as_raw_fd();
        let (conn_say, reports) = say.for_connection(peer);
        // The new thread owns the connection; this one goes back to accept
        // at once. A thread that cannot be created (the process is at its
        // thread limit) drops the connection with the closure: a close.
        let spawned =
            thread::Builder::new().spawn(move || serve(conn, idle, &conn_say));
        match spawned {
            Ok(thread) => {
                say.note(format!("thread::spawn: a new thread serves fd {fd}"));
                say.new_thread(reports);
                if limit.is_some() {
                    threads.push(thread);
                }
            }
            Err(err) => {
                say.event(format!("{peer}: no thread for it ({err}): closed"))
            }
        }
    }
    // ANCHOR_END: accept_loop
    threads
}

/// The whole life of one connection: read, answer every complete line,
/// until the client closes, goes idle, misbehaves or fails.
fn serve(conn: TcpStream, idle: Duration, say: &Say) {
    // ANCHOR: serve
    // A client that goes quiet, or stops reading its replies, would hold
    // this thread for ever: both directions get a time limit (lesson 9).
    let set = conn.set_read_timeout(Some(idle));
    say.call(|| {
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", duration(idle)))
            .returned(&set)
    });
    let set = set.and_then(|()| conn.set_write_timeout(Some(idle)));
    say.call(|| {
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_SNDTIMEO, {}", duration(idle)))
            .returned(&set)
    });
    let why = match set {
        Ok(()) => answer_lines(&conn, idle, say),
        Err(err) => format!("setsockopt: {err}: closed"),
    };
    say.event(why);
    let fd = conn.as_raw_fd();
    drop(conn);
    say.call(|| call("close").on_fd(fd).gave(&()));
    // ANCHOR_END: serve
}

/// Reads and answers lines until the conversation ends; returns why it did.
fn answer_lines(conn: &TcpStream, idle: Duration, say: &Say) -> String {
    // ANCHOR: answer_lines
    let mut lines = Lines::new(MAX_LINE);
    let mut buf = [0u8; RECV_SIZE];
    loop {
        // Blocks this thread only: the other clients have threads of their own.
        let got = (&*conn).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        say.call(|| {
            received(
                call("recv").on(conn).args(RECV_SIZE).returned(&got),
                &buf[..n],
            )
        });
        match got {
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
        while let Some(line) = lines.next_line() {
            match line {
                Ok(line) => replies.extend_from_slice(&reply(&line)),
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
    }
    // ANCHOR_END: answer_lines
}

// ANCHOR: linger
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
// ANCHOR_END: linger

/// `send` until every byte is taken: one call may take fewer (lesson 4).
fn send_all(conn: &TcpStream, mut data: &[u8], say: &Say) -> io::Result<()> {
    while !data.is_empty() {
        // std's write is send(..., MSG_NOSIGNAL): a closed peer is an
        // error, not a SIGPIPE that kills the whole server (lesson 6).
        let sent = (&*conn).write(data);
        say.call(|| {
            call("send")
                .on(conn)
                .args(bytes(data))
                .args("MSG_NOSIGNAL")
                .returned(&sent)
        });
        let sent = sent?;
        data = &data[sent..];
    }
    Ok(())
}

/// The demo: two clients, A (slow: half a line, then a pause) and B (quick),
/// first against a server with one thread, then against one with a thread
/// per connection. The server threads do not print: they report each call
/// over a channel, and this thread prints the reports in the order the
/// conversation makes certain, so the transcript is the same on every run
/// however the kernel schedules the threads.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "clients"]);

    // ANCHOR: demo_listen
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    t.server_note(format!(
        "TcpListener::bind(\"{wanted}\") = fd {}: socket, setsockopt, bind, listen (lesson 3)",
        listener.as_raw_fd()
    ));
    // ANCHOR_END: demo_listen

    // ANCHOR: demo_one_thread
    t.section("one thread for every client, as in lesson 2");
    // Both clients' sockets first: a thread blocked in accept has already
    // taken the lowest free descriptor number for the connection it waits
    // for, so creating sockets while it waits would number them by luck.
    let a = socket(&mut t, "A")?;
    let b = socket(&mut t, "B")?;
    let (tx, reports) = channel();
    let server = thread::spawn(move || {
        one_at_a_time(&listener, 2, &Say::To(tx));
        listener
    });
    connect(&mut t, &a, addr)?;
    show(&mut t, &reports, 3)?; // accept, SO_RCVTIMEO, SO_SNDTIMEO
    send(&mut t, &a, b"slow ")?;
    show(&mut t, &reports, 2)?; // recv, "unfinished line"

    connect(&mut t, &b, addr)?;
    t.client_note(
        "connected: the kernel completed the handshake, nobody accepted",
    );
    send(&mut t, &b, b"hello from B\n")?;
    let set = b.set_read_timeout(Some(CLIENT_PATIENCE));
    t.client(
        call("setsockopt")
            .on(&b)
            .args(format!("SO_RCVTIMEO, {}", duration(CLIENT_PATIENCE)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    let got = recv(&mut t, &b)?;
    if got.is_some() {
        return Err(Failure::new("demo", "B was answered by a busy server"));
    }
    t.client_note(
        "no reply for B: the server's only thread waits in recv for A",
    );

    send(&mut t, &a, b"client\n")?;
    show(&mut t, &reports, 2)?; // recv, send
    recv(&mut t, &a)?;
    // A is done: shutdown(SHUT_WR) ends its stream like close would, but
    // A keeps its descriptor number until the end of this part, so the
    // server's next accept cannot be given it (which would make the
    // kernel's record of who used fd 4 first depend on thread timing).
    let done = a.shutdown(Shutdown::Write);
    t.client(call("shutdown").on(&a).args("SHUT_WR").returned(&done));
    done.or_fail("shutdown")?;
    show(&mut t, &reports, 3)?; // recv 0, "closed by the client", close
    t.server_note("only now does the server get back to accept");
    show(&mut t, &reports, 5)?; // accept, SO_RCVTIMEO, SO_SNDTIMEO, recv, send
    recv(&mut t, &b)?;
    close(&mut t, b)?;
    show(&mut t, &reports, 3)?; // recv 0, "closed by the client", close
    close(&mut t, a)?;
    let listener = server
        .join()
        .map_err(|_| Failure::new("demo", "the server thread panicked"))?;
    // ANCHOR_END: demo_one_thread

    // ANCHOR: demo_threads
    t.section("one thread per client");
    let a = socket(&mut t, "A")?;
    let b = socket(&mut t, "B")?;
    let (tx, reports) = channel();
    let acceptor = thread::spawn(move || {
        let threads = accept_loop(&listener, DEMO_IDLE, &Say::To(tx), Some(2));
        (listener, threads)
    });
    connect(&mut t, &a, addr)?;
    show(&mut t, &reports, 2)?; // accept, thread::spawn
    let for_a = next_thread(&reports)?;
    show(&mut t, &for_a, 2)?; // SO_RCVTIMEO, SO_SNDTIMEO
    send(&mut t, &a, b"slow ")?;
    show(&mut t, &for_a, 2)?; // recv, "unfinished line"

    connect(&mut t, &b, addr)?;
    show(&mut t, &reports, 2)?; // accept, thread::spawn
    let for_b = next_thread(&reports)?;
    show(&mut t, &for_b, 2)?; // SO_RCVTIMEO, SO_SNDTIMEO
    send(&mut t, &b, b"hello from B\n")?;
    show(&mut t, &for_b, 2)?; // recv, send
    recv(&mut t, &b)?;
    t.client_note("B is answered while A is still in the middle of its line");

    send(&mut t, &a, b"client\n")?;
    show(&mut t, &for_a, 2)?; // recv, send
    recv(&mut t, &a)?;
    close(&mut t, a)?;
    show(&mut t, &for_a, 3)?; // recv 0, "closed by the client", close
    close(&mut t, b)?;
    show(&mut t, &for_b, 3)?; // recv 0, "closed by the client", close
    let (listener, threads) = acceptor
        .join()
        .map_err(|_| Failure::new("demo", "the accepting thread panicked"))?;
    for thread in threads {
        thread.join().map_err(|_| {
            Failure::new("demo", "a connection's thread panicked")
        })?;
    }
    // ANCHOR_END: demo_threads

    thread_cost(&mut t)?;

    let fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(fd).gave(&()));
    Ok(())
}

/// Lesson 2's loop, for comparison: the next `accept` waits until the
/// current client is done.
fn one_at_a_time(listener: &TcpListener, clients: usize, say: &Say) {
    // ANCHOR: one_at_a_time
    for _ in 0..clients {
        let result = listener.accept();
        say.call(|| call("accept").on(listener).returned(&result));
        if let Ok((conn, _peer)) = result {
            serve(conn, DEMO_IDLE, say);
        }
    }
    // ANCHOR_END: one_at_a_time
}

/// Starts `MEASURED_THREADS` threads that wait, as a connection's thread
/// waits in `recv`, and reads what the kernel says they cost.
fn thread_cost(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: demo_cost
    t.section(format!("what {MEASURED_THREADS} waiting threads cost"));
    // `join` returns when a thread has finished, a moment before the kernel
    // stops counting it: wait (bounded) for the demo's earlier threads to go.
    let before = Status::settled(1)?;
    t.server_note(format!("/proc/self/status: Threads: {}", before.threads));
    let (started_tx, started) = channel();
    let release = Arc::new(Barrier::new(MEASURED_THREADS + 1));
    let mut threads = Vec::new();
    for _ in 0..MEASURED_THREADS {
        let started_tx = started_tx.clone();
        let release = Arc::clone(&release);
        let spawned = thread::Builder::new().spawn(move || {
            let _ = started_tx.send(());
            release.wait();
        });
        threads.push(spawned.or_fail("thread::spawn")?);
    }
    // Measure once every thread runs, so each has touched its stack.
    for _ in 0..MEASURED_THREADS {
        started.recv_timeout(REPORT_WAIT).map_err(|_| {
            Failure::new("demo", "a measured thread never started")
        })?;
    }
    let after = Status::read()?;
    release.wait();
    for thread in threads {
        let _ = thread.join();
    }
    t.server_note(format!(
        "{MEASURED_THREADS} threads started and waiting: Threads: {}",
        after.threads
    ));
    let per_thread =
        after.rss_kib.saturating_sub(before.rss_kib) / MEASURED_THREADS as u64;
    // A rounded bucket, not the figure: the exact growth varies by a page
    // or two from run to run (about 10 KiB per thread on x86-64 Linux).
    t.server_note(if per_thread < 32 {
        "VmRSS grew by less than 32 KiB per thread: the stack pages it touched"
    } else {
        "VmRSS grew by 32 KiB or more per thread"
    });
    // ANCHOR_END: demo_cost
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
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            let status = Status::read()?;
            if status.threads == threads || std::time::Instant::now() > deadline
            {
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
    /// The reports of a thread just started for a connection.
    Thread(Receiver<Said>),
}

impl Say {
    /// A system call just made: shown by the demo only. Built lazily, so the
    /// real server does not format what it will not print.
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

    /// Where the thread for a new connection reports, and, in the demo, the
    /// receiving end for the main thread.
    fn for_connection(
        &self,
        peer: SocketAddr,
    ) -> (Say, Option<Receiver<Said>>) {
        match self {
            Say::Log(_) => (Say::Log(Some(peer)), None),
            Say::To(_) => {
                let (tx, rx) = channel();
                (Say::To(tx), Some(rx))
            }
        }
    }

    /// Hands the demo the reports of a thread just started.
    fn new_thread(&self, reports: Option<Receiver<Said>>) {
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

/// The reports of the thread the accept loop started last.
fn next_thread(reports: &Receiver<Said>) -> Result<Receiver<Said>, Failure> {
    match reports.recv_timeout(REPORT_WAIT) {
        Ok(Said::Thread(reports)) => Ok(reports),
        _ => Err(Failure::new("demo", "the accept loop started no thread")),
    }
}

/// A demo client's socket, made before any server thread can be waiting in
/// `accept` (see the demo).
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

fn close(t: &mut Transcript, stream: TcpStream) -> Result<(), Failure> {
    let fd = stream.as_raw_fd();
    drop(stream);
    t.client(call("close").on_fd(fd).gave(&()));
    Ok(())
}

/// Out of file descriptors, `accept` fails at once for as long as the
/// condition lasts; retrying at once would spin on the CPU. Pausing stops
/// accepting for a moment (lesson 13 shows other ways).
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
