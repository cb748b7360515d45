//! The server that bounds every wait. It echoes lines back, one client at
//! a time, like lesson 2's, and whatever a client does (stays silent,
//! sends a byte now and then, never reads its replies) costs that client
//! its connection and never stops the server.

use std::io::{self, ErrorKind, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, bytes, log};

use crate::{MAX_LINE, RECV_SIZE};

/// The shortest timeout worth setting. SO_RCVTIMEO counts in microseconds
/// and a zero value means "no timeout": socket2 turns anything under 1 µs
/// into 0, so a deadline with a few hundred nanoseconds left would block
/// for ever. Less than this much time left counts as none.
pub const SHORTEST: Duration = Duration::from_millis(1);

/// The server's two limits, from `--idle` and `--deadline`.
pub struct Limits {
    /// How long a client may stay silent, and a `send` may wait for room.
    pub idle: Duration,
    /// How long one request (a line) may take from its first byte.
    pub deadline: Duration,
}

// ANCHOR: server
/// Listens on `addr` and serves clients one after the other, for ever.
pub fn run(addr: SocketAddr, limits: Limits) -> Result<(), Failure> {
    let domain = Domain::for_address(addr);
    let listener = Socket::new(domain, Type::STREAM, None).or_fail("socket")?;
    // This server closes stalled connections first, leaving them in
    // TIME_WAIT: without SO_REUSEADDR a restart could not bind (lesson 7).
    listener.set_reuse_address(true).or_fail("setsockopt SO_REUSEADDR")?;
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    listener.listen(16).or_fail("listen")?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local.as_socket().unwrap_or(addr);
    let Limits { idle, deadline } = limits;
    // log! is println! that a closed stdout (`| head -3`) cannot stop.
    log!(
        "Listening on {local} (idle timeout {idle:?}, \
         request deadline {deadline:?})"
    );

    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                log!("accept: {err}");
                continue;
            }
        };
        let peer = peer.as_socket().map_or("unknown".into(), |p| p.to_string());
        log!("Connected with {peer}");
        let why = serve_one(&conn, &peer, &limits);
        // Dropping the socket closes it; the line comes after, so that a
        // reader of the log knows the descriptor is gone.
        drop(conn);
        log!("Closed {peer}: {why}");
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// Echoes lines until the client closes or breaks a limit, and says why
/// it stopped.
fn serve_one(conn: &Socket, peer: &str, limits: &Limits) -> String {
    // A client that never reads its replies would otherwise block send for
    // ever once the buffers are full.
    if let Err(err) = conn.set_write_timeout(Some(limits.idle)) {
        return format!("setsockopt SO_SNDTIMEO: {err}");
    }
    let mut line = Vec::new();
    // When the request under way must be complete: set by its first byte.
    let mut due: Option<Instant> = None;
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let n = match receive(conn, &mut buf, due, limits) {
            Ok(0) if line.is_empty() => {
                return "the client closed the connection".to_string();
            }
            Ok(0) => {
                return "the client closed the connection mid-request".into();
            }
            Ok(n) => n,
            Err(why) => return why,
        };
        for &byte in &buf[..n] {
            due.get_or_insert_with(|| Instant::now() + limits.deadline);
            line.push(byte);
            if byte == b'\n' {
                log!("Request from {peer}: {}", bytes(&line));
                if let Err(err) = send_all(conn, &line) {
                    return format!("send: {err}");
                }
                line.clear();
                due = None;
            } else if line.len() >= MAX_LINE {
                // A line with no end would otherwise grow without bound.
                return format!("request longer than {MAX_LINE} bytes");
            }
        }
    }
}
// ANCHOR_END: serve_one

// ANCHOR: receive
/// One `recv` that waits at most the idle limit, and never past `due`, the
/// deadline of the request under way. `Err` says why the client is done.
fn receive(
    conn: &Socket,
    buf: &mut [u8],
    due: Option<Instant>,
    limits: &Limits,
) -> Result<usize, String> {
    let passed = || format!("request deadline of {:?} passed", limits.deadline);
    loop {
        // Whichever limit comes first is the one that fires.
        let (wait, deadline_first) = match due {
            None => (limits.idle, false),
            Some(due) => {
                let left = due.saturating_duration_since(Instant::now());
                if left < SHORTEST {
                    return Err(passed());
                }
                (left.min(limits.idle), left < limits.idle)
            }
        };
        conn.set_read_timeout(Some(wait))
            .map_err(|err| format!("setsockopt SO_RCVTIMEO: {err}"))?;
        match (&*conn).read(buf) {
            Ok(n) => return Ok(n),
            // Stopped (Ctrl-Z, kill -STOP) and continued, a recv with a
            // timeout fails with EINTR (man 7 signal): nothing is wrong
            // with the client, so wait again, for the time that is left.
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) && deadline_first => {
                return Err(passed());
            }
            Err(err) if is_timeout(&err) => {
                return Err(format!("idle for {:?}", limits.idle));
            }
            Err(err) => return Err(format!("recv: {err}")),
        }
    }
}
// ANCHOR_END: receive

// ANCHOR: send_all
/// `send` until all of `data` is gone; each call is bounded by SO_SNDTIMEO,
/// and a short count after a timeout is progress, not an error.
fn send_all(conn: &Socket, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match conn.send(data) {
            Ok(n) => data = &data[n..],
            // EINTR after a stop, as for recv: send the rest again.
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
// ANCHOR_END: send_all

// ANCHOR: is_timeout
/// A socket timeout shows up as `WouldBlock` (EAGAIN) on Linux and
/// `TimedOut` on some other systems; a portable program accepts both.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
// ANCHOR_END: is_timeout
