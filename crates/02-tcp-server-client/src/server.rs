//! The article's server, corrected: it serves one client at a time, echoes
//! what it receives, and survives clients that go quiet or misbehave.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, bytes, log};

use crate::RECV_SIZE;

// ANCHOR: server
/// Listens on `addr` and serves clients one after the other, for ever.
pub fn run(
    addr: SocketAddr,
    backlog: i32,
    timeout: Duration,
) -> Result<(), Failure> {
    let domain = Domain::for_address(addr);
    let listener = Socket::new(domain, Type::STREAM, None).or_fail("socket")?;
    log!("Socket Created");
    // A failed bind (port in use, address not on this machine) ends the
    // program with a message and a non-zero exit status.
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    log!("Socket Bind Complete");
    listener.listen(backlog).or_fail("listen")?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local.as_socket().unwrap_or(addr);
    log!("Listening on {local} (backlog {backlog})");

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
        serve_one(&conn, &peer, timeout);
        // `conn` goes out of scope here: dropping a socket closes it.
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// Echoes until the client closes, goes quiet for `timeout`, or fails.
fn serve_one(conn: &Socket, peer: &str, timeout: Duration) {
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
        // One send may take fewer bytes than offered; lesson 4 shows when.
        match conn.send(received) {
            Ok(n) if n == received.len() => {}
            Ok(n) => {
                log!("send to {peer}: {n} of {} bytes sent", received.len())
            }
            Err(err) => {
                log!("send to {peer}: {err}; closing this connection");
                return;
            }
        }
    }
}
// ANCHOR_END: serve_one

// ANCHOR: is_timeout
/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
// ANCHOR_END: is_timeout
