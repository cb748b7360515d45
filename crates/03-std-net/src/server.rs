//! Lesson 2's server with std: it serves one client at a time, echoes what
//! it receives, and survives clients that go quiet or misbehave.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use transcript::{Failure, OrFail, bytes, log};

use crate::{RECV_SIZE, STD_BACKLOG};

// ANCHOR: server
/// Listens on `addr` and serves clients one after the other, for ever.
pub fn run(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    // socket, setsockopt(SO_REUSEADDR), bind and listen(128) in one call.
    // A failed bind still ends the program with the address and the error.
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {local} (backlog {STD_BACKLOG})");

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
        serve_one(&conn, peer, timeout);
        // `conn` goes out of scope here: dropping a stream closes it.
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// Echoes until the client closes, goes quiet for `timeout`, or fails.
fn serve_one(conn: &TcpStream, peer: SocketAddr, timeout: Duration) {
    if let Err(err) = conn.set_read_timeout(Some(timeout)) {
        log!("setsockopt SO_RCVTIMEO for {peer}: {err}; closing");
        return;
    }
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let received = match (&*conn).read(&mut buf) {
            Ok(0) => {
                log!("{peer} closed the connection");
                return;
            }
            Ok(n) => &buf[..n],
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
        log!(
            "Received {} bytes from {peer}: {}",
            received.len(),
            bytes(received)
        );
        // write_all calls send again until every byte is taken (lesson 4).
        if let Err(err) = (&*conn).write_all(received) {
            log!("send to {peer}: {err}; closing this connection");
            return;
        }
    }
}
// ANCHOR_END: serve_one

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
