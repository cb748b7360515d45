//! # Lesson 4: `send` is not `send_all`
//!
//! The idea: `send` hands bytes to the kernel, and the kernel may take fewer
//! than you offered. It returns how many it took; the rest is still yours to
//! send. A correct program loops until every byte is taken, which is what
//! Python's `sendall` and Rust's `write_all` do for you. And "taken" is not
//! "sent": the kernel decides when the bytes leave, and by default (Nagle's
//! algorithm) it holds a small write back while an earlier one is
//! unacknowledged, which costs a request written in two pieces 40 ms
//! or more per round (a delayed ACK), even on loopback.
//!
//! What was wrong before: lesson 2's server called `send` once and only
//! complained when it came up short; the article presents `sendall` and
//! `send` as two equal choices. Here a short `send` is made to happen on
//! purpose, the loop that finishes the job is written out, std's
//! `write_all` is shown to be that loop (and to hide how far it got when it
//! fails), and `TCP_NODELAY` removes the Nagle delay.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{MsgFlags, recv, send};
use socket2::{Domain, SockRef, Socket, Type};
use transcript::cli::seconds;
use transcript::{Failure, OptionValue, OrFail, Transcript, bytes, call};

/// The default address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much the demo sends at once: far more than the small buffers hold.
const TOTAL: usize = 1 << 20;

/// The buffer sizes the demo asks for; Linux doubles them (`man 7 socket`).
const SMALL_BUFFER: usize = 4096;

/// How long std's `write_all` may wait for room before it gives up.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// Request/reply rounds timed for each setting in the Nagle part. The first
/// round of the first setting is narrated and not timed.
const ROUNDS: usize = 7;

/// A median round slower than this is "slow": a delayed ACK costs 40 ms or
/// more on Linux, a round on loopback without one well under 1 ms.
const SLOW: Duration = Duration::from_millis(10);

#[derive(Parser)]
#[command(
    name = "lesson-04",
    bin_name = "lesson-04",
    about = "Lesson 4: send is not send_all: short writes, a write-all loop, and Nagle's algorithm"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Send each client a block of bytes with a nonblocking write-all loop,
    /// printing every short send and every wait for room
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How many bytes to send each client
        #[arg(long, default_value_t = TOTAL)]
        size: usize,
        /// SO_SNDBUF to ask for on each connection (the kernel doubles it);
        /// small, so that short sends are easy to see
        #[arg(long, default_value_t = SMALL_BUFFER)]
        sndbuf: usize,
        /// Seconds to wait for room in the send buffer before giving up on a
        /// client that stopped reading
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Read everything the server sends until it closes, and check it
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds to wait before reading, so the server's sends go short
        #[arg(long, default_value_t = 0.0)]
        pause: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-04", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, size, sndbuf, timeout }) => {
            server(addr, size, sndbuf, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr, pause }) => {
            client(addr, pause_for(pause)?)
        }
    })
}

/// Four parts: a short send made on purpose, the loop that finishes it,
/// std's `write_all` (the same loop), and Nagle's algorithm.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);
    let data = pattern(TOTAL);

    // ANCHOR: demo_buffers
    t.section("one send, fewer bytes than asked");
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&listener),
    );
    let listener = listener.or_fail("socket")?;
    // A small receive buffer, set before listen: accepted sockets inherit
    // it, and the window it allows is announced in the handshake (man 7 tcp).
    let set = listener.set_recv_buffer_size(SMALL_BUFFER);
    t.server(
        call("setsockopt")
            .on(&listener)
            .args(format!("SO_RCVBUF, {SMALL_BUFFER}"))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVBUF")?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = listener.bind(&wanted.into());
    t.server(call("bind").on(&listener).args(wanted).returned(&bound));
    bound.or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));
    let listening = listener.listen(5);
    t.server(call("listen").on(&listener).args(5).returned(&listening));
    listening.or_fail("listen")?;

    let client = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&client),
    );
    let client = client.or_fail("socket")?;
    // A small send buffer too, so the two buffers together hold little.
    let set = client.set_send_buffer_size(SMALL_BUFFER);
    t.client(
        call("setsockopt")
            .on(&client)
            .args(format!("SO_SNDBUF, {SMALL_BUFFER}"))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_SNDBUF")?;
    // Ask what the kernel really set: it doubles the value, to leave room
    // for its own bookkeeping (man 7 socket, SO_SNDBUF).
    let size = client.send_buffer_size().map(OptionValue);
    t.client(call("getsockopt").on(&client).args("SO_SNDBUF").returned(&size));
    size.or_fail("getsockopt SO_SNDBUF")?;
    t.client_note("the kernel doubled it");
    let connected = client.connect(&addr.into());
    t.client(call("connect").on(&client).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;

    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    let size = conn.recv_buffer_size().map(OptionValue);
    t.server(call("getsockopt").on(&conn).args("SO_RCVBUF").returned(&size));
    size.or_fail("getsockopt SO_RCVBUF")?;
    t.server_note(
        "inherited from the listener, doubled; the server does not read yet",
    );
    // ANCHOR_END: demo_buffers

    // ANCHOR: demo_short
    // MSG_DONTWAIT: this one call may not wait for room (man 2 send). The
    // kernel copies what fits and returns that count instead of blocking.
    let first = send(client.as_raw_fd(), &data, MsgFlags::MSG_DONTWAIT);
    t.client(short_send(
        call("send")
            .on(&client)
            .args(format!("{TOTAL} bytes, MSG_DONTWAIT"))
            .returned(&first),
        &first,
        TOTAL,
        "N",
    ));
    let first = first.or_fail("send")?;
    t.client_note("N bytes fit in the two buffers; the rest is still ours");
    // ANCHOR_END: demo_short

    // ANCHOR: demo_loop
    t.section("a write-all loop sends the rest");
    // Now the server reads. MSG_WAITALL: one recv that returns only when
    // all TOTAL bytes are in (man 2 recv), so the timeline does not depend
    // on how the bytes happen to arrive. Its thread reports back; the
    // timeline prints it once the loop is done.
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; TOTAL];
        let result = recv(conn.as_raw_fd(), &mut got, MsgFlags::MSG_WAITALL);
        (conn, result, got)
    });

    let mut sent = first;
    let mut sends = 1;
    while sent < data.len() {
        // A blocking send: it waits for room as the server reads, and
        // returns early only if a signal interrupts it.
        let result = client.send(&data[sent..]);
        sends += 1;
        let rest = data.len() - sent;
        let args = if sent == first {
            format!("the other {TOTAL} - N bytes")
        } else {
            format!("{rest} bytes")
        };
        let narrated = call("send").on(&client).args(args).returned(&result);
        t.client(match &result {
            Ok(n) if *n == rest && sent == first => {
                narrated.shown(format!("{TOTAL} - N")).detail("all of the rest")
            }
            _ => narrated,
        });
        match result {
            // The kernel never takes 0 of a non-empty buffer on a stream
            // socket; std's write_all calls that WriteZero. Stop, don't spin.
            Ok(0) => {
                return Err(Failure::new("send", "the kernel took 0 bytes"));
            }
            Ok(n) => sent += n,
            // A signal arrived before any byte was taken: just try again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Err(Failure::new(
                    format!("send (after {sent} of {TOTAL} bytes)"),
                    err,
                ));
            }
        }
    }
    t.client_note(format!(
        "sent {sent} of {TOTAL} bytes in {sends} sends: the loop ends"
    ));
    // ANCHOR_END: demo_loop

    let (conn, received, got) = reader
        .join()
        .map_err(|_| Failure::new("recv", "the server's thread panicked"))?;
    t.server(
        call("recv")
            .on(&conn)
            .args(format!("{TOTAL}, MSG_WAITALL"))
            .returned(&received),
    );
    received.or_fail("recv")?;
    if got != data {
        return Err(Failure::new("recv", "the bytes differ from those sent"));
    }
    t.server_note("every byte arrived, in the order sent");
    let (client_fd, conn_fd) = (client.as_raw_fd(), conn.as_raw_fd());
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));

    // ANCHOR: demo_write_all
    t.section("std's write_all: the same loop, and what it hides");
    t.client_note(format!("TcpStream::connect(\"{addr}\"):"));
    let stream = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&stream),
    );
    t.client(call("connect").on(&stream).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;

    t.client_note("socket2's SockRef::set_send_buffer_size, as above:");
    let set = SockRef::from(&stream).set_send_buffer_size(SMALL_BUFFER);
    t.client(
        call("setsockopt")
            .on(&stream)
            .args(format!("SO_SNDBUF, {SMALL_BUFFER}"))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_SNDBUF")?;
    // A blocking send that finds no room waits at most this long (man 7
    // socket, SO_SNDTIMEO), then returns what it took, or EAGAIN if nothing.
    t.client_note(format!("stream.set_write_timeout({WRITE_TIMEOUT:?}):"));
    let set = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    t.client(
        call("setsockopt")
            .on(&stream)
            .args(format!("SO_SNDTIMEO, {WRITE_TIMEOUT:?}"))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_SNDTIMEO")?;

    // write_all is std's loop: send, advance by what was taken, retry on
    // EINTR, stop at the first other error. The server is not reading.
    t.client_note(format!(
        "stream.write_all(&data), {TOTAL} bytes, the server not reading:"
    ));
    let result = (&stream).write_all(&data);
    let Err(err) = result else {
        return Err(Failure::new(
            "write_all",
            "succeeded although the server never read",
        ));
    };
    t.client_note("its first sends take what fits, as above, until one");
    t.client_note(format!(
        "waits {WRITE_TIMEOUT:?} for room and takes nothing:"
    ));
    t.client(
        call("send").on(&stream).args("the rest, MSG_NOSIGNAL").failed(&err),
    );
    t.client_note("write_all returns this error and no count: how many");
    t.client_note("bytes went before it, the caller cannot know");
    // ANCHOR_END: demo_write_all
    let (stream_fd, conn_fd) = (stream.as_raw_fd(), conn.as_raw_fd());
    drop(stream);
    t.client(call("close").on_fd(stream_fd).gave(&()));
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));

    nagle(&mut t, &listener, addr)?;

    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    Ok(())
}

/// Write, write, read: a request in two small pieces, then wait for the
/// reply. Timed with Nagle's algorithm on (the default), then off.
fn nagle(
    t: &mut Transcript,
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(), Failure> {
    // ANCHOR: demo_nagle
    t.section("write, write, read: Nagle's algorithm meets delayed ACK");
    t.client_note(format!("TcpStream::connect(\"{addr}\"), stream.nodelay():"));
    let stream = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&stream),
    );
    t.client(call("connect").on(&stream).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(call("accept").on(listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    let conn_fd = conn.as_raw_fd();
    let nodelay = stream.nodelay();
    t.client(
        call("getsockopt").on(&stream).args("TCP_NODELAY").returned(&nodelay),
    );
    nodelay.or_fail("getsockopt TCP_NODELAY")?;
    t.client_note("off by default: Nagle's algorithm is on");

    // The server: read a whole 8-byte request (MSG_WAITALL), answer "ok".
    // It reports its first round for the timeline, and serves the rest.
    let rounds = 2 * ROUNDS + 1;
    let (report, first_round) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut request = [0u8; 8];
        for round in 0..rounds {
            let got =
                recv(conn.as_raw_fd(), &mut request, MsgFlags::MSG_WAITALL);
            let answered = match got {
                Ok(8) => Some(send(conn.as_raw_fd(), b"ok", MsgFlags::empty())),
                _ => None,
            };
            let served = matches!(answered, Some(Ok(2)));
            if round == 0 {
                let _ = report.send((got, request, answered));
            }
            if !served {
                // Dropping the socket tells the client, which stops too.
                break;
            }
        }
        conn
    });
    // ANCHOR_END: demo_nagle

    // ANCHOR: demo_rounds
    let mut medians = Vec::new();
    for nodelay in [false, true] {
        if nodelay {
            // Send each write at once, whatever is still unacknowledged.
            t.client_note("stream.set_nodelay(true):");
            let set = stream.set_nodelay(true);
            t.client(
                call("setsockopt")
                    .on(&stream)
                    .args("TCP_NODELAY, 1")
                    .returned(&set),
            );
            set.or_fail("setsockopt TCP_NODELAY")?;
        }
        let mut times = Vec::new();
        // With Nagle on, one extra round first: the narrated one.
        for round in 0..ROUNDS + usize::from(!nodelay) {
            let start = Instant::now();
            let head = (&stream).write(b"head");
            let body = (&stream).write(b"body");
            let mut reply = [0u8; 16];
            let got = (&stream).read(&mut reply);
            let took = start.elapsed();
            if !nodelay && round == 0 {
                t.client_note(
                    "write(b\"head\"), write(b\"body\"), read(&mut reply):",
                );
                for (piece, result) in [(b"head", &head), (b"body", &body)] {
                    t.client(
                        call("send")
                            .on(&stream)
                            .args(bytes(piece))
                            .args("MSG_NOSIGNAL")
                            .returned(result),
                    );
                }
                let (received, request, answered) =
                    first_round.recv().map_err(|_| {
                        Failure::new("recv", "the server's thread stopped")
                    })?;
                let n = *received.as_ref().unwrap_or(&0);
                t.server(
                    call("recv")
                        .on_fd(conn_fd)
                        .args("8, MSG_WAITALL")
                        .returned(&received)
                        .detail(bytes(&request[..n])),
                );
                if let Some(answered) = &answered {
                    t.server(
                        call("send")
                            .on_fd(conn_fd)
                            .args(bytes(b"ok"))
                            .returned(answered),
                    );
                }
                let n = *got.as_ref().unwrap_or(&0);
                t.client(
                    call("recv")
                        .on(&stream)
                        .args(16)
                        .returned(&got)
                        .detail(bytes(&reply[..n])),
                );
            } else {
                times.push(took);
            }
            head.or_fail("send")?;
            body.or_fail("send")?;
            if got.or_fail("recv")? != 2 {
                return Err(Failure::new(
                    "recv",
                    "the server did not answer \"ok\"",
                ));
            }
        }
        t.client_note(if nodelay {
            format!("{ROUNDS} rounds like the one above, timed")
        } else {
            format!("{ROUNDS} more rounds like this one, timed")
        });
        medians.push(median(&mut times));
    }
    // Only the comparison is printed: the times themselves vary from run to
    // run, and a delayed ACK waits at least 40 ms on Linux.
    let slower = medians[0] > medians[1] + SLOW;
    t.client_note(format!(
        "median round with Nagle slower by more than {SLOW:?}: {}",
        if slower { "yes" } else { "no" }
    ));
    // ANCHOR_END: demo_rounds

    let conn = server
        .join()
        .map_err(|_| Failure::new("recv", "the server's thread panicked"))?;
    let stream_fd = stream.as_raw_fd();
    drop(stream);
    t.client(call("close").on_fd(stream_fd).gave(&()));
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    Ok(())
}

/// The middle value of some durations.
fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

/// Sends each client `size` bytes with a nonblocking write-all loop, and
/// says what every short send and every wait looked like.
fn server(
    addr: SocketAddr,
    size: usize,
    sndbuf: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    // ANCHOR: server
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    println!("Listening on {local}");
    let data = pattern(size);
    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("accept: {err}");
                continue;
            }
        };
        println!("Connected with {peer}");
        send_all(&conn, peer, &data, sndbuf, timeout);
        // Dropping the stream closes it: after the last byte, a FIN.
    }
    // ANCHOR_END: server
}

/// The write-all loop for a nonblocking socket: send what fits, and when
/// nothing fits, wait (poll) until there is room.
fn send_all(
    conn: &TcpStream,
    peer: SocketAddr,
    data: &[u8],
    sndbuf: usize,
    timeout: Duration,
) {
    // ANCHOR: send_all
    let sock = SockRef::from(conn);
    if let Err(err) = sock.set_send_buffer_size(sndbuf) {
        println!("setsockopt SO_SNDBUF for {peer}: {err}; closing");
        return;
    }
    match sock.send_buffer_size() {
        Ok(got) => {
            println!("SO_SNDBUF: asked for {sndbuf}, the kernel set {got}")
        }
        Err(err) => println!("getsockopt SO_SNDBUF for {peer}: {err}"),
    }
    // Nonblocking: a send that finds no room returns EAGAIN at once
    // instead of waiting, so every short count is visible.
    if let Err(err) = conn.set_nonblocking(true) {
        println!("set_nonblocking for {peer}: {err}; closing");
        return;
    }
    let poll_timeout =
        PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let (mut sent, mut sends, mut short, mut waits) = (0, 0, 0, 0);
    while sent < data.len() {
        let rest = data.len() - sent;
        match (&*conn).write(&data[sent..]) {
            Ok(0) => {
                println!("send to {peer} took 0 bytes; closing");
                return;
            }
            Ok(n) => {
                sends += 1;
                if n < rest {
                    short += 1;
                    println!(
                        "send: asked to take {rest} bytes, the kernel took {n}"
                    );
                }
                sent += n;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                // No room at all: sleep in poll until the peer's reading
                // (its ACKs) frees some, or give up after `timeout`.
                waits += 1;
                println!(
                    "send would block after {sent} of {} bytes: poll for room",
                    data.len()
                );
                let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLOUT)];
                match poll(&mut fds, poll_timeout) {
                    Ok(0) => {
                        println!(
                            "no room for {timeout:?}: {peer} stopped reading; closing"
                        );
                        return;
                    }
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(err) => {
                        println!("poll for {peer}: {err}; closing");
                        return;
                    }
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                println!("send to {peer}: {err} after {sent} bytes; closing");
                return;
            }
        }
    }
    println!(
        "Sent {sent} bytes to {peer} in {sends} sends ({short} short, {waits} waits for room)"
    );
    // ANCHOR_END: send_all
}

/// Reads until the server closes, and checks every byte.
fn client(addr: SocketAddr, pause: Duration) -> Result<(), Failure> {
    // ANCHOR: client
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    println!("Connected to {addr}");
    if !pause.is_zero() {
        println!(
            "Not reading for {pause:?}: the server's sends go short meanwhile"
        );
        thread::sleep(pause);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let (mut received, mut reads) = (0usize, 0usize);
    let mut in_order = true;
    loop {
        let n = match stream.read(&mut buf) {
            // 0 bytes: the server closed; everything it sent is here.
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Failure::new(format!("recv {addr}"), err)),
        };
        reads += 1;
        in_order &= buf[..n]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == ((received + i) % 251) as u8);
        received += n;
    }
    println!("Received {received} bytes in {reads} reads");
    if !in_order {
        return Err(Failure::new("recv", "bytes arrived out of order"));
    }
    println!("Every byte arrived in the order sent");
    Ok(())
    // ANCHOR_END: client
}

/// The bytes the demo and the server send: a pattern that shows any byte
/// out of place (251 is prime, so no buffer size lines up with it).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Narrates a send whose count depends on the kernel's buffer sizes: a
/// short count is shown as `name` with the inequality that always holds.
fn short_send<E>(
    narrated: transcript::Call,
    result: &Result<usize, E>,
    asked: usize,
    name: &str,
) -> transcript::Call {
    match result {
        Ok(n) if *n < asked => {
            narrated.shown(name).detail(format!("short: {name} < {asked}"))
        }
        _ => narrated,
    }
}

/// `--pause`: zero (the default) or a positive number of seconds.
fn pause_for(value: f64) -> Result<Duration, Failure> {
    if value == 0.0 { Ok(Duration::ZERO) } else { seconds("--pause", value) }
}
