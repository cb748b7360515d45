//! # Lesson 9: timeouts, and a server that survives them
//!
//! The idea: every blocking socket call can wait for ever, and each has its
//! own way to be bounded. `SO_RCVTIMEO` bounds `recv` and `accept`,
//! `SO_SNDTIMEO` bounds `send` and even a blocking `connect`; a nonblocking
//! `connect` plus `poll` bounds the handshake. A timeout is an ordinary
//! result to handle (on Linux `EAGAIN`, Rust's `WouldBlock`, not
//! `TimedOut`): the server closes that one connection and serves the next.
//! A per-read timeout does not bound a request, because every byte restarts
//! it; a deadline per request does. And a peer that vanished without a FIN
//! is never noticed by a reader unless something checks: keepalive probes
//! (hours by default) or a heartbeat of the program's own.
//!
//! What was wrong before: the article sets `settimeout(10)` and does not
//! catch the timeout, so the first quiet client kills its server. Lessons 2
//! and 3 caught it for reads only; lesson 8 showed a `connect` that waits
//! for a full accept queue. Here every wait gets a bound, and a slow, idle
//! or silent client costs the server one connection, never the server.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, SockFilter, Socket, Type};
use transcript::cli::seconds;
use transcript::{Failure, OrFail, Transcript, bytes, call, tcp_state};

/// Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// The demo's short timeout: long next to a loopback round trip (tens of
/// microseconds), short enough not to keep the reader waiting.
const SHORT: Duration = Duration::from_millis(50);

/// The slow client's pace, the server's idle timeout and its per-request
/// deadline in the demo. Every event the transcript depends on is at least
/// 100 ms away from the one it must come before or after, so a busy machine
/// cannot swap them.
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

/// The shortest timeout worth setting. SO_RCVTIMEO counts in microseconds
/// and a zero value means "no timeout": socket2 turns anything under 1 µs
/// into 0, so a deadline with a few hundred nanoseconds left would block
/// for ever. Less than this much time left counts as none.
const SHORTEST: Duration = Duration::from_millis(1);

/// The longest request line the server accepts.
const MAX_LINE: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "lesson-09",
    bin_name = "lesson-09",
    about = "Lesson 9: timeouts: read, write, connect and accept, deadlines, dead peers, and a server that survives them"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Time out every kind of call, on loopback, and print the timeline (the default)
    Demo,
    /// Echo lines back, one client at a time, closing clients that stall
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent before the server closes it
        #[arg(long, default_value_t = 10.0)]
        idle: f64,
        /// Seconds a request (one line) may take from its first byte to its newline
        #[arg(long, default_value_t = 30.0)]
        deadline: f64,
    },
    /// Send each line typed on stdin and print the reply, giving up after --timeout
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds to wait for the connection, and then for each reply
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-09", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, idle, deadline }) => server(
            addr,
            seconds("--idle", idle)?,
            seconds("--deadline", deadline)?,
        ),
        Some(Command::Client { addr, timeout }) => {
            client(addr, seconds("--timeout", timeout)?)
        }
    })
}

/// Each kind of timeout, one after the other, in one process. Only the slow
/// client runs on a thread of its own, because its point is to be slow while
/// the server waits; the main thread prints everything, in the order the
/// calls happened.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);

    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&listener),
    );
    let listener = listener.or_fail("socket")?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = listener.bind(&any_port.into());
    t.server(call("bind").on(&listener).args(any_port).returned(&bound));
    bound.or_fail(format!("bind {any_port}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));
    let listening = listener.listen(8);
    t.server(call("listen").on(&listener).args(8).returned(&listening));
    listening.or_fail("listen")?;

    // ANCHOR: read_timeout
    t.section("a read timeout is EAGAIN, and the server goes on");
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
    let set = conn.set_read_timeout(Some(SHORT));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(SHORT)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    let mut buf = [0u8; RECV_SIZE];
    let started = Instant::now();
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    // Linux reports an expired SO_RCVTIMEO as EAGAIN (man 7 socket), the
    // errno of a nonblocking socket with nothing to read: Rust's WouldBlock.
    // TimedOut (ETIMEDOUT) means something else; see the end of the demo.
    if is_timeout(&got) {
        // The kernel counts the timeout in clock ticks (1 to 10 ms), so the
        // wait can end up to a tick early: check "about", not "at least".
        t.server_note(format!(
            "no byte in {}: EAGAIN (WouldBlock), not ETIMEDOUT; waited about {}: {}",
            ms(SHORT),
            ms(SHORT),
            yes(started.elapsed() >= SHORT * 3 / 4)
        ));
        t.server_note(
            "an ordinary result: close this connection, serve the next",
        );
    } else {
        got.or_fail("recv")?;
    }
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    let got = (&quiet).read(&mut buf);
    t.client(call("recv").on(&quiet).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.client_note("0 bytes: the server hung up on us");
    let quiet_fd = quiet.as_raw_fd();
    drop(quiet);
    t.client(call("close").on_fd(quiet_fd).gave(&()));

    // The next client is served as if nothing had happened.
    let next = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&next),
    );
    let next = next.or_fail("socket")?;
    let connected = next.connect(&addr.into());
    t.client(call("connect").on(&next).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    let request = b"hello\n";
    let sent = next.send(request);
    t.client(call("send").on(&next).args(bytes(request)).returned(&sent));
    sent.or_fail("send")?;
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    let set = conn.set_read_timeout(Some(SHORT));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(SHORT)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
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
    let echoed = conn.send(&buf[..n]);
    t.server(call("send").on(&conn).args(bytes(&buf[..n])).returned(&echoed));
    echoed.or_fail("send")?;
    let got = (&next).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.client(
        call("recv")
            .on(&next)
            .args(RECV_SIZE)
            .returned(&got)
            .detail(bytes(&buf[..n])),
    );
    got.or_fail("recv")?;
    t.client_note("served: the timeout cost one connection, not the server");
    let next_fd = next.as_raw_fd();
    drop(next);
    t.client(call("close").on_fd(next_fd).gave(&()));
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    // ANCHOR_END: read_timeout

    // ANCHOR: write_timeout
    t.section("a write timeout: a short count first, then EAGAIN");
    // A fixed send buffer: the kernel does not grow it, so how much fits is
    // the same on every run.
    let writer = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&writer),
    );
    let writer = writer.or_fail("socket")?;
    let set = writer.set_send_buffer_size(BUFFER);
    t.client(
        call("setsockopt")
            .on(&writer)
            .args(format!("SO_SNDBUF, {BUFFER}"))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_SNDBUF")?;
    let connected = writer.connect(&addr.into());
    t.client(call("connect").on(&writer).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    // The server's kernel drops every packet of this connection (a BPF
    // filter, explained with the vanished peer below), so nothing the
    // client queues is ever acknowledged and nothing frees its buffer.
    // A peer that reads slowly fills it too, only less predictably.
    let drop_all = [SockFilter::new(BPF_RET_K, 0, 0, 0)];
    let attached = conn.attach_filter(&drop_all);
    t.server(
        call("setsockopt")
            .on(&conn)
            .args("SO_ATTACH_FILTER, { ret #0 }")
            .returned(&attached),
    );
    attached.or_fail("setsockopt SO_ATTACH_FILTER")?;
    t.server_note(
        "from now on this side receives nothing, so it acknowledges nothing",
    );
    let set = writer.set_write_timeout(Some(SHORT));
    t.client(
        call("setsockopt")
            .on(&writer)
            .args(format!("SO_SNDTIMEO, {}", ms(SHORT)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_SNDTIMEO")?;
    let big = vec![b'x'; BIG];
    let sent = writer.send(&big);
    t.client(
        call("send").on(&writer).args(format!("{BIG} bytes")).returned(&sent),
    );
    // A timeout after some bytes went in is not an error: send returns how
    // many it took (man 7 socket). Code that ignores the count loses data.
    if sent.as_ref().is_ok_and(|n| *n < BIG) {
        t.client_note("fewer bytes than asked: the timeout expired after the send buffer filled");
    }
    sent.or_fail("send")?;
    let again = writer.send(&big);
    t.client(
        call("send").on(&writer).args(format!("{BIG} bytes")).returned(&again),
    );
    if is_timeout(&again) {
        t.client_note(format!(
            "no room for a single byte in {}: EAGAIN, WouldBlock again",
            ms(SHORT)
        ));
    } else {
        again.or_fail("send")?;
    }
    // Let packets in again before closing, so that both ends can finish.
    let detached = conn.detach_filter();
    t.server(
        call("setsockopt")
            .on(&conn)
            .args("SO_DETACH_FILTER")
            .returned(&detached),
    );
    detached.or_fail("setsockopt SO_DETACH_FILTER")?;
    let writer_fd = writer.as_raw_fd();
    drop(writer);
    t.client(call("close").on_fd(writer_fd).gave(&()));
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    // ANCHOR_END: write_timeout

    // ANCHOR: accept_timeout
    t.section("an accept timeout");
    // SO_RCVTIMEO on a listening socket bounds accept (man 7 socket).
    let set = listener.set_read_timeout(Some(SHORT));
    t.server(
        call("setsockopt")
            .on(&listener)
            .args(format!("SO_RCVTIMEO, {}", ms(SHORT)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    let nobody = listener.accept();
    t.server(call("accept").on(&listener).returned(&nobody));
    if is_timeout(&nobody) {
        t.server_note(format!(
            "no client in {}: EAGAIN, the same as recv",
            ms(SHORT)
        ));
    } else {
        nobody.or_fail("accept")?;
    }
    // ANCHOR_END: accept_timeout

    // ANCHOR: connect_timeout
    t.section("a connect timeout, against a full accept queue (lesson 8)");
    let full = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&full),
    );
    let full = full.or_fail("socket")?;
    let bound = full.bind(&any_port.into());
    t.server(call("bind").on(&full).args(any_port).returned(&bound));
    bound.or_fail(format!("bind {any_port}"))?;
    let full_addr = full.local_addr().or_fail("getsockname")?;
    let full_addr = full_addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&full).gave(&()).detail(full_addr));
    // Backlog 0: the queue holds one connection, and nobody accepts it.
    let listening = full.listen(0);
    t.server(call("listen").on(&full).args(0).returned(&listening));
    listening.or_fail("listen")?;
    let first = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&first),
    );
    let first = first.or_fail("socket")?;
    let connected = first.connect(&full_addr.into());
    t.client(call("connect").on(&first).args(full_addr).returned(&connected));
    connected.or_fail(format!("connect {full_addr}"))?;
    t.client_note("the queue is now full: the kernel drops further SYNs");

    // A nonblocking connect bounded by poll: what a connect timeout is.
    let late = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
            .returned(&late),
    );
    let late = late.or_fail("socket")?;
    let connecting = late.connect(&full_addr.into());
    t.client(call("connect").on(&late).args(full_addr).returned(&connecting));
    match connecting {
        Err(err) if err.raw_os_error() != Some(libc::EINPROGRESS) => {
            return Err(Failure::new(format!("connect {full_addr}"), err));
        }
        _ => {}
    }
    let timeout = PollTimeout::try_from(SHORT)
        .map_err(|err| Failure::new("poll", err))?;
    let mut fds = [PollFd::new(late.as_fd(), PollFlags::POLLOUT)];
    let ready = poll(&mut fds, timeout);
    t.client(
        call("poll")
            .args(format!("[fd {} POLLOUT], {}", late.as_raw_fd(), ms(SHORT)))
            .returned(&ready.map(i64::from))
            .detail(if ready == Ok(0) { "timed out" } else { "ready" }),
    );
    if ready.or_fail("poll")? == 0 {
        t.client_note(format!(
            "no handshake in {}: give up; without a bound, connect waits for 6 resent SYNs, about 127 s",
            ms(SHORT)
        ));
    }
    let late_fd = late.as_raw_fd();
    drop(late);
    t.client(call("close").on_fd(late_fd).gave(&()));

    // SO_SNDTIMEO bounds a blocking connect too, with a surprising errno.
    let blocking = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&blocking),
    );
    let blocking = blocking.or_fail("socket")?;
    let set = blocking.set_write_timeout(Some(SHORT));
    t.client(
        call("setsockopt")
            .on(&blocking)
            .args(format!("SO_SNDTIMEO, {}", ms(SHORT)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_SNDTIMEO")?;
    let connecting = blocking.connect(&full_addr.into());
    t.client(
        call("connect").on(&blocking).args(full_addr).returned(&connecting),
    );
    if connecting
        .as_ref()
        .err()
        .is_some_and(|err| err.raw_os_error() == Some(libc::EINPROGRESS))
    {
        t.client_note("a blocking connect that timed out says EINPROGRESS: the handshake goes on");
    } else {
        connecting.or_fail(format!("connect {full_addr}"))?;
    }
    let blocking_fd = blocking.as_raw_fd();
    drop(blocking);
    t.client(call("close").on_fd(blocking_fd).gave(&()));
    let first_fd = first.as_raw_fd();
    drop(first);
    t.client(call("close").on_fd(first_fd).gave(&()));
    let full_fd = full.as_raw_fd();
    drop(full);
    t.server(call("close").on_fd(full_fd).gave(&()));
    // ANCHOR_END: connect_timeout

    // ANCHOR: slow_client
    t.section(format!(
        "a read timeout does not bound a request: one byte every {}",
        ms(PACE)
    ));
    let slow = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&slow),
    );
    let slow = slow.or_fail("socket")?;
    let connected = slow.connect(&addr.into());
    t.client(call("connect").on(&slow).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    let set = conn.set_read_timeout(Some(IDLE));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(IDLE)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    let mut first_byte = None;
    thread::scope(|scope| -> Result<(), Failure> {
        let pacer = Pacer::start(scope, &slow);
        for (i, &byte) in SLOW_REQUEST.iter().enumerate() {
            pacer.send_after(byte, if i == 0 { Duration::ZERO } else { PACE });
            let got = (&conn).read(&mut buf);
            first_byte.get_or_insert_with(Instant::now);
            pacer.narrate(&mut t, &slow);
            let n = *got.as_ref().unwrap_or(&0);
            t.server(
                call("recv")
                    .on(&conn)
                    .args(RECV_SIZE)
                    .returned(&got)
                    .detail(bytes(&buf[..n])),
            );
            got.or_fail("recv")?;
        }
        pacer.stop();
        Ok(())
    })?;
    let took = first_byte.map_or(Duration::ZERO, |at| at.elapsed());
    t.server_note(format!(
        "{} reads, each well inside the {} timeout; longer than {} in all: {}",
        SLOW_REQUEST.len(),
        ms(IDLE),
        ms(IDLE),
        yes(took > IDLE)
    ));
    t.server_note(
        "no newline yet: at this pace the client holds the server for ever",
    );
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    let slow_fd = slow.as_raw_fd();
    drop(slow);
    t.client(call("close").on_fd(slow_fd).gave(&()));
    // ANCHOR_END: slow_client

    // ANCHOR: deadline
    t.section(format!(
        "a deadline does: {} from a request's first byte",
        ms(DEADLINE)
    ));
    let slow = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&slow),
    );
    let slow = slow.or_fail("socket")?;
    let connected = slow.connect(&addr.into());
    t.client(call("connect").on(&slow).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    thread::scope(|scope| -> Result<(), Failure> {
        let pacer = Pacer::start(scope, &slow);
        let mut deadline: Option<Instant> = None;
        // This client never finishes: its request has no end.
        let mut next = SLOW_REQUEST.iter().cycle();
        loop {
            // Before each recv, wait at most the idle timeout, and never
            // past the deadline: the rest of the request's time.
            let left =
                deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let wait = left.map_or(IDLE, |left| left.min(IDLE));
            if wait < SHORTEST {
                break;
            }
            let set = conn.set_read_timeout(Some(wait));
            let shown = if deadline.is_some() {
                format!("SO_RCVTIMEO, time left, at most {}", ms(IDLE))
            } else {
                format!("SO_RCVTIMEO, {}", ms(IDLE))
            };
            t.server(call("setsockopt").on(&conn).args(shown).returned(&set));
            set.or_fail("setsockopt SO_RCVTIMEO")?;
            if let Some(&byte) = next.next() {
                let pause =
                    if deadline.is_none() { Duration::ZERO } else { PACE };
                pacer.send_after(byte, pause);
            }
            let got = (&conn).read(&mut buf);
            deadline.get_or_insert_with(|| Instant::now() + DEADLINE);
            if is_timeout(&got) {
                // The client is still going: tell it to stop before its
                // next byte, so that nothing more is in flight.
                pacer.stop_now();
                t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
                break;
            }
            pacer.narrate(&mut t, &slow);
            let n = *got.as_ref().unwrap_or(&0);
            t.server(
                call("recv")
                    .on(&conn)
                    .args(RECV_SIZE)
                    .returned(&got)
                    .detail(bytes(&buf[..n])),
            );
            if got.or_fail("recv")? == 0 {
                break;
            }
        }
        pacer.stop();
        Ok(())
    })?;
    t.server_note(format!(
        "{} since the first byte and no newline: close, though the client is still sending",
        ms(DEADLINE)
    ));
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    let slow_fd = slow.as_raw_fd();
    drop(slow);
    t.client(call("close").on_fd(slow_fd).gave(&()));
    // ANCHOR_END: deadline

    // ANCHOR: dead_peer
    t.section("a peer that vanished without a FIN");
    let peer = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&peer),
    );
    let peer = peer.or_fail("socket")?;
    let connected = peer.connect(&addr.into());
    t.client(call("connect").on(&peer).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    // A classic BPF program of one instruction, "return 0": the kernel drops
    // every packet that reaches this socket before TCP sees it, so the peer
    // answers nothing, as if its host had lost power. No privileges needed.
    let drop_all = [SockFilter::new(BPF_RET_K, 0, 0, 0)];
    let attached = peer.attach_filter(&drop_all);
    t.client(
        call("setsockopt")
            .on(&peer)
            .args("SO_ATTACH_FILTER, { ret #0 }")
            .returned(&attached),
    );
    attached.or_fail("setsockopt SO_ATTACH_FILTER")?;
    t.client_note(
        "gone: from now on this side receives nothing and sends nothing",
    );

    let keepalive = conn.keepalive();
    t.server(
        call("getsockopt").on(&conn).args("SO_KEEPALIVE").returned(&keepalive),
    );
    keepalive.or_fail("getsockopt SO_KEEPALIVE")?;
    let set = conn.set_read_timeout(Some(FOREVER));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(FOREVER)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    if !is_timeout(&got) {
        got.or_fail("recv")?;
    }
    let state = tcp_state(&conn);
    let line = call("getsockopt").on(&conn).args("TCP_INFO");
    match &state {
        Ok(state) => t.server(
            line.gave(&()).detail(format!("tcpi_state {}", state_name(*state))),
        ),
        Err(err) => t.server(line.failed(err)),
    }
    state.or_fail("getsockopt TCP_INFO")?;
    t.server_note(format!(
        "{} stands in for for ever: a reader cannot tell a dead peer from a quiet one",
        ms(FOREVER)
    ));

    // Keepalive: after KEEPIDLE seconds of silence the kernel sends an empty
    // probe; KEEPCNT probes KEEPINTVL seconds apart without an answer, and
    // the connection is dead (man 7 tcp). The shortest settings: 1, 1, 1.
    let set = conn.set_keepalive(true);
    t.server(
        call("setsockopt").on(&conn).args("SO_KEEPALIVE, 1").returned(&set),
    );
    set.or_fail("setsockopt SO_KEEPALIVE")?;
    let options = [
        ("TCP_KEEPIDLE, 1 s", setsockopt(&conn, sockopt::TcpKeepIdle, &1)),
        ("TCP_KEEPINTVL, 1 s", setsockopt(&conn, sockopt::TcpKeepInterval, &1)),
        ("TCP_KEEPCNT, 1", setsockopt(&conn, sockopt::TcpKeepCount, &1)),
    ];
    for (shown, set) in options {
        t.server(call("setsockopt").on(&conn).args(shown).returned(&set));
        set.or_fail(format!("setsockopt {shown}"))?;
    }
    let set = conn.set_read_timeout(Some(GUARD));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {} s", GUARD.as_secs()))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    t.server_note(
        "a guard only: keepalive should end the next recv long before",
    );
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    match &got {
        Err(err) if err.kind() == io::ErrorKind::TimedOut => {
            t.server_note("ETIMEDOUT, TimedOut: a probe went unanswered, the kernel gave up");
            t.server_note("with the defaults that takes 7200 s + 9 probes x 75 s = 7875 s: over 2 hours");
        }
        _ => {
            got.or_fail("recv")?;
        }
    }
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    // Let packets in again, so that closing sends a FIN that is answered,
    // instead of leaving a connection that retries alone for minutes.
    let detached = peer.detach_filter();
    t.client(
        call("setsockopt")
            .on(&peer)
            .args("SO_DETACH_FILTER")
            .returned(&detached),
    );
    detached.or_fail("setsockopt SO_DETACH_FILTER")?;
    let peer_fd = peer.as_raw_fd();
    drop(peer);
    t.client(call("close").on_fd(peer_fd).gave(&()));
    // ANCHOR_END: dead_peer

    // ANCHOR: heartbeat
    t.section("a heartbeat: the program asks, the peer must answer");
    let hung = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&hung),
    );
    let hung = hung.or_fail("socket")?;
    let connected = hung.connect(&addr.into());
    t.client(call("connect").on(&hung).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    t.client_note(
        "alive, but its program is stuck: it never reads or writes again",
    );
    let accepted = listener.accept();
    t.server(call("accept").on(&listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    let ping = b"PING\n";
    let sent = conn.send(ping);
    t.server(call("send").on(&conn).args(bytes(ping)).returned(&sent));
    sent.or_fail("send")?;
    let set = conn.set_read_timeout(Some(FOREVER));
    t.server(
        call("setsockopt")
            .on(&conn)
            .args(format!("SO_RCVTIMEO, {}", ms(FOREVER)))
            .returned(&set),
    );
    set.or_fail("setsockopt SO_RCVTIMEO")?;
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    if is_timeout(&got) {
        t.server_note(format!(
            "no answer in {}: declare the peer dead and close",
            ms(FOREVER)
        ));
        t.server_note("keepalive would never fire here: the peer's kernel answers every probe");
    } else {
        got.or_fail("recv")?;
    }
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    let hung_fd = hung.as_raw_fd();
    drop(hung);
    t.client(call("close").on_fd(hung_fd).gave(&()));
    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    // ANCHOR_END: heartbeat
    Ok(())
}

/// `SO_SNDBUF` for the write timeout (the kernel doubles it).
const BUFFER: usize = 64 * 1024;

/// More than both buffers hold.
const BIG: usize = 1024 * 1024;

/// The classic BPF opcode `BPF_RET | BPF_K`: return a constant, here the
/// number of bytes to keep, 0.
const BPF_RET_K: u16 = 0x06;

// ANCHOR: pacer
/// The slow client's thread: it sends one byte when told, after a pause,
/// and reports the result. The main thread narrates the report right after
/// its own `recv` returns, which is the order in which the calls happened.
struct Pacer {
    orders: Sender<Order>,
    reports: Receiver<(u8, io::Result<usize>)>,
}

enum Order {
    Send { byte: u8, after: Duration },
    Stop,
}

impl Pacer {
    fn start<'scope>(
        scope: &'scope thread::Scope<'scope, '_>,
        socket: &'scope Socket,
    ) -> Pacer {
        let (orders, inbox) = mpsc::channel();
        let (outbox, reports) = mpsc::channel();
        scope.spawn(move || {
            while let Ok(Order::Send { byte, after }) = inbox.recv() {
                // The pause is a wait for a Stop order: a client told to stop
                // during its pause sends nothing more.
                match inbox.recv_timeout(after) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(_) | Err(RecvTimeoutError::Disconnected) => return,
                }
                if outbox.send((byte, socket.send(&[byte]))).is_err() {
                    return;
                }
            }
        });
        Pacer { orders, reports }
    }

    fn send_after(&self, byte: u8, after: Duration) {
        let _ = self.orders.send(Order::Send { byte, after });
    }

    /// Narrates the `send` the thread made (it has made it: the server's
    /// `recv` returned its byte).
    fn narrate(&self, t: &mut Transcript, socket: &Socket) {
        if let Ok((byte, sent)) = self.reports.recv_timeout(GUARD) {
            t.client(
                call("send").on(socket).args(bytes(&[byte])).returned(&sent),
            );
        }
    }

    /// Stops the thread during its current pause, if it is in one.
    fn stop_now(&self) {
        let _ = self.orders.send(Order::Stop);
    }

    fn stop(self) {
        let _ = self.orders.send(Order::Stop);
    }
}
// ANCHOR_END: pacer

/// `getsockopt(TCP_INFO)`'s `tcpi_state`: where TCP thinks the connection
/// is. Neither socket2 nor nix wraps TCP_INFO.
fn tcp_state(socket: &Socket) -> io::Result<u8> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is
    // that large; all-zero bytes are a valid `tcp_info`.
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
    Ok(unsafe { info.assume_init() }.tcpi_state)
}

/// A TCP state number and its name: `1: ESTABLISHED`.
fn state_name(state: u8) -> String {
    format!("{state}: {}", tcp_state::name(state))
}

/// Serves one client at a time: each line is echoed back. A client that
/// stays silent longer than `idle`, or takes longer than `deadline` to send
/// one line, is closed, and the server goes on with the next.
fn server(
    addr: SocketAddr,
    idle: Duration,
    deadline: Duration,
) -> Result<(), Failure> {
    // ANCHOR: server
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    // This server closes stalled connections first, leaving them in
    // TIME_WAIT: without SO_REUSEADDR a restart could not bind (lesson 7).
    listener.set_reuse_address(true).or_fail("setsockopt SO_REUSEADDR")?;
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(16).or_fail("listen")?;
    println!(
        "Listening on {local} (idle timeout {idle:?}, request deadline {deadline:?})"
    );

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
        let why = serve_one(&conn, &peer, idle, deadline);
        // Dropping the socket closes it; the line comes after, so that a
        // reader of the log knows the descriptor is gone.
        drop(conn);
        println!("Closed {peer}: {why}");
    }
    // ANCHOR_END: server
}

/// Echoes lines until the client closes or breaks a time limit, and says why
/// it stopped.
fn serve_one(
    conn: &Socket,
    peer: &str,
    idle: Duration,
    deadline: Duration,
) -> String {
    // ANCHOR: serve_one
    // A client that never reads its replies would otherwise block send for
    // ever once the buffers are full.
    if let Err(err) = conn.set_write_timeout(Some(idle)) {
        return format!("setsockopt SO_SNDTIMEO: {err}");
    }
    let mut line = Vec::new();
    // When the request under way must be complete: set by its first byte.
    let mut due: Option<Instant> = None;
    let mut buf = [0u8; RECV_SIZE];
    loop {
        // Wait for the next bytes at most `idle`, and never past the
        // request's deadline: whichever comes first is the one that fired.
        let (wait, until_deadline) = match due {
            None => (idle, false),
            Some(due) => match due.checked_duration_since(Instant::now()) {
                Some(left) if left >= SHORTEST => (left.min(idle), left < idle),
                _ => return format!("request deadline of {deadline:?} passed"),
            },
        };
        if let Err(err) = conn.set_read_timeout(Some(wait)) {
            return format!("setsockopt SO_RCVTIMEO: {err}");
        }
        let n = match (&*conn).read(&mut buf) {
            Ok(0) if line.is_empty() => {
                return "the client closed the connection".to_string();
            }
            Ok(0) => {
                return "the client closed the connection mid-request"
                    .to_string();
            }
            Ok(n) => n,
            Err(err) if is_timeout_error(&err) && until_deadline => {
                return format!("request deadline of {deadline:?} passed");
            }
            Err(err) if is_timeout_error(&err) => {
                return format!("idle for {idle:?}");
            }
            Err(err) => return format!("recv: {err}"),
        };
        for &byte in &buf[..n] {
            due.get_or_insert_with(|| Instant::now() + deadline);
            line.push(byte);
            if byte == b'\n' {
                println!("Request from {peer}: {}", bytes(&line));
                if let Err(err) = send_all(conn, &line) {
                    return format!("send: {err}");
                }
                line.clear();
                due = None;
            } else if line.len() >= MAX_LINE {
                return format!("request longer than {MAX_LINE} bytes");
            }
        }
    }
    // ANCHOR_END: serve_one
}

/// `send` until all of `data` is gone; each call is bounded by SO_SNDTIMEO.
fn send_all(conn: &Socket, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = conn.send(data)?;
        data = &data[n..];
    }
    Ok(())
}

/// Lesson 2's client with every wait bounded: the connect, then each reply.
fn client(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    // ANCHOR: client
    // Nonblocking for the handshake only, so that poll can bound it.
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        None,
    )
    .or_fail("socket")?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {
            let poll_timeout = PollTimeout::try_from(timeout)
                .map_err(|err| Failure::new("--timeout", err))?;
            let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
            if poll(&mut fds, poll_timeout).or_fail("poll")? == 0 {
                return Err(Failure::new(
                    format!("connect {addr}"),
                    format!("no answer within {timeout:?}"),
                ));
            }
            if let Some(err) =
                socket.take_error().or_fail("getsockopt SO_ERROR")?
            {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
        }
        Err(err) => return Err(Failure::new(format!("connect {addr}"), err)),
    }
    socket.set_nonblocking(false).or_fail("fcntl O_NONBLOCK")?;
    socket.set_read_timeout(Some(timeout)).or_fail("setsockopt SO_RCVTIMEO")?;
    socket
        .set_write_timeout(Some(timeout))
        .or_fail("setsockopt SO_SNDTIMEO")?;
    println!("Connected to {addr}");

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        print!("Please input data: ");
        io::stdout().flush().or_fail("write stdout")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            println!();
            break;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        send_all(&socket, &line).or_fail(format!("send {addr}"))?;
        // The server answers a whole line: read until its newline.
        let mut reply = Vec::new();
        let mut buf = [0u8; RECV_SIZE];
        while !reply.ends_with(b"\n") {
            match (&socket).read(&mut buf) {
                Ok(0) => {
                    println!("The server closed the connection");
                    return Ok(());
                }
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(err) if is_timeout_error(&err) => {
                    return Err(Failure::new(
                        format!("recv {addr}"),
                        format!("no reply within {timeout:?}"),
                    ));
                }
                Err(err) => {
                    return Err(Failure::new(format!("recv {addr}"), err));
                }
            }
        }
        println!("Reply: {}", String::from_utf8_lossy(&reply).trim_end());
    }
    Ok(())
    // ANCHOR_END: client
}

/// A socket timeout shows up as `WouldBlock` (EAGAIN) on Linux and
/// `TimedOut` on some other systems; a portable program accepts both.
fn is_timeout_error(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

fn is_timeout<T>(result: &io::Result<T>) -> bool {
    result.as_ref().err().is_some_and(is_timeout_error)
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
