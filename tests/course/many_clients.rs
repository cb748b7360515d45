//! The load every multi-client server (lessons 10 to 13) must carry, in one
//! place so the four designs are held to the same standard.
//!
//! [`serve_them_all`] connects [`CLIENTS`] well-behaved clients at once;
//! each sends [`LINES`] lines, a few at a time, and must get exactly its own
//! replies, in order. All the while a slow client (one byte at a time) and
//! an idle client (nothing at all) stay connected, and a half-closing
//! client, a resetting client and one with an over-long line come and go.
//! None of them may block, crash or confuse the server. Everything is on
//! loopback, bounded in count, and every read has a time limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socket2::{Domain, SockRef, Socket, Type};

use crate::support::Server;

/// How many well-behaved clients are connected at the same time.
pub const CLIENTS: usize = 200;

/// How many lines each of them sends.
pub const LINES: usize = 50;

/// How many lines a client sends before it reads their replies.
const BATCH: usize = 5;

/// No single read may wait longer than this: a server that loses or holds
/// back a reply fails the test instead of hanging it.
const READ_LIMIT: Duration = Duration::from_secs(30);

/// The longest line the servers accept (`transcript::lines::MAX_LINE`).
const MAX_LINE: usize = 1024;

/// What one run measured.
pub struct Report {
    /// Wall time from the first request to the last reply of the
    /// well-behaved clients.
    pub elapsed: Duration,
    /// Lines the slow client got answered while the others ran.
    pub slow_lines: usize,
}

/// One load at a time: the test binary runs tests in parallel, and five
/// crowds of 200 at once would slow the machine enough to disturb the
/// timing-sensitive demos of other lessons running beside them.
static ONE_CROWD_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the whole load against the server at `addr` and checks every reply.
pub fn serve_them_all(addr: &str) -> Report {
    let _turn =
        ONE_CROWD_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let addr: SocketAddr = addr.parse().expect("server address");

    // Present the whole time: one client that never says a word...
    let idle = connect(addr);
    // ...and one that trickles its lines a byte at a time.
    let stop_slow = Arc::new(AtomicBool::new(false));
    let slow = {
        let stop = Arc::clone(&stop_slow);
        let stream = connect(addr);
        thread::spawn(move || slow_client(stream, &stop))
    };

    // Connected one after another, so a burst of SYNs cannot overflow the
    // listener's queue (lesson 8) and make the test wait for retransmits;
    // then they all talk at once.
    let streams: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(addr)).collect();
    let start = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(id, stream)| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                well_behaved_client(id, stream);
            })
        })
        .collect();

    // The misbehaving ones come and go while the others run.
    let half_closed = thread::spawn(move || half_closing_client(addr));
    let reset = thread::spawn(move || resetting_client(addr));
    let too_long = thread::spawn(move || too_long_client(addr));

    start.wait();
    let began = Instant::now();
    for client in clients {
        client.join().expect("a well-behaved client failed");
    }
    let elapsed = began.elapsed();
    half_closed.join().expect("the half-closing client failed");
    reset.join().expect("the resetting client failed");
    too_long.join().expect("the over-long client failed");

    stop_slow.store(true, Ordering::SeqCst);
    let slow_lines = slow.join().expect("the slow client failed");
    // The idle client was never dropped nor mixed up with anyone: it is
    // answered now, with its own line.
    assert_eq!(
        exchange(&idle, b"idle client, still here\n"),
        b"idle client, still here\n"
    );
    Report { elapsed, slow_lines }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(READ_LIMIT)).expect("read timeout");
    stream
}

/// The line client `id` sends as its `n`th; lengths vary so that replies
/// of different clients cannot be told apart by size alone.
fn line(id: usize, n: usize) -> String {
    format!("client {id} line {n} {}\n", "x".repeat((id * 7 + n) % 40))
}

fn well_behaved_client(id: usize, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = &stream;
    for batch in 0..LINES / BATCH {
        let lines: Vec<String> =
            (0..BATCH).map(|i| line(id, batch * BATCH + i)).collect();
        writer
            .write_all(lines.concat().as_bytes())
            .unwrap_or_else(|e| panic!("client {id}: send: {e}"));
        for expected in &lines {
            let mut got = String::new();
            reader
                .read_line(&mut got)
                .unwrap_or_else(|e| panic!("client {id}: recv: {e}"));
            assert_eq!(&got, expected, "client {id} got someone else's reply");
        }
    }
    // A clean end: the server sees EOF, and nothing more comes back.
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).expect("read to EOF");
    assert!(rest.is_empty(), "client {id}: unexpected bytes {rest:?}");
}

/// Sends its lines one byte at a time until told to stop, reading each
/// reply; returns how many lines were answered.
fn slow_client(stream: TcpStream, stop: &AtomicBool) -> usize {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut answered = 0;
    while !stop.load(Ordering::SeqCst) || answered == 0 {
        let line = format!("slow line {answered}\n");
        for byte in line.as_bytes() {
            (&stream).write_all(&[*byte]).expect("slow client: send");
            // Pacing only: the slowness is the point of this client.
            thread::sleep(Duration::from_millis(2));
        }
        let mut got = String::new();
        reader.read_line(&mut got).expect("slow client: recv");
        assert_eq!(got, line, "the slow client got someone else's reply");
        answered += 1;
    }
    answered
}

/// Sends three lines, closes its sending side, and must still get all
/// three replies, then the end of the stream.
fn half_closing_client(addr: SocketAddr) {
    let stream = connect(addr);
    (&stream).write_all(b"half 1\nhalf 2\nhalf 3\n").expect("send");
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    let mut all = Vec::new();
    (&stream).read_to_end(&mut all).expect("read to EOF");
    assert_eq!(all, b"half 1\nhalf 2\nhalf 3\n");
}

/// Sends half a line and resets the connection (SO_LINGER 0, then close).
fn resetting_client(addr: SocketAddr) {
    let stream = connect(addr);
    (&stream).write_all(b"this line never en").expect("send");
    SockRef::from(&stream).set_linger(Some(Duration::ZERO)).expect("SO_LINGER");
    drop(stream);
}

/// Sends a line longer than the limit: gets the error line, then the end
/// of the connection.
fn too_long_client(addr: SocketAddr) {
    let stream = connect(addr);
    let mut long = vec![b'x'; MAX_LINE + 1];
    long.push(b'\n');
    (&stream).write_all(&long).expect("send");
    let mut reader = BufReader::new(&stream);
    let mut got = String::new();
    reader.read_line(&mut got).expect("recv the error");
    assert_eq!(got, "error: line too long\n");
    // The server closes; the part of our line it did not read may turn
    // its close into a reset (lesson 6). Either ends the conversation.
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "bytes after the error: {rest:?}"),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

/// Sends `line` and returns the one reply line.
pub fn exchange(stream: &TcpStream, line: &[u8]) -> Vec<u8> {
    let mut stream = stream;
    stream.write_all(line).expect("send");
    let mut reader = BufReader::new(stream);
    let mut got = Vec::new();
    reader.read_until(b'\n', &mut got).expect("recv");
    got
}

/// Lines each client of the shutdown test sends before the signal.
const IN_FLIGHT_LINES: usize = 100;

/// Graceful shutdown with requests in flight. `clients` clients each send
/// [`IN_FLIGHT_LINES`] lines without reading; an idle client says nothing.
/// Once the server's kernel has every byte (the requests are in flight: sent,
/// received, not all answered), the server gets SIGINT. Every client must
/// then read all of its replies, in order, and a clean end of stream (no
/// reset); the idle client just the end. The server must exit with status 0
/// and report that every descriptor it opened is closed.
pub fn shutdown_with_requests_in_flight(server: &mut Server, clients: usize) {
    let addr: SocketAddr = server.addr.parse().expect("server address");
    let idle = connect(addr);
    let streams: Vec<TcpStream> =
        (0..clients).map(|_| small_window(addr)).collect();
    let mut expected = Vec::new();
    for (id, stream) in streams.iter().enumerate() {
        let lines: String = (0..IN_FLIGHT_LINES)
            .map(|n| format!("in flight {id} {n} {}\n", "z".repeat(80)))
            .collect();
        (&*stream).write_all(lines.as_bytes()).expect("send");
        expected.push(lines);
    }
    for stream in &streams {
        wait_until_acknowledged(stream);
    }

    kill(Pid::from_raw(server.pid() as i32), Signal::SIGINT)
        .expect("send SIGINT");

    for (id, (stream, expected)) in streams.iter().zip(&expected).enumerate() {
        let mut got = Vec::new();
        if let Err(err) = (&*stream).read_to_end(&mut got) {
            let status = server.wait_exit();
            panic!(
                "client {id}: {err} after {} of {} reply bytes; the server ({status:?}) printed:\n{}",
                got.len(),
                expected.len(),
                server.transcript()
            );
        }
        assert!(
            got == expected.as_bytes(),
            "client {id}: {} of {} reply bytes",
            got.len(),
            expected.len()
        );
    }
    let mut buf = [0u8; 16];
    assert_eq!((&idle).read(&mut buf).expect("idle client"), 0);
    // Having read to the end, the clients close, as a client does: a
    // server that closes by lingering (lesson 13) waits for that.
    drop((streams, idle));

    let status = server.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    let log = server.transcript();
    assert!(
        log.ends_with("Shut down: every descriptor it opened is closed\n"),
        "the server left something open:\n{log}"
    );
}

/// A client whose receive buffer is too small for all of its replies, so
/// that some are still on their way when the server is told to stop.
fn small_window(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    // Before connect: the window is agreed in the handshake (man 7 tcp).
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let stream = TcpStream::from(socket);
    stream.set_read_timeout(Some(READ_LIMIT)).expect("read timeout");
    stream
}

/// Waits (bounded) until the peer's kernel has acknowledged every byte
/// this socket sent: then the bytes are in the server's receive queue or
/// already read, not somewhere on the way.
fn wait_until_acknowledged(stream: &TcpStream) {
    let deadline = Instant::now() + READ_LIMIT;
    loop {
        let mut unacknowledged: nix::libc::c_int = 0;
        // SIOCOUTQ (the same number as TIOCOUTQ): bytes in the send queue
        // not yet acknowledged (man 7 tcp).
        // SAFETY: the descriptor is open for the whole call, and the request
        // writes one c_int through the pointer, which points to one.
        let ret = unsafe {
            nix::libc::ioctl(
                stream.as_raw_fd(),
                nix::libc::TIOCOUTQ,
                &mut unacknowledged,
            )
        };
        assert_eq!(ret, 0, "ioctl SIOCOUTQ");
        if unacknowledged == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "bytes never acknowledged");
        thread::sleep(Duration::from_millis(1));
    }
}
