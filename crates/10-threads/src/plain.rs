//! The plain version, the one a reader would write first: lesson 2's
//! server, where the accept loop hands each connection to a new thread
//! instead of serving it itself. Everything else is lesson 2's.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, log};

use crate::RECV_SIZE;

// ANCHOR: server
/// Listens on `addr` and serves each client on a thread of its own.
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
        thread::spawn(move || serve_one(&conn, &peer, timeout));
        // The thread owns `conn` now: it is closed when the thread ends.
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// Echoes what the client sends until it closes, goes quiet or fails.
fn serve_one(conn: &Socket, peer: &str, timeout: Duration) {
    let mut buf = [0u8; RECV_SIZE];
    let echoed = conn.set_read_timeout(Some(timeout)).and_then(|()| {
        loop {
            match (&*conn).read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => (&*conn).write_all(&buf[..n])?,
                // A stop (Ctrl-Z) and continue: not the client's doing.
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    });
    match echoed {
        Ok(()) => log!("{peer} closed the connection"),
        Err(err) => log!("{peer}: {err}; closing this connection"),
    }
}
// ANCHOR_END: serve_one
