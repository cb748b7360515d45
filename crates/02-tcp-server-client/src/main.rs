//! # Lesson 2: the article's TCP server and client, one raw call at a time
//!
//! The idea: a TCP conversation is eight system calls. The server calls
//! `socket`, `bind`, `listen` and `accept`; the client calls `socket` and
//! `connect`; both `send`, `recv` and `close`. Here each one is written out
//! with socket2, which is a thin, safe skin over those calls.
//!
//! What was wrong before: the article's programs treat data as text, exit
//! with status 0 when `bind` fails, and set a 10-second timeout that kills
//! the server the first time a client goes quiet. Here data is bytes, every
//! failure exits non-zero with the call, the address and the OS error, and a
//! timed-out client is dropped while the server goes on serving.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use socket2::{Domain, Socket, Type};
use transcript::cli::seconds;
use transcript::{Failure, OrFail, Transcript, bytes, call};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return, as in the article's `recv(4096)`.
const RECV_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lesson-02",
    bin_name = "lesson-02",
    about = "Lesson 2: the article's TCP server and client, one raw socket call at a time"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Serve clients one at a time, echoing back what each one sends
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Length of the queue of connections not yet accepted (lesson 8)
        #[arg(long, default_value_t = 5)]
        backlog: i32,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Send each line typed on stdin to the server and print its reply
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-02", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, backlog, timeout }) => {
            server(addr, backlog, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr }) => client(addr),
    })
}

/// The article's timing diagram, played by one thread. That works because
/// the kernel, not `accept`, completes the handshake: `connect` returns as
/// soon as the connection sits in the listener's queue.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);

    // ANCHOR: demo_listen
    // The server's socket: IPv4 (AF_INET), a byte stream (SOCK_STREAM = TCP).
    // socket2 adds SOCK_CLOEXEC on its own (see lesson 1).
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&listener),
    );
    let listener = listener.or_fail("socket")?;

    // Port 0: the kernel picks a free port, so the demo never collides.
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = listener.bind(&wanted.into());
    t.server(call("bind").on(&listener).args(wanted).returned(&bound));
    bound.or_fail(format!("bind {wanted}"))?;

    // getsockname() tells us which port the kernel picked.
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));

    // From here on the kernel answers connection requests for this port.
    let listening = listener.listen(5);
    t.server(call("listen").on(&listener).args(5).returned(&listening));
    listening.or_fail("listen")?;
    // ANCHOR_END: demo_listen

    // ANCHOR: demo_connect
    let client = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&client),
    );
    let client = client.or_fail("socket")?;

    // The three-way handshake happens here, inside the kernel; the server
    // process is not involved and has not called accept() yet.
    let connected = client.connect(&addr.into());
    t.client(call("connect").on(&client).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    t.client_note("connected before the server accepted");

    // accept() only takes the finished connection off the listener's queue,
    // as a new socket: the listener keeps listening for the next client.
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    // ANCHOR_END: demo_connect

    // ANCHOR: demo_timeout
    // The article's conn.settimeout(10): a recv that waits longer fails.
    let timeout = Duration::from_secs(10);
    let set = conn.set_read_timeout(Some(timeout));
    t.server(
        call("setsockopt").on(&conn).args("SO_RCVTIMEO, 10 s").returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    // ANCHOR_END: demo_timeout

    // ANCHOR: demo_exchange
    // Bytes, not text: what goes on the wire is a &[u8].
    let request = b"hello, server\n";
    let sent = client.send(request);
    t.client(call("send").on(&client).args(bytes(request)).returned(&sent));
    sent.or_fail("send")?;

    // socket2's Read impl is recv(2) with no flags.
    let mut buf = [0u8; RECV_SIZE];
    let got = (&conn).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.server(
        call("recv")
            .on(&conn)
            .args(RECV_SIZE)
            .returned(&got)
            .detail(bytes(&buf[..n])),
    );
    got.or_fail("recv")?;

    // The server echoes what it got.
    let echoed = conn.send(&buf[..n]);
    t.server(call("send").on(&conn).args(bytes(&buf[..n])).returned(&echoed));
    echoed.or_fail("send")?;

    let mut reply = [0u8; RECV_SIZE];
    let got = (&client).read(&mut reply);
    let n = *got.as_ref().unwrap_or(&0);
    t.client(
        call("recv")
            .on(&client)
            .args(RECV_SIZE)
            .returned(&got)
            .detail(bytes(&reply[..n])),
    );
    got.or_fail("recv")?;
    // ANCHOR_END: demo_exchange

    // ANCHOR: demo_close
    // The client is done: close() sends FIN, the end of its byte stream.
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));

    // The server sees the FIN as a recv that returns 0 bytes: end of stream.
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.server_note("0 bytes: the client has closed, not an error");
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    // ANCHOR_END: demo_close

    // ANCHOR: demo_silent
    t.section("a client that connects and says nothing");
    let quiet = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&quiet),
    );
    let quiet = quiet.or_fail("socket")?;
    let connected = quiet.connect(&addr.into());
    t.client(call("connect").on(&quiet).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;

    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    // 100 ms instead of the article's 10 s, so the demo does not keep you.
    let set = conn.set_read_timeout(Some(Duration::from_millis(100)));
    t.server(
        call("setsockopt").on(&conn).args("SO_RCVTIMEO, 100 ms").returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;

    // The timeout surfaces as EAGAIN, which Rust calls WouldBlock. The
    // article's loop does not catch it and its server dies; ours drops this
    // one client and would go on to accept the next.
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    if is_timeout(&got) {
        t.server_note("timed out: close this client, keep serving");
    } else {
        got.or_fail("recv")?;
    }
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));

    let got = (&quiet).read(&mut reply);
    t.client(call("recv").on(&quiet).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.client_note("0 bytes: the server hung up on us");
    let quiet_fd = quiet.as_raw_fd();
    drop(quiet);
    t.client(call("close").on_fd(quiet_fd).gave(&()));

    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    // ANCHOR_END: demo_silent
    Ok(())
}

/// The article's server, corrected: it serves one client at a time, echoes
/// what it receives, and survives clients that go quiet or misbehave.
fn server(
    addr: SocketAddr,
    backlog: i32,
    timeout: Duration,
) -> Result<(), Failure> {
    // ANCHOR: server
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    println!("Socket Created");
    // A failed bind (port in use, address not on this machine) ends the
    // program with a message and a non-zero exit status.
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    println!("Socket Bind Complete");
    listener.listen(backlog).or_fail("listen")?;
    println!("Listening on {local} (backlog {backlog})");

    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("accept: {err}");
                continue;
            }
        };
        let peer =
            peer.as_socket().map_or("unknown".to_string(), |p| p.to_string());
        println!("Connected with {peer}");
        serve_one(&conn, &peer, timeout);
        // Dropping the socket closes it.
    }
    // ANCHOR_END: server
}

/// Echoes until the client closes, goes quiet for `timeout`, or fails.
fn serve_one(conn: &Socket, peer: &str, timeout: Duration) {
    // ANCHOR: serve_one
    if let Err(err) = conn.set_read_timeout(Some(timeout)) {
        println!("setsockopt SO_RCVTIMEO for {peer}: {err}; closing");
        return;
    }
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let received = match (&*conn).read(&mut buf) {
            Ok(0) => {
                println!("{peer} closed the connection");
                return;
            }
            Ok(n) => &buf[..n],
            Err(err) if is_timeout_error(&err) => {
                println!(
                    "No data from {peer} for {timeout:?}: closing this connection"
                );
                return;
            }
            Err(err) => {
                println!("recv from {peer}: {err}; closing this connection");
                return;
            }
        };
        println!(
            "Received {} bytes from {peer}: {}",
            received.len(),
            bytes(received)
        );
        // One send may take fewer bytes than offered; lesson 4 shows when.
        match conn.send(received) {
            Ok(n) if n == received.len() => {}
            Ok(n) => println!(
                "send to {peer}: only {n} of {} bytes sent",
                received.len()
            ),
            Err(err) => {
                println!("send to {peer}: {err}; closing this connection");
                return;
            }
        }
    }
    // ANCHOR_END: serve_one
}

/// The article's client: prompt, send, print the reply, until an empty line.
fn client(addr: SocketAddr) -> Result<(), Failure> {
    // ANCHOR: client
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    println!("Socket Created");
    socket.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
    println!("Connected to {addr}");

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut reply = [0u8; RECV_SIZE];
    loop {
        print!("Please input data: ");
        io::stdout().flush().or_fail("write stdout")?;
        line.clear();
        // Read bytes, not a String: the network carries bytes, in any encoding.
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            println!();
            break;
        }
        let sent = socket.send(&line).or_fail(format!("send {addr}"))?;
        println!("Send Successfully ({sent} bytes)");
        // Assumes the whole reply comes in one recv, like the article.
        // Lesson 5 shows why that is not guaranteed and how to fix it.
        let n = (&socket).read(&mut reply).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            println!("The server closed the connection");
            break;
        }
        println!("Reply: {}", String::from_utf8_lossy(&reply[..n]).trim_end());
    }
    // Dropping the socket closes it: the server's recv returns 0.
    Ok(())
    // ANCHOR_END: client
}

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
fn is_timeout_error(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn is_timeout<T>(result: &io::Result<T>) -> bool {
    result.as_ref().err().is_some_and(is_timeout_error)
}
