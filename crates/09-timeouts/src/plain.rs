//! The server a reader writes first: lesson 2's loop, one client at a
//! time, with a read timeout that drops a client who goes quiet. The
//! chapter shows it before the hardened server, and says what it leaves
//! open.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, log};

use crate::RECV_SIZE;

// ANCHOR: plain
/// Echoes each client until it closes, fails, or stays quiet `timeout`.
pub fn run(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    let domain = Domain::for_address(addr);
    let listener = Socket::new(domain, Type::STREAM, None).or_fail("socket")?;
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    listener.listen(16).or_fail("listen")?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {}", local.as_socket().unwrap_or(addr));
    loop {
        // A failed accept concerns one connection: try the next.
        let Ok((conn, _peer)) = listener.accept() else { continue };
        // From now on a recv that waits longer than this fails (EAGAIN).
        if conn.set_read_timeout(Some(timeout)).is_err() {
            continue;
        }
        let mut buf = [0u8; RECV_SIZE];
        // 0 bytes (the client closed) or any error, the timeout included,
        // ends this client, not the server.
        while let Ok(n @ 1..) = (&conn).read(&mut buf) {
            if (&conn).write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // `conn` is dropped here: close, and on to the next client.
    }
}
// ANCHOR_END: plain
