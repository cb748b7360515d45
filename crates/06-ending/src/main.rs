//! # Lesson 6: ending a conversation
//!
//! The idea: a TCP connection is two byte streams, one each way, and each
//! ends on its own. `shutdown(Write)` ends ours with a FIN: the peer reads
//! end of stream (a read that returns 0 bytes) and can still answer. `close`
//! ends both, and *how* it ends matters: with nothing left unread it sends
//! FIN, but with unread data (or `SO_LINGER` 0) it sends RST, and the peer's
//! next read fails with `ECONNRESET`. Writing to a peer that has gone
//! succeeds until its RST comes back (a round trip), then fails with `EPIPE`
//! (`ECONNRESET` first if no FIN came before the RST). The side that closes
//! first keeps the connection in TIME_WAIT for 60 s, fixed on Linux.
//!
//! What was missing before: lessons 2 and 3 ended every conversation with
//! `close` and took the 0-byte read to mean "done". That hides a request
//! that needs the client to stop sending before the server answers, the
//! reset that a server causes when it closes without reading everything, the
//! broken pipe that a late write gets, and a reply cut short by a panic that
//! looks exactly like a complete one.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, Signal, signal};
use socket2::SockRef;
use transcript::cli::seconds;
use transcript::{Failure, OrFail, Transcript, bytes, call, tcp_state};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `read` may return.
const RECV_SIZE: usize = 4096;

/// What every `socket` call here asks for: std adds SOCK_CLOEXEC.
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";

/// The backlog std passes to `listen` on Linux (lesson 3).
const STD_BACKLOG: i32 = 128;

/// How long the demo waits for a packet that must come (an RST): a bound,
/// not a pause. On loopback it comes within microseconds.
const WAIT_MS: u16 = 5000;

#[derive(Parser)]
#[command(
    name = "lesson-06",
    bin_name = "lesson-06",
    about = "Lesson 6: ending a conversation: close, half-close, RST, EPIPE and TIME_WAIT"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Read each client's request until it half-closes, then answer and close
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Read each request, then answer with RST (SO_LINGER 0) instead of a reply
        #[arg(long)]
        abort: bool,
    },
    /// Send stdin, shutdown(Write), then print the reply until the server closes
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
    /// Write twice to a peer that has closed: Ok, then EPIPE (or SIGPIPE)
    BrokenPipe {
        /// What SIGPIPE does: ignore it, as Rust's runtime does, or take the
        /// default action, as a C program does: die
        #[arg(long, value_enum, default_value_t = Sigpipe::Ignore)]
        sigpipe: Sigpipe,
        /// Who sends: std's write (MSG_NOSIGNAL) or socket2's send (flags 0)
        #[arg(long, value_enum, default_value_t = Writer::Std)]
        send: Writer,
    },
}

// Plain comments on the variants below: a doc comment would become a help
// line per value, and the option's own line says it all.

/// What SIGPIPE does to this process.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sigpipe {
    // Ignored: a write to a broken connection returns EPIPE.
    Ignore,
    // The default action: a write that raises SIGPIPE kills the process.
    Default,
}

/// Which library call sends.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Writer {
    // std's `Write for TcpStream`: send(..., MSG_NOSIGNAL).
    Std,
    // socket2's `Socket::send`: send(..., 0).
    Socket2,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-06", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, timeout, abort }) => {
            server(addr, seconds("--timeout", timeout)?, abort)
        }
        Some(Command::Client { addr }) => client(addr),
        Some(Command::BrokenPipe { sigpipe, send }) => {
            broken_pipe(sigpipe, send)
        }
    })
}

/// Six ways a conversation ends, on one listener, each on a fresh
/// connection. One thread plays both sides: every call that waits (a read,
/// `poll`) waits for something the other side has already done, so the
/// order on screen is the order of the calls.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);

    t.server_note("TcpListener::bind(\"127.0.0.1:0\"), as in lesson 3:");
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    t.server(call("socket").args(STREAM).gave(&listener));
    t.server(
        call("setsockopt").on(&listener).args("SO_REUSEADDR, 1").gave(&()),
    );
    t.server(call("bind").on(&listener).args(wanted).gave(&()));
    t.server(call("listen").on(&listener).args(STD_BACKLOG).gave(&()));
    let addr = listener.local_addr().or_fail("getsockname")?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));

    half_close(&mut t, &listener, addr)?;
    abortive_close(&mut t, &listener, addr)?;
    unread_data(&mut t, &listener, addr)?;
    write_after_close(&mut t, &listener, addr)?;
    panic_mid_reply(&mut t, &listener, addr)?;
    clone_keeps_open(&mut t, &listener, addr)?;

    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    Ok(())
}

/// The client says "that is all" with a FIN and still gets its answer; the
/// side that sent the first FIN is left in TIME_WAIT.
fn half_close(
    t: &mut Transcript,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("shutdown(Write): done sending, still listening");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;
    // Which end is the client's: the 4-tuple to look for afterwards.
    let client_addr = client.local_addr().or_fail("getsockname")?;
    t.client(call("getsockname").on(&client).gave(&()).detail(client_addr));

    // ANCHOR: half_close
    let request = b"two lines\nof request\n";
    (&client).write_all(request).or_fail("send")?;
    t.client(
        call("send")
            .on(&client)
            .args(bytes(request))
            .args("MSG_NOSIGNAL")
            .gave(&request.len()),
    );
    // SHUT_WR queues a FIN after the request: "no more bytes from me". The
    // socket can still receive (man 2 shutdown).
    let shut = client.shutdown(Shutdown::Write);
    t.client(call("shutdown").on(&client).args("SHUT_WR").returned(&shut));
    shut.or_fail("shutdown")?;

    // The server reads until end of stream: a read that returns 0 bytes is
    // the FIN, the only way to know a request of unknown length is complete.
    let mut buf = [0u8; RECV_SIZE];
    let mut total = 0;
    loop {
        let got = (&conn).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.server(
            call("recv")
                .on(&conn)
                .args(RECV_SIZE)
                .returned(&got)
                .detail(shown(&buf[..n])),
        );
        if got.or_fail("recv")? == 0 {
            break;
        }
        total += n;
    }
    t.server_note(
        "0 bytes: the client has finished sending, and still listens",
    );

    // The connection is half open, not closed: the answer goes through.
    let reply = format!("got {total} bytes\n");
    (&conn).write_all(reply.as_bytes()).or_fail("send")?;
    t.server(
        call("send")
            .on(&conn)
            .args(bytes(reply.as_bytes()))
            .args("MSG_NOSIGNAL")
            .gave(&reply.len()),
    );
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));

    loop {
        let got = (&client).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.client(
            call("recv")
                .on(&client)
                .args(RECV_SIZE)
                .returned(&got)
                .detail(shown(&buf[..n])),
        );
        if got.or_fail("recv")? == 0 {
            break;
        }
    }
    t.client_note("0 bytes: the server is done too");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    // ANCHOR_END: half_close

    // ANCHOR: time_wait
    // The client sent the first FIN, so its end of the 4-tuple waits in
    // TIME_WAIT: RFC 9293 asks for twice the maximum segment lifetime, and
    // Linux waits a fixed 60 s (TCP_TIMEWAIT_LEN). It got there when the
    // server's FIN arrived, before the recv above returned 0.
    let states = tcp_states(t, 1, &[(client_addr, addr)])?;
    t.client_note(format!("{client_addr} -> {addr}: {}", states[0]));
    t.client_note("the side that closed first holds the 4-tuple for 60 s");
    // ANCHOR_END: time_wait
    Ok(())
}

/// `SO_LINGER` with a zero timeout: close sends RST and forgets the
/// connection at once.
fn abortive_close(
    t: &mut Transcript,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("SO_LINGER 0: close sends RST");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, peer) = accepted.or_fail("accept")?;

    // ANCHOR: abort
    // linger on, 0 seconds: close() discards anything unsent and sends RST
    // instead of FIN (man 7 socket, SO_LINGER). std cannot set it yet.
    let set = SockRef::from(&conn).set_linger(Some(Duration::ZERO));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args("SO_LINGER, {on, 0 s}")
            .returned(&set),
    );
    set.or_fail("setsockopt SO_LINGER")?;
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));

    // The client's read fails instead of returning 0: a reset, not an end.
    let mut buf = [0u8; RECV_SIZE];
    let got = (&client).read(&mut buf);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    t.client_note(
        "the connection was aborted: whatever the server meant to say is lost",
    );
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));

    // Neither side is left in TIME_WAIT: that is why people reach for
    // SO_LINGER 0, and why it is wrong for a normal ending.
    let states = tcp_states(t, 0, &[(addr, peer), (peer, addr)])?;
    t.server_note(format!("{addr} -> {peer}: {}", states[0]));
    t.server_note(format!("{peer} -> {addr}: {}", states[1]));
    // ANCHOR_END: abort
    Ok(())
}

/// Pitfall: closing with bytes still unread sends RST, which can cost the
/// client a reply it already has. Then the fix.
fn unread_data(
    t: &mut Transcript,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("close with unread data sends RST, even after a full reply");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;

    // ANCHOR: unread
    let request = [b'x'; 2048];
    (&client).write_all(&request).or_fail("send")?;
    t.client(
        call("send")
            .on(&client)
            .args(bytes(&request))
            .args("MSG_NOSIGNAL")
            .gave(&request.len()),
    );
    // The server reads only what it needs (say, the headers)...
    let mut head = [0u8; 512];
    let got = (&conn).read(&mut head);
    t.server(call("recv").on(&conn).args(head.len()).returned(&got));
    got.or_fail("recv")?;
    // ...answers in full...
    let reply = b"here is your whole reply\n";
    (&conn).write_all(reply).or_fail("send")?;
    t.server(
        call("send")
            .on(&conn)
            .args(bytes(reply))
            .args("MSG_NOSIGNAL")
            .gave(&reply.len()),
    );
    // ...and closes with 1536 bytes unread. Data would be lost, so the
    // kernel says so with RST instead of FIN (RFC 2525, section 2.17).
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    t.server_note("1536 bytes were never read: RST, not FIN");

    let mut buf = [0u8; RECV_SIZE];
    let got = (&client).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.client(
        call("recv")
            .on(&client)
            .args(RECV_SIZE)
            .returned(&got)
            .detail(shown(&buf[..n])),
    );
    got.or_fail("recv")?;
    // A client that reads until the end (HTTP/1.0 bodies, `curl`) gets an
    // error where the end should be, and may throw the reply away.
    let got = (&client).read(&mut buf);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    t.client_note("the whole reply, then a reset instead of the end");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    // ANCHOR_END: unread

    t.section("the fix: shutdown(Write), drain, then close");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;
    (&client).write_all(&request).or_fail("send")?;
    t.client(
        call("send")
            .on(&client)
            .args(bytes(&request))
            .args("MSG_NOSIGNAL")
            .gave(&request.len()),
    );
    let got = (&conn).read(&mut head);
    t.server(call("recv").on(&conn).args(head.len()).returned(&got));
    got.or_fail("recv")?;
    (&conn).write_all(reply).or_fail("send")?;
    t.server(
        call("send")
            .on(&conn)
            .args(bytes(reply))
            .args("MSG_NOSIGNAL")
            .gave(&reply.len()),
    );
    // ANCHOR: drain
    // FIN after the reply: the client sees a clean end of stream...
    let shut = conn.shutdown(Shutdown::Write);
    t.server(call("shutdown").on(&conn).args("SHUT_WR").returned(&shut));
    shut.or_fail("shutdown")?;

    let got = (&client).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.client(
        call("recv")
            .on(&client)
            .args(RECV_SIZE)
            .returned(&got)
            .detail(shown(&buf[..n])),
    );
    got.or_fail("recv")?;
    let got = (&client).read(&mut buf);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.client_note("the whole reply, then a clean end");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));

    // ...and the server reads, and drops, what is left until the client's
    // FIN. A real server bounds this with a read timeout and a byte limit,
    // or a client could keep it draining forever.
    loop {
        let got = (&conn).read(&mut buf);
        t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
        if got.or_fail("recv")? == 0 {
            break;
        }
    }
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    t.server_note("nothing unread: an ordinary close");
    // ANCHOR_END: drain
    Ok(())
}

/// Pitfalls: a write to a closed peer does not fail at once, and a Rust
/// program does not die of SIGPIPE.
fn write_after_close(
    t: &mut Transcript,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("writing to a peer that has closed");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;

    // ANCHOR: epipe
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));

    let mut buf = [0u8; RECV_SIZE];
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.server_note("0 bytes: the client sends no more; it might still read");

    // The first write succeeds: our kernel takes the bytes and sends them.
    // The client's socket is closed for reading, so its kernel answers RST.
    let late = b"a late reply\n";
    let first = (&conn).write(late);
    t.server(
        call("send")
            .on(&conn)
            .args(bytes(late))
            .args("MSG_NOSIGNAL")
            .returned(&first),
    );
    first.or_fail("send")?;

    // Wait for that RST instead of sleeping: with no events asked for, poll
    // returns only on POLLERR or POLLHUP, which the reset sets.
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::empty())];
    let ready = poll(&mut fds, PollTimeout::from(WAIT_MS));
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    t.server(
        call("poll")
            .args(format!(
                "[{{fd {}, events 0}}], 1, {WAIT_MS} ms",
                conn.as_raw_fd()
            ))
            .returned(&ready.map(i64::from))
            .detail(format!("revents {}", poll_flags(revents))),
    );
    ready.or_fail("poll")?;

    // The second write fails: EPIPE, which Rust calls BrokenPipe.
    let second = (&conn).write(late);
    t.server(
        call("send")
            .on(&conn)
            .args(bytes(late))
            .args("MSG_NOSIGNAL")
            .returned(&second),
    );
    // ANCHOR_END: epipe

    // ANCHOR: sigpipe
    // EPIPE also raises SIGPIPE, whose default action kills the process.
    // std passes MSG_NOSIGNAL, which suppresses it; socket2 passes flags 0,
    // and its process survives only because Rust's runtime set SIGPIPE to
    // "ignore" before main. The kernel's record of that:
    let ignored = sigpipe_ignored(t)?;
    t.server_note(format!(
        "SIGPIPE ignored by this process: {}",
        if ignored { "yes" } else { "no" }
    ));
    let third = SockRef::from(&conn).send(late);
    t.server(call("send").on(&conn).args(bytes(late)).args(0).returned(&third));
    t.server_note("socket2's send, flags 0: SIGPIPE was raised and ignored");
    // ANCHOR_END: sigpipe
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    Ok(())
}

/// Pitfall: a handler that fails halfway tells the peer nothing. Unwinding
/// drops the stream, and a dropped stream is closed with an ordinary FIN.
fn panic_mid_reply(
    t: &mut Transcript,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("a handler panics halfway: the peer sees a clean end");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;

    // ANCHOR: panic
    let conn_fd = conn.as_raw_fd();
    // Keep the demo's output clean: the panic message is shown as a note.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let outcome =
        panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), Failure> {
            // The handler owns the stream: when it unwinds, the stream drops.
            let conn = conn;
            let part = b"numbers: 1 2 3";
            (&conn).write_all(part).or_fail("send")?;
            t.server(
                call("send")
                    .on(&conn)
                    .args(bytes(part))
                    .args("MSG_NOSIGNAL")
                    .gave(&part.len()),
            );
            panic!("the database went away");
        }));
    panic::set_hook(hook);
    match outcome {
        Ok(result) => result?,
        Err(payload) => {
            let message =
                payload.downcast_ref::<&str>().copied().unwrap_or("?");
            t.server_note(format!("the handler panicked: {message}"));
        }
    }
    t.server(call("close").on_fd(conn_fd).gave(&()));
    t.server_note("closed by the unwinding drop: FIN, as for any close");

    let mut buf = [0u8; RECV_SIZE];
    loop {
        let got = (&client).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.client(
            call("recv")
                .on(&client)
                .args(RECV_SIZE)
                .returned(&got)
                .detail(shown(&buf[..n])),
        );
        if got.or_fail("recv")? == 0 {
            break;
        }
    }
    t.client_note("a clean end: is that the whole reply? nothing here says");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    // ANCHOR_END: panic
    Ok(())
}

/// Pitfall: dropping a stream closes the connection only when it was the
/// last descriptor for the socket.
fn clone_keeps_open(
    t: &mut Transcript,
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("a try_clone keeps the connection open");
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;

    // ANCHOR: clone
    // try_clone duplicates the descriptor (fcntl F_DUPFD_CLOEXEC): two fds,
    // one socket. The kernel sends FIN when the last one is closed.
    let clone = conn.try_clone().or_fail("try_clone")?;
    t.server_note(format!(
        "conn.try_clone(): fcntl(fd {}, F_DUPFD_CLOEXEC) = fd {}",
        conn.as_raw_fd(),
        clone.as_raw_fd()
    ));
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    t.server_note(format!(
        "fd {} still refers to the socket: no FIN",
        clone.as_raw_fd()
    ));

    // Nothing arrives: 100 ms is ample on loopback, and a FIN that was
    // never sent cannot arrive later.
    let mut fds = [PollFd::new(client.as_fd(), PollFlags::POLLIN)];
    let ready = poll(&mut fds, PollTimeout::from(100u16));
    t.client(
        call("poll")
            .args(format!("[{{fd {}, POLLIN}}], 1, 100 ms", client.as_raw_fd()))
            .returned(&ready.map(i64::from)),
    );
    ready.or_fail("poll")?;
    t.client_note("nothing to read: the connection is still open");

    let still = b"still here\n";
    (&clone).write_all(still).or_fail("send")?;
    t.server(
        call("send")
            .on(&clone)
            .args(bytes(still))
            .args("MSG_NOSIGNAL")
            .gave(&still.len()),
    );
    let clone_fd = clone.as_raw_fd();
    drop(clone);
    t.server(call("close").on_fd(clone_fd).gave(&()));
    t.server_note("the last descriptor: now the FIN goes out");

    let mut buf = [0u8; RECV_SIZE];
    loop {
        let got = (&client).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.client(
            call("recv")
                .on(&client)
                .args(RECV_SIZE)
                .returned(&got)
                .detail(shown(&buf[..n])),
        );
        if got.or_fail("recv")? == 0 {
            break;
        }
    }
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    // ANCHOR_END: clone
    Ok(())
}

/// The states of the connections `local -> peer` as the kernel lists them
/// in /proc/net/tcp, the table `ss -tan` and `netstat` read ("no entry" for
/// one it does not list). The open and close are narrated in `column`; the
/// reads are not, since their byte counts depend on every other TCP socket
/// on the machine.
fn tcp_states(
    t: &mut Transcript,
    column: usize,
    pairs: &[(SocketAddr, SocketAddr)],
) -> Result<Vec<&'static str>, Failure> {
    // ANCHOR: proc_net_tcp
    const TABLE: &str = "/proc/net/tcp";
    let file = File::open(TABLE);
    t.at(
        column,
        call("open").args(format!("{TABLE:?}, O_RDONLY")).returned(&file),
    );
    let mut file = file.or_fail(format!("open {TABLE}"))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_fail(format!("read {TABLE}"))?;
    let fd = file.as_raw_fd();
    drop(file);
    t.at(column, call("close").on_fd(fd).gave(&()));
    // ANCHOR_END: proc_net_tcp
    Ok(pairs
        .iter()
        .map(|&(local, peer)| {
            tcp_state::find(&text, local, peer).unwrap_or("no entry")
        })
        .collect())
}

/// Whether SIGPIPE is ignored, from the kernel's own record of this
/// process: the `SigIgn` mask in /proc/self/status, bit 13 - 1 for SIGPIPE.
fn sigpipe_ignored(t: &mut Transcript) -> Result<bool, Failure> {
    const STATUS: &str = "/proc/self/status";
    let file = File::open(STATUS);
    t.server(
        call("open").args(format!("{STATUS:?}, O_RDONLY")).returned(&file),
    );
    let mut file = file.or_fail(format!("open {STATUS}"))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_fail(format!("read {STATUS}"))?;
    let fd = file.as_raw_fd();
    drop(file);
    t.server(call("close").on_fd(fd).gave(&()));
    let mask = text
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or(Failure::new(STATUS, "no SigIgn line"))?;
    Ok(mask & (1 << (Signal::SIGPIPE as i32 - 1)) != 0)
}

/// What a read returned, shown after its byte count; nothing for 0 bytes.
fn shown(data: &[u8]) -> String {
    if data.is_empty() { String::new() } else { bytes(data) }
}

/// `POLLERR|POLLHUP`, as strace shows poll's results.
fn poll_flags(flags: PollFlags) -> String {
    let names = [
        (PollFlags::POLLIN, "POLLIN"),
        (PollFlags::POLLOUT, "POLLOUT"),
        (PollFlags::POLLERR, "POLLERR"),
        (PollFlags::POLLHUP, "POLLHUP"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    if set.is_empty() { "0".to_string() } else { set.join("|") }
}

/// The experiment behind the demo's EPIPE part, with SIGPIPE and the
/// sending call chosen on the command line. With `--sigpipe default --send
/// socket2` the second send kills the process: a shell shows status 141
/// (128 + 13, SIGPIPE).
fn broken_pipe(sigpipe: Sigpipe, writer: Writer) -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);
    // ANCHOR: restore_sigpipe
    if sigpipe == Sigpipe::Default {
        // SAFETY: SIG_DFL installs no handler, so no code of ours can run
        // inside a signal; the process is single-threaded at this point.
        let old = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
        old.or_fail("signal SIGPIPE")?;
        t.server_note(
            "signal(SIGPIPE, SIG_DFL): a C program's default, death on SIGPIPE",
        );
    }
    // ANCHOR_END: restore_sigpipe

    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    t.server_note(format!("listening on {addr}"));
    // A client connects and the server accepts it, as in lesson 3.
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(call("socket").args(STREAM).gave(&client));
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = listener.accept();
    t.server(
        call("accept").on(&listener).args("SOCK_CLOEXEC").returned(&accepted),
    );
    let (conn, _peer) = accepted.or_fail("accept")?;
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    let mut buf = [0u8; RECV_SIZE];
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;

    // ANCHOR: two_writes
    let late = b"a late reply\n";
    let send = |conn: &TcpStream| match writer {
        Writer::Std => ((&*conn).write(late), "MSG_NOSIGNAL"),
        Writer::Socket2 => (SockRef::from(conn).send(late), "0"),
    };
    let (first, flags) = send(&conn);
    t.server(
        call("send").on(&conn).args(bytes(late)).args(flags).returned(&first),
    );
    first.or_fail("send")?;
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::empty())];
    let ready = poll(&mut fds, PollTimeout::from(WAIT_MS));
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    t.server(
        call("poll")
            .args(format!(
                "[{{fd {}, events 0}}], 1, {WAIT_MS} ms",
                conn.as_raw_fd()
            ))
            .returned(&ready.map(i64::from))
            .detail(format!("revents {}", poll_flags(revents))),
    );
    ready.or_fail("poll")?;
    // With SIGPIPE at its default and flags 0, the process ends inside
    // this call: nothing after it runs.
    let (second, flags) = send(&conn);
    t.server(
        call("send").on(&conn).args(bytes(late)).args(flags).returned(&second),
    );
    // ANCHOR_END: two_writes
    match second {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
            t.server_note("still alive: the broken pipe came back as an error");
            Ok(())
        }
        Err(err) => Err(Failure::new("send", err)),
        Ok(_) => Err(Failure::new("send", "the second write succeeded")),
    }
}

/// Reads each client's request until it half-closes (a 0-byte read), then
/// answers with the byte count and closes. With `abort`, closes with RST.
fn server(
    addr: SocketAddr,
    timeout: Duration,
    abort: bool,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    println!("Listening on {local}");
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
        serve_one(conn, peer, timeout, abort);
    }
}

/// One client, start to end; every failure ends this client only.
fn serve_one(
    conn: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    abort: bool,
) {
    // ANCHOR: serve_one
    if let Err(err) = conn.set_read_timeout(Some(timeout)) {
        println!("setsockopt SO_RCVTIMEO for {peer}: {err}; closing");
        return;
    }
    let mut buf = [0u8; RECV_SIZE];
    let mut total: u64 = 0;
    // The request ends where the client's stream ends: read to EOF.
    loop {
        match (&conn).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(err) if is_timeout_error(&err) => {
                println!(
                    "No end of request from {peer} for {timeout:?}: closing"
                );
                return;
            }
            Err(err) => {
                println!("recv from {peer}: {err}; closing");
                return;
            }
        }
    }
    if abort {
        // linger on, 0 s: close sends RST, and the client's read of the
        // reply it waits for fails with ECONNRESET.
        if let Err(err) = SockRef::from(&conn).set_linger(Some(Duration::ZERO))
        {
            println!("setsockopt SO_LINGER for {peer}: {err}");
        }
        drop(conn);
        println!("{peer} finished sending ({total} bytes): aborted with RST");
        return;
    }
    println!("{peer} finished sending ({total} bytes): replying");
    // Nothing is left unread, so this close sends FIN, not RST.
    let sent =
        (&conn).write_all(format!("received {total} bytes\n").as_bytes());
    drop(conn);
    match sent {
        Ok(()) => println!("Closed {peer}: FIN sent"),
        Err(err) => println!("send to {peer}: {err}; closed"),
    }
    // ANCHOR_END: serve_one
}

/// Sends all of stdin, half-closes, and prints the reply until the server
/// closes. A reset or any other failure exits non-zero.
fn client(addr: SocketAddr) -> Result<(), Failure> {
    // ANCHOR: client
    let mut request = Vec::new();
    io::stdin().read_to_end(&mut request).or_fail("read stdin")?;
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    println!("Connected to {addr}");
    stream.write_all(&request).or_fail(format!("send {addr}"))?;
    // Without this the server, reading to end of stream, would wait forever.
    stream.shutdown(Shutdown::Write).or_fail(format!("shutdown {addr}"))?;
    println!("Sent {} bytes, then shutdown(Write)", request.len());
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).or_fail(format!("recv {addr}"))?;
    print!("Reply: {}", String::from_utf8_lossy(&reply));
    println!("The server closed the connection");
    Ok(())
    // ANCHOR_END: client
}

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
fn is_timeout_error(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
