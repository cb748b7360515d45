//! The server: it serves one client at a time, answers each whole frame,
//! and refuses a bad one with an error reply before it closes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use transcript::{Failure, OrFail, bytes, log};

use crate::RECV_SIZE;
use crate::frame::{FrameError, Framing, encode, next_frame};

/// After refusing a frame, how much a server reads and discards before it
/// closes (so that close sends FIN, not RST); more than this and it stops.
const DRAIN_LIMIT: usize = 64 * 1024;

// ANCHOR: server
/// Listens on `addr` and serves clients one after the other, for ever.
pub fn run(
    addr: SocketAddr,
    framing: Framing,
    max: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let limits = format!("{framing} framing, frames of at most {max} bytes");
    log!("Listening on {local} ({limits})");
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
        serve_one(&conn, peer, framing, max, timeout);
        // Dropping the stream closes it.
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// Answers frames until the client closes, sends a bad frame, goes quiet
/// or leaves its replies unread for `timeout`, or fails.
fn serve_one(
    conn: &TcpStream,
    peer: SocketAddr,
    framing: Framing,
    max: usize,
    timeout: Duration,
) {
    // A client that goes quiet, or sends and never reads its replies, is
    // dropped after `timeout`: it must not hold the server for ever.
    let limits = conn
        .set_read_timeout(Some(timeout))
        .and_then(|()| conn.set_write_timeout(Some(timeout)));
    if let Err(err) = limits {
        log!("setsockopt SO_RCVTIMEO, SO_SNDTIMEO for {peer}: {err}; closing");
        return;
    }
    // Bytes read but not yet framed: at most one unfinished frame plus
    // one recv's worth, since a frame is judged as soon as it can be.
    let mut pending = Vec::new();
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let n = match (&*conn).read(&mut buf) {
            // The end of the stream: every later recv returns 0 as well.
            Ok(0) if pending.is_empty() => {
                log!("{peer} closed the connection");
                return;
            }
            Ok(0) => {
                let cut = FrameError::Truncated;
                return refuse(conn, peer, framing, &cut, Vec::new());
            }
            Ok(n) => n,
            // Stopped with Ctrl-Z and continued, a recv with a timeout
            // fails with EINTR (man 7 signal): nothing is wrong, go on.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) => {
                log!("No data from {peer} for {timeout:?}: closing it");
                return;
            }
            Err(err) => {
                log!("recv from {peer}: {err}; closing this connection");
                return;
            }
        };
        log!("recv from {peer}: {n} bytes {}", bytes(&buf[..n]));
        pending.extend_from_slice(&buf[..n]);
        let (answer, refused) = answer(framing, &mut pending, max, peer);
        if let Some(err) = refused {
            // The good frames before it are answered first.
            return refuse(conn, peer, framing, &err, answer);
        }
        if let Err(err) = (&*conn).write_all(&answer) {
            log!("send to {peer}: {err}; closing this connection");
            return;
        }
    }
}
// ANCHOR_END: serve_one

// ANCHOR: answer
/// Takes every whole frame off `pending` and returns the replies, one
/// `echo: ` frame for each, to send in one write; and the error that
/// stopped it, if a frame was bad.
fn answer(
    framing: Framing,
    pending: &mut Vec<u8>,
    max: usize,
    peer: SocketAddr,
) -> (Vec<u8>, Option<FrameError>) {
    let mut answer = Vec::new();
    loop {
        match next_frame(framing, pending, max) {
            Ok(Some(frame)) => {
                log!("frame from {peer}: {}", bytes(frame.as_bytes()));
                let echo = format!("echo: {frame}");
                answer.extend(encode(framing, echo.as_bytes()));
            }
            Ok(None) => return (answer, None),
            Err(err) => return (answer, Some(err)),
        }
    }
}
// ANCHOR_END: answer

// ANCHOR: refuse
/// Sends `answer` (the replies owed so far) and the error line for `err`,
/// then closes the connection without losing them.
fn refuse(
    conn: &TcpStream,
    peer: SocketAddr,
    framing: Framing,
    err: &FrameError,
    mut answer: Vec<u8>,
) {
    log!("bad frame from {peer}: {err}; replying and closing");
    answer.extend(encode(framing, format!("error: {err}").as_bytes()));
    if let Err(err) = (&*conn).write_all(&answer) {
        log!("send to {peer}: {err}; closing this connection");
        return;
    }
    // FIN after the reply. Then read and discard what the client still
    // sends, up to a limit: closing with unread bytes would send RST, and
    // the client would get ECONNRESET instead of the end of the stream, or
    // on some systems lose the reply (lesson 6).
    if conn.shutdown(Shutdown::Write).is_ok() {
        let mut buf = [0u8; RECV_SIZE];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match (&*conn).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => drained += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    log!("closed the connection with {peer}");
}
// ANCHOR_END: refuse

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
