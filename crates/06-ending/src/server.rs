//! The server you take away: it reads each request to its end, the client's
//! FIN, answers, and ends its side so that no reset can eat the answer.
//! One client at a time, as in lessons 2 and 3.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::SockRef;
use transcript::{Failure, OrFail, Told, log, server};

use crate::RECV_SIZE;

/// The most a request may hold. A client that sends more without
/// half-closing gets a refusal instead of keeping the server reading.
pub const MAX_REQUEST: u64 = 1 << 20;

/// The most the server reads, and throws away, after its answer while it
/// waits for the client's FIN. Past it the server closes anyway.
pub const MAX_DRAIN: u64 = 1 << 20;

// ANCHOR: server
/// Listens on `addr` and serves clients one after the other, for ever.
pub fn run(
    addr: SocketAddr,
    timeout: Duration,
    abort: bool,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {local}");
    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                log!("accept: {err}");
                continue;
            }
        };
        log!("Connected with {peer}");
        serve_one(conn, peer, timeout, abort);
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// One client, start to end; every failure ends this client only.
fn serve_one(
    conn: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    abort: bool,
) {
    if let Err(err) = conn.set_read_timeout(Some(timeout)) {
        log!("setsockopt SO_RCVTIMEO for {peer}: {err}; closing");
        return;
    }
    let reply = match read_request(&conn) {
        Ok(total) if total > MAX_REQUEST => {
            log!("{peer} sent more than {MAX_REQUEST} bytes: refusing");
            format!("request too long: more than {MAX_REQUEST} bytes\n")
        }
        Ok(total) if abort => {
            log!("{peer} finished sending ({total} bytes): aborting");
            return reset(conn, peer);
        }
        Ok(total) => {
            log!("{peer} finished sending ({total} bytes): replying");
            format!("received {total} bytes\n")
        }
        Err(err) if is_timeout(&err) => {
            log!("No end of request from {peer} for {timeout:?}: closing");
            return;
        }
        Err(err) => {
            log!("recv from {peer}: {err}; closing");
            return;
        }
    };
    if let Err(err) = (&conn).write_all(reply.as_bytes()) {
        log!("send to {peer}: {err}; closing");
        return;
    }
    match finish(&conn) {
        Ok(()) => log!("Closed {peer}: FIN sent"),
        Err(err) => log!("{peer}: {err}; closed"),
    }
    // `conn` is dropped here. After a whole drain nothing is left unread,
    // so the close sends no RST; only a drain that gave up leaves any.
}
// ANCHOR_END: serve_one

// ANCHOR: read_request
/// Reads until the client's FIN, a 0-byte read: the request ends where the
/// client's stream ends. Returns its length; stops early, with a length
/// over [`MAX_REQUEST`], when the client sends too much.
pub fn read_request(conn: &TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; RECV_SIZE];
    let mut total = 0;
    while total <= MAX_REQUEST {
        let got = (&*conn)
            .read(&mut buf)
            .traced(|| server("recv").on(conn).args(RECV_SIZE).data(&buf));
        match got {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            // Stopped (Ctrl-Z) and continued, a recv with a timeout fails
            // with EINTR (man 7 signal): nothing is wrong, read again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(total)
}
// ANCHOR_END: read_request

// ANCHOR: finish
/// Ends our side after the answer without risking it: FIN first, then read
/// what the client still sends until its FIN, so the close that follows
/// finds nothing unread and sends no RST (which could make the client's
/// kernel throw the answer away). The read timeout and [`MAX_DRAIN`] bound
/// the wait; past them the close is a reset, and we say so.
fn finish(conn: &TcpStream) -> io::Result<()> {
    conn.shutdown(Shutdown::Write)?;
    let drained = drain(conn)?;
    if drained > MAX_DRAIN {
        let why = format!("more than {MAX_DRAIN} bytes after the answer");
        return Err(io::Error::other(why));
    }
    Ok(())
}

/// Reads and drops what the peer sends until its FIN, or until more than
/// [`MAX_DRAIN`] bytes; returns how many.
pub fn drain(conn: &TcpStream) -> io::Result<u64> {
    let mut buf = [0u8; RECV_SIZE];
    let mut drained = 0;
    while drained <= MAX_DRAIN {
        let got = (&*conn)
            .read(&mut buf)
            .traced(|| server("recv").on(conn).args(RECV_SIZE));
        match got {
            Ok(0) => break,
            Ok(n) => drained += n as u64,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(drained)
}
// ANCHOR_END: finish

// ANCHOR: reset
/// Aborts the connection: with `SO_LINGER` on and 0 s, close sends RST
/// instead of FIN, and the client's read of the reply it waits for fails
/// with `ECONNRESET`. std cannot set `SO_LINGER` yet; socket2 can, on
/// std's socket.
fn reset(conn: TcpStream, peer: SocketAddr) {
    let lingering = SockRef::from(&conn).set_linger(Some(Duration::ZERO));
    if let Err(err) = lingering {
        log!("setsockopt SO_LINGER for {peer}: {err}");
    }
    drop(conn);
    log!("{peer}: aborted with RST");
}
// ANCHOR_END: reset

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
