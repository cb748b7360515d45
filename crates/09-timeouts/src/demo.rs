//! The demo: each kind of timeout, one part at a time, in one process, on
//! loopback. Only the slow client runs on a thread of its own, because its
//! point is to be slow while the server waits; its narration comes back to
//! the main thread, which prints every line in the order the calls
//! happened.
//!
//! Each call carries its line of the timeline as a suffix, `.told(|| ...)`
//! or `.traced(|| ...)`, which prints only in the demo (see the transcript
//! crate).

use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, SockFilter, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Outcome, Ret, Said, Told, Transcript, bytes, client,
    client_note, redirect, section, server, server_note, tcp_state, tell,
};

use crate::RECV_SIZE;
use crate::server::{SHORTEST, is_timeout};

/// The demo's short timeout: long next to a loopback round trip (tens of
/// microseconds), short enough not to keep the reader waiting.
const SHORT: Duration = Duration::from_millis(50);

/// The slow client's pace, the server's idle timeout and its per-request
/// deadline in the demo. No step's outcome depends on how soon a thread
/// wakes: the server reads each byte once the client has sent it, and the
/// pauses only ever add time (a request the pauses make longer than IDLE
/// stays longer, on a busy machine too).
const PACE: Duration = Duration::from_millis(200);
const IDLE: Duration = Duration::from_millis(300);
const DEADLINE: Duration = Duration::from_millis(500);

/// The bytes the slow client sends, one at a time.
const SLOW_REQUEST: &[u8] = b"GET";

/// How long the demo's reader waits before it stands in for "for ever".
const FOREVER: Duration = Duration::from_millis(300);

/// A guard on the keepalive demo's read: it ends after about 2 s; this only
/// stops the demo from hanging if keepalive did not work.
const GUARD: Duration = Duration::from_secs(10);

/// `SO_SNDBUF` for the write timeout (the kernel doubles it).
const BUFFER: usize = 64 * 1024;

/// More than both buffers hold.
const BIG: usize = 1024 * 1024;

/// The classic BPF opcode `BPF_RET | BPF_K`: return a constant, here the
/// number of bytes to keep, 0.
const BPF_RET_K: u16 = 0x06;

/// How `socket` is shown: socket2 adds SOCK_CLOEXEC on its own (lesson 1).
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";

/// The timeline: one part per kind of wait, against one listener.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let (listener, addr) = listen()?;
    read_timeout(&listener, addr)?;
    next_client(&listener, addr)?;
    write_timeout(&listener, addr)?;
    accept_timeout(&listener)?;
    connect_timeout()?;
    slow_client(&listener, addr)?;
    deadline(&listener, addr)?;
    vanished_peer(&listener, addr)?;
    heartbeat(&listener, addr)?;
    close(listener, server);
    Ok(())
}

/// The server's listening socket, on a port the kernel picks.
fn listen() -> Result<(Socket, SocketAddr), Failure> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&any_port.into())
        .told(|| server("bind").on(&listener).args(any_port))?;
    let addr = listener
        .local_addr()
        .told(|| server("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(8).told(|| server("listen").on(&listener).args(8))?;
    Ok((listener, addr))
}

// ANCHOR: connection
/// A client's socket, then its `connect`, then the server's `accept`: one
/// connection, both ends, (client, server). Every part starts with one.
fn connection(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let sock = client_socket()?;
    sock.connect(&addr.into())
        .told(|| client("connect").on(&sock).args(addr))?;
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    Ok((sock, conn))
}
// ANCHOR_END: connection

fn client_socket() -> Result<Socket, Failure> {
    Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args(STREAM))
}

// ANCHOR: read_timeout
/// A client that says nothing: the server's `recv` fails with EAGAIN once
/// its timeout expires, and the server closes that one connection.
fn read_timeout(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section("a read timeout is EAGAIN, and the server goes on");
    let (quiet, conn) = connection(listener, addr)?;
    conn.set_read_timeout(Some(SHORT)).told(|| {
        server("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(SHORT)))
    })?;
    let mut buf = [0u8; RECV_SIZE];
    let started = Instant::now();
    // Linux reports an expired SO_RCVTIMEO as EAGAIN (man 7 socket), the
    // errno of a nonblocking socket with nothing to read: WouldBlock.
    // TimedOut (ETIMEDOUT) means something else: see the dead peer.
    match (&conn)
        .read(&mut buf)
        .traced(|| server("recv").on(&conn).args(RECV_SIZE))
    {
        Err(err) if is_timeout(&err) => {
            // The kernel counts the timeout in clock ticks (1 to 10 ms),
            // so the wait can end up to a tick early: check "about".
            let waited = started.elapsed() >= SHORT * 3 / 4;
            server_note(format!(
                "no byte in {}: EAGAIN (WouldBlock), not ETIMEDOUT; \
                 waited about {}: {}",
                ms(SHORT),
                ms(SHORT),
                yes(waited)
            ));
            server_note(
                "an ordinary result: close this connection, serve the next",
            );
        }
        other => drop(other.or_fail("recv")?),
    }
    close(conn, server);
    (&quiet)
        .read(&mut buf)
        .told(|| client("recv").on(&quiet).args(RECV_SIZE))?;
    client_note("0 bytes: the server hung up on us");
    close(quiet, client);
    Ok(())
}
// ANCHOR_END: read_timeout

// ANCHOR: next_client
/// The next client is served as if nothing had happened.
fn next_client(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    let next = client_socket()?;
    next.connect(&addr.into())
        .told(|| client("connect").on(&next).args(addr))?;
    let request = b"hello\n";
    next.send(request)
        .told(|| client("send").on(&next).args(bytes(request)))?;
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    conn.set_read_timeout(Some(SHORT)).told(|| {
        server("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(SHORT)))
    })?;
    let mut buf = [0u8; RECV_SIZE];
    let n = (&conn)
        .read(&mut buf)
        .told(|| server("recv").on(&conn).args(RECV_SIZE).data(&buf))?;
    let echo = &buf[..n];
    conn.send(echo).told(|| server("send").on(&conn).args(bytes(echo)))?;
    let mut reply = [0u8; RECV_SIZE];
    (&next)
        .read(&mut reply)
        .told(|| client("recv").on(&next).args(RECV_SIZE).data(&reply))?;
    client_note("served: the timeout cost one connection, not the server");
    close(next, client);
    close(conn, server);
    Ok(())
}
// ANCHOR_END: next_client

// ANCHOR: write_timeout
/// A `send` waits for room in the send buffer: with a write timeout it
/// returns what fitted, then, with no room at all, EAGAIN.
fn write_timeout(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section("a write timeout: a short count first, then EAGAIN");
    // A fixed send buffer: the kernel does not grow it, so how much fits
    // is the same on every run.
    let writer = client_socket()?;
    writer.set_send_buffer_size(BUFFER).told(|| {
        client("setsockopt").on(&writer).args(format!("SO_SNDBUF, {BUFFER}"))
    })?;
    writer
        .connect(&addr.into())
        .told(|| client("connect").on(&writer).args(addr))?;
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    // The server's side drops every packet (the BPF filter of the vanished
    // peer), so nothing the client queues is acknowledged or freed.
    deafen(&conn, server)?;
    server_note(
        "from now on this side receives nothing, so it acknowledges nothing",
    );
    writer.set_write_timeout(Some(SHORT)).told(|| {
        client("setsockopt")
            .on(&writer)
            .args(format!("SO_SNDTIMEO, {}", ms(SHORT)))
    })?;
    let big = vec![b'x'; BIG];
    let big_send = || client("send").on(&writer).args(format!("{BIG} bytes"));
    // A timeout after some bytes went in is not an error: send returns how
    // many it took (man 7 socket). Code that ignores the count loses data.
    if writer.send(&big).told(big_send)? < BIG {
        client_note(
            "fewer bytes than asked: \
             the timeout expired after the send buffer filled",
        );
    }
    match writer.send(&big).traced(big_send) {
        Err(err) if is_timeout(&err) => client_note(format!(
            "no room for a single byte in {}: EAGAIN, WouldBlock again",
            ms(SHORT)
        )),
        other => drop(other.or_fail("send")?),
    }
    // Let packets in again before closing, so that both ends can finish.
    conn.detach_filter()
        .told(|| server("setsockopt").on(&conn).args("SO_DETACH_FILTER"))?;
    close(writer, client);
    close(conn, server);
    Ok(())
}
// ANCHOR_END: write_timeout

// ANCHOR: deafen
/// Makes `socket` deaf: a classic BPF program of one instruction, "return
/// 0", makes the kernel drop every packet that reaches this socket before
/// TCP sees it, as if its host had lost power. No privileges needed.
fn deafen(
    socket: &Socket,
    side: fn(&'static str) -> Call,
) -> Result<(), Failure> {
    let drop_all = [SockFilter::new(BPF_RET_K, 0, 0, 0)];
    socket.attach_filter(&drop_all).told(|| {
        side("setsockopt").on(socket).args("SO_ATTACH_FILTER, { ret #0 }")
    })
}
// ANCHOR_END: deafen

// ANCHOR: accept_timeout
/// SO_RCVTIMEO on a listening socket bounds `accept` (man 7 socket).
fn accept_timeout(listener: &Socket) -> Result<(), Failure> {
    section("an accept timeout");
    listener.set_read_timeout(Some(SHORT)).told(|| {
        let option = format!("SO_RCVTIMEO, {}", ms(SHORT));
        server("setsockopt").on(listener).args(option)
    })?;
    match listener.accept().traced(|| server("accept").on(listener)) {
        Err(err) if is_timeout(&err) => server_note(format!(
            "no client in {}: EAGAIN, the same as recv",
            ms(SHORT)
        )),
        other => drop(other.or_fail("accept")?),
    }
    Ok(())
}
// ANCHOR_END: accept_timeout

// ANCHOR: connect_timeout
/// A connect that stalls, against lesson 8's full accept queue, bounded
/// two ways: `poll` on a nonblocking connect, and SO_SNDTIMEO.
fn connect_timeout() -> Result<(), Failure> {
    section("a connect timeout, against a full accept queue (lesson 8)");
    let (full, full_addr) = full_queue()?;
    let first = client_socket()?;
    first
        .connect(&full_addr.into())
        .told(|| client("connect").on(&first).args(full_addr))?;
    client_note("the queue is now full: the kernel drops further SYNs");
    poll_connect(full_addr)?;
    blocking_connect(full_addr)?;
    close(first, client);
    close(full, server);
    Ok(())
}
// ANCHOR_END: connect_timeout

/// A listener with backlog 0: its queue holds one connection, and nobody
/// accepts it.
fn full_queue() -> Result<(Socket, SocketAddr), Failure> {
    let full = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    full.bind(&any_port.into())
        .told(|| server("bind").on(&full).args(any_port))?;
    let addr = full
        .local_addr()
        .told(|| server("getsockname").on(&full))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    full.listen(0).told(|| server("listen").on(&full).args(0))?;
    Ok((full, addr))
}

// ANCHOR: poll_connect
/// A nonblocking connect bounded by `poll`: what a connect timeout is.
fn poll_connect(addr: SocketAddr) -> Result<(), Failure> {
    let late = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None)
        .told(|| {
            client("socket")
                .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
        })?;
    match late
        .connect(&addr.into())
        .traced(|| client("connect").on(&late).args(addr))
    {
        Err(err) if err.raw_os_error() != Some(libc::EINPROGRESS) => {
            return Err(Failure::new(format!("connect {addr}"), err));
        }
        _ => {}
    }
    let wait = PollTimeout::try_from(SHORT)
        .map_err(|err| Failure::new("poll", err))?;
    let mut fds = [PollFd::new(late.as_fd(), PollFlags::POLLOUT)];
    let ready = poll(&mut fds, wait).map(i64::from);
    tell(|| {
        let fds = format!("[fd {} POLLOUT]", late.as_raw_fd());
        let what = if ready == Ok(0) { "timed out" } else { "ready" };
        client("poll").args(fds).args(ms(SHORT)).returned(&ready).detail(what)
    });
    if ready.or_fail("poll")? == 0 {
        client_note(format!(
            "no handshake in {}: give up; without a bound, connect \
             waits while the SYN is resent: over two minutes",
            ms(SHORT)
        ));
    }
    close(late, client);
    Ok(())
}
// ANCHOR_END: poll_connect

// ANCHOR: blocking_connect
/// SO_SNDTIMEO bounds a blocking connect too, with a surprising errno.
fn blocking_connect(addr: SocketAddr) -> Result<(), Failure> {
    let blocking = client_socket()?;
    blocking.set_write_timeout(Some(SHORT)).told(|| {
        let option = format!("SO_SNDTIMEO, {}", ms(SHORT));
        client("setsockopt").on(&blocking).args(option)
    })?;
    match blocking
        .connect(&addr.into())
        .traced(|| client("connect").on(&blocking).args(addr))
    {
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {
            client_note(
                "a blocking connect that timed out says EINPROGRESS: \
                 the handshake goes on",
            )
        }
        other => other.or_fail(format!("connect {addr}"))?,
    }
    close(blocking, client);
    Ok(())
}
// ANCHOR_END: blocking_connect

// ANCHOR: slow_client
/// One byte every PACE: each `recv` returns well inside the read timeout,
/// so the timeout never fires, however long the request takes. The server
/// reads once the byte has arrived (`delivered`), so a client woken late
/// by a busy machine cannot make a read time out.
fn slow_client(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section(format!(
        "a read timeout does not bound a request: one byte every {}",
        ms(PACE)
    ));
    let (slow, conn) = connection(listener, addr)?;
    conn.set_read_timeout(Some(IDLE)).told(|| {
        server("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(IDLE)))
    })?;
    let mut first_byte = None;
    let mut buf = [0u8; RECV_SIZE];
    thread::scope(|scope| -> Result<(), Failure> {
        let pacer = Pacer::start(scope, &slow);
        for (i, &byte) in SLOW_REQUEST.iter().enumerate() {
            pacer.send_after(byte, if i == 0 { Duration::ZERO } else { PACE });
            pacer.delivered(&conn)?;
            let got = (&conn).read(&mut buf);
            first_byte.get_or_insert_with(Instant::now);
            got.told(|| server("recv").on(&conn).args(RECV_SIZE).data(&buf))?;
        }
        Ok(())
    })?;
    let took = first_byte.map_or(Duration::ZERO, |at| at.elapsed());
    server_note(format!(
        "{} reads, each well inside the {} timeout; longer than {} in all: {}",
        SLOW_REQUEST.len(),
        ms(IDLE),
        ms(IDLE),
        yes(took > IDLE)
    ));
    server_note(
        "no newline yet: at this pace the client holds the server for ever",
    );
    close(conn, server);
    close(slow, client);
    Ok(())
}
// ANCHOR_END: slow_client

// ANCHOR: deadline
/// A deadline per request: from its first byte, the request has DEADLINE
/// to be complete, and each `recv` waits at most the time left. The client
/// sends G, E and T, a byte every PACE, and has not finished when the
/// deadline comes; as in `slow_client`, the server reads each byte once it
/// has arrived, so only the last `recv` waits, and it ends at the deadline.
fn deadline(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section(format!(
        "a deadline does: {} from a request's first byte",
        ms(DEADLINE)
    ));
    let (slow, conn) = connection(listener, addr)?;
    thread::scope(|scope| -> Result<(), Failure> {
        let pacer = Pacer::start(scope, &slow);
        let mut due: Option<Instant> = None;
        // This client never finishes: its request has no end.
        let mut next = SLOW_REQUEST.iter();
        let mut buf = [0u8; RECV_SIZE];
        loop {
            let byte = next.next();
            if let Some(&byte) = byte {
                let pause = if due.is_none() { Duration::ZERO } else { PACE };
                pacer.send_after(byte, pause);
                pacer.delivered(&conn)?;
            }
            // Wait at most the idle timeout, and never past the deadline.
            let left = due.map(|d| d.saturating_duration_since(Instant::now()));
            let wait = left.map_or(IDLE, |left| left.min(IDLE));
            // At least SHORTEST: a zero SO_RCVTIMEO would wait for ever.
            let wait = wait.max(SHORTEST);
            conn.set_read_timeout(Some(wait))
                .told(|| server("setsockopt").on(&conn).args(shown(due)))?;
            let got = (&conn).read(&mut buf);
            due.get_or_insert_with(|| Instant::now() + DEADLINE);
            let recv = || server("recv").on(&conn).args(RECV_SIZE);
            if byte.is_none() && matches!(&got, Err(err) if is_timeout(err)) {
                let _ = got.traced(recv);
                break;
            }
            if got.told(|| recv().data(&buf))? == 0 {
                break;
            }
        }
        Ok(())
    })?;
    server_note(format!(
        "{} since the first byte and no newline: \
         close, though the client is still sending",
        ms(DEADLINE)
    ));
    close(conn, server);
    close(slow, client);
    Ok(())
}
// ANCHOR_END: deadline

/// How the deadline's `setsockopt` is shown: the time left varies.
fn shown(due: Option<Instant>) -> String {
    match due {
        Some(_) => format!("SO_RCVTIMEO, time left, at most {}", ms(IDLE)),
        None => format!("SO_RCVTIMEO, {}", ms(IDLE)),
    }
}

// ANCHOR: vanished_peer
/// A peer that vanished without a FIN: the reader cannot tell, until
/// keepalive makes the kernel ask.
fn vanished_peer(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section("a peer that vanished without a FIN");
    let (peer, conn) = connection(listener, addr)?;
    deafen(&peer, client)?;
    client_note(
        "gone: from now on this side receives nothing and sends nothing",
    );
    conn.keepalive()
        .told(|| server("getsockopt").on(&conn).args("SO_KEEPALIVE"))?;
    conn.set_read_timeout(Some(FOREVER)).told(|| {
        let option = format!("SO_RCVTIMEO, {}", ms(FOREVER));
        server("setsockopt").on(&conn).args(option)
    })?;
    let mut buf = [0u8; RECV_SIZE];
    match (&conn)
        .read(&mut buf)
        .traced(|| server("recv").on(&conn).args(RECV_SIZE))
    {
        Err(err) if is_timeout(&err) => {}
        other => drop(other.or_fail("recv")?),
    }
    TcpInfo::of(&conn)
        .told(|| server("getsockopt").on(&conn).args("TCP_INFO"))?;
    server_note(format!(
        "{} stands in for for ever: \
         a reader cannot tell a dead peer from a quiet one",
        ms(FOREVER)
    ));
    keepalive(&conn)?;
    close(conn, server);
    // Let packets in again, so that closing sends a FIN that is answered,
    // instead of leaving a connection that retries alone for minutes.
    peer.detach_filter()
        .told(|| client("setsockopt").on(&peer).args("SO_DETACH_FILTER"))?;
    close(peer, client);
    Ok(())
}
// ANCHOR_END: vanished_peer

// ANCHOR: keepalive
/// Keepalive: after KEEPIDLE seconds of silence the kernel sends an empty
/// probe; KEEPCNT probes KEEPINTVL seconds apart without an answer, and
/// the connection is dead (man 7 tcp). The shortest settings: 1, 1, 1.
fn keepalive(conn: &Socket) -> Result<(), Failure> {
    let set = || server("setsockopt").on(conn);
    conn.set_keepalive(true).told(|| set().args("SO_KEEPALIVE, 1"))?;
    setsockopt(conn, sockopt::TcpKeepIdle, &1)
        .told(|| set().args("TCP_KEEPIDLE, 1 s"))?;
    setsockopt(conn, sockopt::TcpKeepInterval, &1)
        .told(|| set().args("TCP_KEEPINTVL, 1 s"))?;
    setsockopt(conn, sockopt::TcpKeepCount, &1)
        .told(|| set().args("TCP_KEEPCNT, 1"))?;
    conn.set_read_timeout(Some(GUARD))
        .told(|| set().args(format!("SO_RCVTIMEO, {} s", GUARD.as_secs())))?;
    server_note("a guard only: keepalive should end the next recv long before");
    let mut buf = [0u8; RECV_SIZE];
    match (&*conn)
        .read(&mut buf)
        .traced(|| server("recv").on(conn).args(RECV_SIZE))
    {
        Err(err) if err.kind() == io::ErrorKind::TimedOut => {
            server_note(
                "ETIMEDOUT, TimedOut: a probe went unanswered, \
                 the kernel gave up",
            );
            server_note(
                "with the defaults that takes \
                 7200 s + 9 probes x 75 s = 7875 s: over 2 hours",
            );
        }
        other => drop(other.or_fail("recv")?),
    }
    Ok(())
}
// ANCHOR_END: keepalive

// ANCHOR: heartbeat
/// A peer whose program hangs: its kernel answers keepalive probes, so
/// only the program can ask it something, and expect an answer in time.
fn heartbeat(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section("a heartbeat: the program asks, the peer must answer");
    let hung = client_socket()?;
    hung.connect(&addr.into())
        .told(|| client("connect").on(&hung).args(addr))?;
    client_note(
        "alive, but its program is stuck: it never reads or writes again",
    );
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    let ping = b"PING\n";
    conn.send(ping).told(|| server("send").on(&conn).args(bytes(ping)))?;
    conn.set_read_timeout(Some(FOREVER)).told(|| {
        let option = format!("SO_RCVTIMEO, {}", ms(FOREVER));
        server("setsockopt").on(&conn).args(option)
    })?;
    let mut buf = [0u8; RECV_SIZE];
    match (&conn)
        .read(&mut buf)
        .traced(|| server("recv").on(&conn).args(RECV_SIZE))
    {
        Err(err) if is_timeout(&err) => {
            server_note(format!(
                "no answer in {}: declare the peer dead and close",
                ms(FOREVER)
            ));
            server_note(
                "keepalive would never fire here: \
                 the peer's kernel answers every probe",
            );
        }
        other => drop(other.or_fail("recv")?),
    }
    close(conn, server);
    close(hung, client);
    Ok(())
}
// ANCHOR_END: heartbeat

// ANCHOR: pacer
/// The slow client's thread: it sends one byte when told, after a pause.
/// Its narration comes back here. The main thread waits until the byte
/// has arrived, prints the `send`, and only then reads: so the printed
/// order is the order of the calls, and a thread woken late by a busy
/// machine changes when things happen, never what.
struct Pacer {
    orders: Sender<(u8, Duration)>,
    said: Receiver<Said>,
}

impl Pacer {
    fn start<'scope>(
        scope: &'scope thread::Scope<'scope, '_>,
        socket: &'scope Socket,
    ) -> Pacer {
        let (orders, inbox) = mpsc::channel::<(u8, Duration)>();
        let (outlet, said) = mpsc::channel();
        scope.spawn(move || {
            redirect(outlet);
            // Ends when the Pacer is dropped: no order can come any more.
            for (byte, after) in inbox {
                thread::sleep(after);
                let sent = socket.send(&[byte]);
                let _ = sent
                    .traced(|| client("send").on(socket).args(bytes(&[byte])));
            }
        });
        Pacer { orders, said }
    }

    fn send_after(&self, byte: u8, after: Duration) {
        let _ = self.orders.send((byte, after));
    }

    /// Waits until the thread has sent its byte and `to` can read it, then
    /// prints the `send`.
    fn delivered(&self, to: &Socket) -> Result<(), Failure> {
        let never = |what| Failure::new("demo", what);
        let said = (self.said.recv_timeout(GUARD))
            .map_err(|_| never("the slow client never sent"))?;
        let mut asked = [PollFd::new(to.as_fd(), PollFlags::POLLIN)];
        let guard = PollTimeout::try_from(GUARD).unwrap_or(PollTimeout::MAX);
        if poll(&mut asked, guard) != Ok(1) {
            return Err(never("the byte never arrived"));
        }
        said.show();
        Ok(())
    }
}
// ANCHOR_END: pacer

/// `getsockopt(TCP_INFO)`'s `tcpi_state`: where TCP thinks the connection
/// is. Neither socket2 nor nix wraps TCP_INFO.
struct TcpInfo {
    state: u8,
}

impl TcpInfo {
    fn of(socket: &Socket) -> io::Result<TcpInfo> {
        let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info`, which
        // is that large; all-zero bytes are a valid `tcp_info`.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: zero-initialised, then filled in by the kernel.
        let state = unsafe { info.assume_init() }.tcpi_state;
        Ok(TcpInfo { state })
    }
}

/// Shown as `= 0  (tcpi_state 1: ESTABLISHED)`.
impl Outcome for TcpInfo {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }

    fn detail(&self) -> String {
        format!("tcpi_state {}: {}", self.state, tcp_state::name(self.state))
    }
}

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: Socket, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
