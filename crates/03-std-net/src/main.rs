//! # Lesson 3: from socket2 to std::net
//!
//! The idea: `std::net::TcpListener` and `TcpStream` are the same system
//! calls as lesson 2, bundled. `TcpListener::bind` is socket + setsockopt +
//! bind + listen; `accept` is accept4; `write_all` is a loop of send. The
//! demo narrates, under each std call, the system calls it makes, and the
//! course's kernel check compares that narration with `strace`.
//!
//! What was missing before: lesson 2 spelled every call out, but nobody
//! writes servers that way. Knowing what std does for you explains things
//! that otherwise look like magic or bugs: why std can rebind a port that
//! raw socket2 cannot (std sets `SO_REUSEADDR`), why its descriptors are not
//! inherited by child processes (`SOCK_CLOEXEC`), and why writing to a closed
//! connection gives an error instead of killing the process (`MSG_NOSIGNAL`).

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use socket2::{Domain, SockRef, Socket, Type};
use transcript::cli::seconds;
use transcript::{Failure, OrFail, Transcript, bytes, call};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `read` may return, as in the article's `recv(4096)`.
const RECV_SIZE: usize = 4096;

/// The backlog std passes to `listen` on Linux; std offers no way to choose.
const STD_BACKLOG: i32 = 128;

#[derive(Parser)]
#[command(
    name = "lesson-03",
    bin_name = "lesson-03",
    about = "Lesson 3: the same server and client with std::net, and the system calls behind it"
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
    transcript::run("lesson-03", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, timeout }) => {
            server(addr, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr }) => client(addr),
    })
}

/// Lesson 2's conversation with std. Each `# std call` note is followed by
/// the system calls that std call makes, as `strace` shows them.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);

    // ANCHOR: demo_listen
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    t.server_note(format!("TcpListener::bind(\"{wanted}\") makes four calls:"));
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .gave(&listener),
    );
    // Set before bind, so a restarted server can bind while connections of
    // its previous run linger in TIME_WAIT (lesson 7).
    t.server(
        call("setsockopt").on(&listener).args("SO_REUSEADDR, 1").gave(&()),
    );
    t.server(call("bind").on(&listener).args(wanted).gave(&()));
    t.server(call("listen").on(&listener).args(STD_BACKLOG).gave(&()));

    t.server_note("listener.local_addr():");
    let addr = listener.local_addr().or_fail("getsockname")?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));

    // Ask the kernel, rather than trusting the paragraph above.
    let reuse = SockRef::from(&listener).reuse_address();
    t.server_note("socket2's SockRef::reuse_address(), to check:");
    t.server(
        call("getsockopt").on(&listener).args("SO_REUSEADDR").returned(&reuse),
    );
    // ANCHOR_END: demo_listen

    // ANCHOR: demo_connect
    t.client_note(format!("TcpStream::connect(\"{addr}\"):"));
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&client),
    );
    t.client(call("connect").on(&client).args(addr).gave(&()));

    t.server_note("listener.accept():");
    let accepted = listener.accept();
    t.server(
        call("accept").on(&listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;

    t.server_note("conn.set_read_timeout(Some(10 s)):");
    let set = conn.set_read_timeout(Some(Duration::from_secs(10)));
    t.server(
        call("setsockopt").on(&conn).args("SO_RCVTIMEO, 10 s").returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    // ANCHOR_END: demo_connect

    // ANCHOR: demo_exchange
    let request = b"hello, server\n";
    t.client_note("client.write_all(b\"hello, server\\n\"):");
    (&client).write_all(request).or_fail("send")?;
    // MSG_NOSIGNAL: a closed peer gives EPIPE, not a fatal SIGPIPE (lesson 6).
    t.client(
        call("send")
            .on(&client)
            .args(bytes(request))
            .args("MSG_NOSIGNAL")
            .gave(&request.len()),
    );

    t.server_note("conn.read(&mut buf):");
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

    t.server_note("conn.write_all(&buf[..n]):");
    (&conn).write_all(&buf[..n]).or_fail("send")?;
    t.server(
        call("send")
            .on(&conn)
            .args(bytes(&buf[..n]))
            .args("MSG_NOSIGNAL")
            .gave(&n),
    );

    t.client_note("client.read(&mut reply):");
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
    t.client_note("drop(client):");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));

    t.server_note("conn.read(&mut buf):");
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.server_note("drop(conn):");
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    // ANCHOR_END: demo_close

    // ANCHOR: demo_unanswered
    t.section("accepting is not answering");
    t.client_note(format!("TcpStream::connect(\"{addr}\"), then a request:"));
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&client),
    );
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    (&client).write_all(request).or_fail("send")?;
    t.client(
        call("send")
            .on(&client)
            .args(bytes(request))
            .args("MSG_NOSIGNAL")
            .gave(&request.len()),
    );

    // A server that accepts and drops the stream without reading or
    // answering: the unread request makes close() send RST, not FIN.
    t.server_note("listener.accept(), then drop without a reply:");
    let (conn, _peer) = listener.accept().or_fail("accept")?;
    t.server(call("accept").on(&listener).args("SOCK_CLOEXEC").gave(&conn));
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));

    // The client waits for a reply and gets an error instead.
    let got = (&client).read(&mut reply);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    t.client_note("no reply, and not even a clean end: a reset");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    // ANCHOR_END: demo_unanswered

    // ANCHOR: demo_socket2
    t.section("raw socket2, for comparison");
    // socket2 makes exactly the calls you ask for: no SO_REUSEADDR.
    let raw = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").returned(&raw),
    );
    let raw = raw.or_fail("socket")?;
    let reuse = raw.reuse_address();
    t.server(call("getsockopt").on(&raw).args("SO_REUSEADDR").returned(&reuse));
    let raw_fd = raw.as_raw_fd();
    drop(raw);
    t.server(call("close").on_fd(raw_fd).gave(&()));

    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    // ANCHOR_END: demo_socket2
    Ok(())
}

/// Lesson 2's server with std: one client at a time, echo, drop on timeout.
fn server(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    // ANCHOR: server
    // One call instead of four; a failed bind still names the address.
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    println!("Listening on {local} (backlog {STD_BACKLOG})");

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
        serve_one(&conn, peer, timeout);
        // Dropping the stream closes it.
    }
    // ANCHOR_END: server
}

/// Echoes until the client closes, goes quiet for `timeout`, or fails.
fn serve_one(conn: &TcpStream, peer: SocketAddr, timeout: Duration) {
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
        // write_all loops over send until every byte is taken (lesson 4).
        if let Err(err) = (&*conn).write_all(received) {
            println!("send to {peer}: {err}; closing this connection");
            return;
        }
    }
    // ANCHOR_END: serve_one
}

/// Lesson 2's client with std.
fn client(addr: SocketAddr) -> Result<(), Failure> {
    // ANCHOR: client
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    println!("Connected to {addr}");

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut reply = [0u8; RECV_SIZE];
    loop {
        print!("Please input data: ");
        io::stdout().flush().or_fail("write stdout")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            println!();
            break;
        }
        stream.write_all(&line).or_fail(format!("send {addr}"))?;
        println!("Send Successfully ({} bytes)", line.len());
        // Still one read for one reply: lesson 5 fixes that.
        let n = stream.read(&mut reply).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            println!("The server closed the connection");
            break;
        }
        println!("Reply: {}", String::from_utf8_lossy(&reply[..n]).trim_end());
    }
    Ok(())
    // ANCHOR_END: client
}

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
fn is_timeout_error(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
