//! The demo: seven ways a conversation ends, on one listener, each on a fresh
//! connection, and the `broken-pipe` experiment. One thread plays both
//! sides: every call that waits (a read, `poll`) waits for something the
//! other side has already done, so the order on screen is the order of the
//! calls.
//!
//! Each call carries its line of the timeline as a suffix, `.told(|| ...)`.
//! std's `TcpListener::bind` and `TcpStream::connect` make several system
//! calls each; their lines are told with `tell` once the call has returned.

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, Signal, signal};
use socket2::SockRef;
use transcript::{
    Call, Failure, OrFail, Told, Transcript, actor, bytes, client, client_note,
    section, server, server_note, tcp_state, tell,
};

use crate::server::{drain, read_request};
use crate::{RECV_SIZE, Sigpipe, Writer};

/// What every `socket` call here asks for: std adds SOCK_CLOEXEC.
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";

/// The backlog std passes to `listen` on Linux (lesson 3).
const STD_BACKLOG: i32 = 128;

/// How long the demo waits for a packet that must come (an RST): a bound,
/// not a pause. On loopback it comes within microseconds.
const WAIT_MS: u16 = 5000;

/// Seven endings, in the order the chapter tells them.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let (listener, addr) = listen()?;
    done_sending(&listener, addr)?;
    abortive_close(&listener, addr)?;
    unread_data(&listener, addr)?;
    drain_then_close(&listener, addr)?;
    let conn = write_after_close(&listener, addr)?;
    sigpipe(conn)?;
    panic_mid_reply(&listener, addr)?;
    clone_keeps_open(&listener, addr)?;
    close(listener, server);
    Ok(())
}

/// The listener, as in lesson 3: `TcpListener::bind` makes four calls.
fn listen() -> Result<(TcpListener, SocketAddr), Failure> {
    server_note("TcpListener::bind(\"127.0.0.1:0\"), as in lesson 3:");
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    tell(|| server("socket").args(STREAM).gave(&listener));
    tell(|| {
        server("setsockopt").on(&listener).args("SO_REUSEADDR, 1").gave(&())
    });
    tell(|| server("bind").on(&listener).args(wanted).gave(&()));
    tell(|| server("listen").on(&listener).args(STD_BACKLOG).gave(&()));
    let addr =
        listener.local_addr().told(|| server("getsockname").on(&listener))?;
    Ok((listener, addr))
}

/// A client connects and the server accepts it, as in lesson 3. std's
/// `connect` is two calls, `socket` and `connect`.
fn connect(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(TcpStream, TcpStream, SocketAddr), Failure> {
    let sock = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    tell(|| client("socket").args(STREAM).gave(&sock));
    tell(|| client("connect").on(&sock).args(addr).gave(&()));
    let (conn, peer) = listener
        .accept()
        .told(|| server("accept").on(listener).args("SOCK_CLOEXEC"))?;
    Ok((sock, conn, peer))
}

/// The first part: a half-close, then the TIME_WAIT it leaves.
fn done_sending(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    section("shutdown(Write): done sending, still listening");
    let (sock, conn, _peer) = connect(listener, addr)?;
    // Which end is the client's: the 4-tuple to look for afterwards.
    let mine = sock.local_addr().told(|| client("getsockname").on(&sock))?;
    half_close(sock, conn)?;
    time_wait(mine, addr)
}

// ANCHOR: half_close
/// The client says "that is all" with a FIN and still gets its answer: the
/// server reads the request to its end with the server's own
/// `read_request`, answers, and closes.
fn half_close(sock: TcpStream, conn: TcpStream) -> Result<(), Failure> {
    let request = b"two lines\nof request\n";
    (&sock).write(request).told(|| {
        client("send").on(&sock).args(bytes(request)).args("MSG_NOSIGNAL")
    })?;
    // SHUT_WR queues a FIN after the request: "no more bytes from me". The
    // socket can still receive.
    sock.shutdown(Shutdown::Write)
        .told(|| client("shutdown").on(&sock).args("SHUT_WR"))?;

    // The server reads until a read returns 0 bytes: the FIN, the only way
    // to know that a request of unknown length is complete.
    let total = read_request(&conn).or_fail("recv")?;
    server_note("0 bytes: the client has finished sending, and still listens");

    // The connection is half open, not closed: the answer goes through.
    let reply = format!("got {total} bytes\n");
    (&conn).write(reply.as_bytes()).told(|| {
        let reply = bytes(reply.as_bytes());
        server("send").on(&conn).args(reply).args("MSG_NOSIGNAL")
    })?;
    close(conn, server);

    read_to_end(&sock)?;
    client_note("0 bytes: the server is done too");
    close(sock, client);
    Ok(())
}
// ANCHOR_END: half_close

// ANCHOR: time_wait
/// The client sent the first FIN, so its end of the 4-tuple waits in
/// TIME_WAIT: RFC 9293 asks for twice the maximum segment lifetime, and
/// Linux waits a fixed 60 s (TCP_TIMEWAIT_LEN). It got there when the
/// server's FIN arrived, before the client's last recv returned 0.
fn time_wait(mine: SocketAddr, theirs: SocketAddr) -> Result<(), Failure> {
    let states = tcp_states(1, &[(mine, theirs)])?;
    client_note(format!("{mine} -> {theirs}: {}", states[0]));
    client_note("the side that closed first holds the 4-tuple for 60 s");
    Ok(())
}
// ANCHOR_END: time_wait

// ANCHOR: abort
/// `SO_LINGER` with a zero timeout: close sends RST and forgets the
/// connection at once.
fn abortive_close(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    section("SO_LINGER 0: close sends RST");
    let (sock, conn, peer) = connect(listener, addr)?;

    // linger on, 0 seconds: close() discards anything unsent and sends RST
    // instead of FIN (man 7 socket, SO_LINGER). std cannot set it yet.
    SockRef::from(&conn)
        .set_linger(Some(Duration::ZERO))
        .told(|| server("setsockopt").on(&conn).args("SO_LINGER, {on, 0 s}"))?;
    close(conn, server);

    // The client's read fails instead of returning 0: a reset, not an end.
    let mut buf = [0u8; RECV_SIZE];
    let got = (&sock)
        .read(&mut buf)
        .traced(|| client("recv").on(&sock).args(RECV_SIZE));
    expect_reset(got)?;
    client_note(
        "the connection was aborted: whatever the server meant to say is lost",
    );
    close(sock, client);

    // Neither side is left in TIME_WAIT: that is why people reach for
    // SO_LINGER 0, and why it is wrong for a normal ending.
    let states = tcp_states(0, &[(addr, peer), (peer, addr)])?;
    server_note(format!("{addr} -> {peer}: {}", states[0]));
    server_note(format!("{peer} -> {addr}: {}", states[1]));
    Ok(())
}
// ANCHOR_END: abort

// ANCHOR: unread
/// Pitfall: closing with bytes still unread sends RST, which can cost the
/// client a reply it already has.
fn unread_data(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    section("close with unread data sends RST, even after a full reply");
    let (sock, conn, _peer) = connect(listener, addr)?;
    send_request(&sock)?;
    // The server reads only what it needs (say, the headers)...
    let mut head = [0u8; 512];
    (&conn)
        .read(&mut head)
        .told(|| server("recv").on(&conn).args(head.len()))?;
    // ...answers in full...
    send_reply(&conn)?;
    // ...and closes with 1536 bytes unread. Data would be lost, so the
    // kernel says so with RST instead of FIN (RFC 2525, section 2.17).
    close(conn, server);
    server_note("1536 bytes were never read: RST, not FIN");

    let mut buf = [0u8; RECV_SIZE];
    (&sock)
        .read(&mut buf)
        .told(|| client("recv").on(&sock).args(RECV_SIZE).data(&buf))?;
    // A client that reads until the end (HTTP/1.0 bodies, `curl`) gets an
    // error where the end should be, and may throw the reply away.
    let got = (&sock)
        .read(&mut buf)
        .traced(|| client("recv").on(&sock).args(RECV_SIZE));
    expect_reset(got)?;
    client_note("the whole reply, then a reset instead of the end");
    close(sock, client);
    Ok(())
}
// ANCHOR_END: unread

// ANCHOR: drain
/// The fix: after the reply, `shutdown(Write)` for a clean end, then read
/// and drop what the client still sends, until its FIN, and only then
/// close: the server's own `drain`.
fn drain_then_close(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    section("the fix: shutdown(Write), drain, then close");
    let (sock, conn, _peer) = connect(listener, addr)?;
    send_request(&sock)?;
    let mut head = [0u8; 512];
    (&conn)
        .read(&mut head)
        .told(|| server("recv").on(&conn).args(head.len()))?;
    send_reply(&conn)?;
    // FIN after the reply: the client sees a clean end of stream...
    conn.shutdown(Shutdown::Write)
        .told(|| server("shutdown").on(&conn).args("SHUT_WR"))?;

    read_to_end(&sock)?;
    client_note("the whole reply, then a clean end");
    close(sock, client);

    // ...and the server reads, and drops, what is left until the client's
    // FIN. `drain` stops after MAX_DRAIN bytes, and the read timeout the
    // server sets bounds each wait, so no client keeps it draining for ever.
    drain(&conn).or_fail("recv")?;
    close(conn, server);
    server_note("nothing unread: an ordinary close");
    Ok(())
}
// ANCHOR_END: drain

/// The request of the unread-data parts: 2 KiB, more than the server reads.
fn send_request(sock: &TcpStream) -> Result<(), Failure> {
    let request = [b'x'; 2048];
    let sent = (&*sock).write(&request).told(|| {
        client("send").on(sock).args(bytes(&request)).args("MSG_NOSIGNAL")
    })?;
    if sent < request.len() {
        return Err(Failure::new("send", "a short write on loopback"));
    }
    Ok(())
}

/// The server's whole reply in the unread-data parts.
fn send_reply(conn: &TcpStream) -> Result<(), Failure> {
    let reply = b"here is your whole reply\n";
    (&*conn).write(reply).told(|| {
        server("send").on(conn).args(bytes(reply)).args("MSG_NOSIGNAL")
    })?;
    Ok(())
}

// ANCHOR: epipe
/// Pitfall: a write to a closed peer does not fail at once. Returns the
/// server's end for the SIGPIPE part.
fn write_after_close(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<TcpStream, Failure> {
    section("writing to a peer that has closed");
    let (sock, conn, _peer) = connect(listener, addr)?;
    close(sock, client);

    let mut buf = [0u8; RECV_SIZE];
    (&conn).read(&mut buf).told(|| server("recv").on(&conn).args(RECV_SIZE))?;
    server_note("0 bytes: the client sends no more; it might still read");

    // The first write succeeds: our kernel takes the bytes and sends them.
    // The client's socket is closed for reading, so its kernel answers RST.
    let late = b"a late reply\n";
    let send = || server("send").on(&conn).args(bytes(late));
    (&conn).write(late).told(|| send().args("MSG_NOSIGNAL"))?;

    wait_for_reset(&conn)?;

    // The second write fails: EPIPE, which Rust calls BrokenPipe.
    let second = (&conn).write(late).traced(|| send().args("MSG_NOSIGNAL"));
    expect_broken_pipe(second)?;
    Ok(conn)
}
// ANCHOR_END: epipe

// ANCHOR: sigpipe
/// EPIPE also raises SIGPIPE, whose default action kills the process.
/// std passes MSG_NOSIGNAL, which suppresses it; socket2 passes flags 0,
/// and its process survives only because Rust's runtime set SIGPIPE to
/// "ignore" before main. The kernel's record of that, then the proof.
fn sigpipe(conn: TcpStream) -> Result<(), Failure> {
    let ignored = sigpipe_ignored()?;
    let ignored = if ignored { "yes" } else { "no" };
    server_note(format!("SIGPIPE ignored by this process: {ignored}"));
    let late = b"a late reply\n";
    let third = SockRef::from(&conn)
        .send(late)
        .traced(|| server("send").on(&conn).args(bytes(late)).args(0));
    expect_broken_pipe(third)?;
    server_note("socket2's send, flags 0: SIGPIPE was raised and ignored");
    close(conn, server);
    Ok(())
}
// ANCHOR_END: sigpipe

// ANCHOR: panic
/// Pitfall: a handler that fails halfway tells the peer nothing. Unwinding
/// drops the stream, and a dropped stream is closed with an ordinary FIN.
fn panic_mid_reply(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    section("a handler panics halfway: the peer sees a clean end");
    let (sock, conn, _peer) = connect(listener, addr)?;
    let conn_fd = conn.as_raw_fd();
    // Keep the demo's output clean: the panic message is shown as a note.
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let outcome =
        panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), Failure> {
            // The handler owns the stream: when it unwinds, the stream drops.
            let conn = conn;
            let part = b"numbers: 1 2 3";
            (&conn).write(part).told(|| {
                server("send").on(&conn).args(bytes(part)).args("MSG_NOSIGNAL")
            })?;
            panic!("the database went away");
        }));
    panic::set_hook(hook);
    match outcome {
        Ok(result) => result?,
        Err(payload) => {
            let message = payload.downcast_ref::<&str>().unwrap_or(&"?");
            server_note(format!("the handler panicked: {message}"));
        }
    }
    tell(|| server("close").on_fd(conn_fd).gave(&()));
    server_note("closed by the unwinding drop: FIN, as for any close");

    read_to_end(&sock)?;
    client_note("a clean end: is that the whole reply? nothing here says");
    close(sock, client);
    Ok(())
}
// ANCHOR_END: panic

// ANCHOR: clone
/// Pitfall: dropping a stream closes the connection only when it was the
/// last descriptor for the socket.
fn clone_keeps_open(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(), Failure> {
    section("a try_clone keeps the connection open");
    let (sock, conn, _peer) = connect(listener, addr)?;
    // try_clone duplicates the descriptor (fcntl F_DUPFD_CLOEXEC): two fds,
    // one socket. The kernel sends FIN when the last one is closed.
    let clone = conn.try_clone().or_fail("try_clone")?;
    let (fd, copy) = (conn.as_raw_fd(), clone.as_raw_fd());
    server_note(format!(
        "conn.try_clone(): fcntl(fd {fd}, F_DUPFD_CLOEXEC) = fd {copy}"
    ));
    close(conn, server);
    server_note(format!("fd {copy} still refers to the socket: no FIN"));

    // Nothing arrives: 100 ms is ample on loopback, and a FIN that was
    // never sent cannot arrive later.
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
    let polled = format!("[{{fd {}, POLLIN}}], 1, 100 ms", sock.as_raw_fd());
    poll(&mut fds, PollTimeout::from(100u16))
        .map(i64::from)
        .told(|| client("poll").args(polled))?;
    client_note("nothing to read: the connection is still open");

    let still = b"still here\n";
    (&clone).write(still).told(|| {
        server("send").on(&clone).args(bytes(still)).args("MSG_NOSIGNAL")
    })?;
    close(clone, server);
    server_note("the last descriptor: now the FIN goes out");

    read_to_end(&sock)?;
    close(sock, client);
    Ok(())
}
// ANCHOR_END: clone

/// The client reads until the end of the stream, each read on a line of
/// its own with the bytes it returned.
fn read_to_end(sock: &TcpStream) -> Result<(), Failure> {
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let n = (&*sock)
            .read(&mut buf)
            .told(|| client("recv").on(sock).args(RECV_SIZE).data(&buf))?;
        if n == 0 {
            return Ok(());
        }
    }
}

// ANCHOR: wait_for_reset
/// Waits for the peer's RST instead of sleeping: with no events asked for,
/// poll returns only on POLLERR or POLLHUP, which the reset sets (and at
/// the latest after [`WAIT_MS`]).
fn wait_for_reset(conn: &TcpStream) -> Result<(), Failure> {
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::empty())];
    let ready = poll(&mut fds, PollTimeout::from(WAIT_MS)).map(i64::from);
    let revents = fds[0].revents().unwrap_or(PollFlags::empty());
    let polled =
        format!("[{{fd {}, events 0}}], 1, {WAIT_MS} ms", conn.as_raw_fd());
    // Told after the call: the line ends with the events poll returned.
    tell(|| {
        let revents = format!("revents {}", poll_flags(revents));
        server("poll").args(polled).returned(&ready).detail(revents)
    });
    ready.or_fail("poll")?;
    Ok(())
}
// ANCHOR_END: wait_for_reset

/// A read that must have failed with a reset: anything else stops the demo.
fn expect_reset(got: io::Result<usize>) -> Result<(), Failure> {
    match got {
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Err(err) => Err(Failure::new("recv", err)),
        Ok(n) => Err(Failure::new("recv", format!("{n} bytes, not a reset"))),
    }
}

/// A write that must have failed with EPIPE.
fn expect_broken_pipe(sent: io::Result<usize>) -> Result<(), Failure> {
    match sent {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(Failure::new("send", err)),
        Ok(_) => Err(Failure::new("send", "the write succeeded")),
    }
}

/// Closes `socket`, in `side`'s column: dropping it is `close(2)`.
fn close(socket: impl AsRawFd, side: impl Fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}

// ANCHOR: tcp_states
/// The states of the connections `local -> peer` as the kernel lists them
/// in /proc/net/tcp, the table `ss -tan` and `netstat` read ("no entry" for
/// one it does not list). The open and close are told in `column`; the
/// reads are not, since their byte counts depend on every other TCP socket
/// on the machine.
fn tcp_states(
    column: usize,
    pairs: &[(SocketAddr, SocketAddr)],
) -> Result<Vec<&'static str>, Failure> {
    const TABLE: &str = "/proc/net/tcp";
    let mut file = File::open(TABLE)
        .told(|| actor(column, "open").args(format!("{TABLE:?}, O_RDONLY")))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_fail(format!("read {TABLE}"))?;
    close(file, |name| actor(column, name));
    Ok(pairs
        .iter()
        .map(|&(local, peer)| {
            tcp_state::find(&text, local, peer).unwrap_or("no entry")
        })
        .collect())
}
// ANCHOR_END: tcp_states

/// Whether SIGPIPE is ignored, from the kernel's own record of this
/// process: the `SigIgn` mask in /proc/self/status, bit 13 - 1 for SIGPIPE.
fn sigpipe_ignored() -> Result<bool, Failure> {
    const STATUS: &str = "/proc/self/status";
    let mut file = File::open(STATUS)
        .told(|| server("open").args(format!("{STATUS:?}, O_RDONLY")))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_fail(format!("read {STATUS}"))?;
    close(file, server);
    let mask = text
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or(Failure::new(STATUS, "no SigIgn line"))?;
    Ok(mask & (1 << (Signal::SIGPIPE as i32 - 1)) != 0)
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
pub fn broken_pipe(sigpipe: Sigpipe, writer: Writer) -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    if sigpipe == Sigpipe::Default {
        restore_sigpipe()?;
    }
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    server_note(format!("listening on {addr}"));
    let (sock, conn, _peer) = connect(&listener, addr)?;
    close(sock, client);
    let mut buf = [0u8; RECV_SIZE];
    (&conn).read(&mut buf).told(|| server("recv").on(&conn).args(RECV_SIZE))?;
    match two_writes(&conn, writer) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
            server_note("still alive: the broken pipe came back as an error");
            Ok(())
        }
        Err(err) => Err(Failure::new("send", err)),
        Ok(_) => Err(Failure::new("send", "the second write succeeded")),
    }
}

// ANCHOR: restore_sigpipe
/// Puts SIGPIPE back to its default action, death, as a C program starts.
fn restore_sigpipe() -> Result<(), Failure> {
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run
    // inside a signal; the process is single-threaded at this point.
    let old = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    old.or_fail("signal SIGPIPE")?;
    server_note(
        "signal(SIGPIPE, SIG_DFL): a C program's default, death on SIGPIPE",
    );
    Ok(())
}
// ANCHOR_END: restore_sigpipe

// ANCHOR: two_writes
/// Writes to a peer that has closed, waits for its RST, and writes again,
/// with std (MSG_NOSIGNAL) or socket2 (flags 0). With SIGPIPE at its
/// default and flags 0, the process ends inside the second write: nothing
/// after it runs. Returns what the second write returned.
fn two_writes(conn: &TcpStream, writer: Writer) -> io::Result<usize> {
    let late = b"a late reply\n";
    let send = || match writer {
        Writer::Std => ((&*conn).write(late), "MSG_NOSIGNAL"),
        Writer::Socket2 => (SockRef::from(conn).send(late), "0"),
    };
    let line =
        |flags: &str| server("send").on(conn).args(bytes(late)).args(flags);
    let (first, flags) = send();
    first.traced(|| line(flags))?;
    if let Err(failure) = wait_for_reset(conn) {
        return Err(io::Error::other(failure.to_string()));
    }
    let (second, flags) = send();
    second.traced(|| line(flags))
}
// ANCHOR_END: two_writes
