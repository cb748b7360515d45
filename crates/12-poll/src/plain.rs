//! The loop a reader writes first: every socket non-blocking, one `poll`
//! per turn, accept until `EAGAIN`, one `recv` per ready connection and
//! its echo. It serves any number of clients from one thread; what it
//! lacks is what `server.rs` adds (see the chapter).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use transcript::{Failure, OrFail, log};

// ANCHOR: plain
/// Echoes what every client sends, from one thread, for ever.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    // No call on this socket waits now: accept fails with EAGAIN instead.
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    log!("Listening on {}", listener.local_addr().or_fail("getsockname")?);
    let mut conns: Vec<TcpStream> = Vec::new();
    loop {
        // The list: the listener first, then every connection.
        let mut watched =
            vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        for conn in &conns {
            watched.push(PollFd::new(conn.as_fd(), PollFlags::POLLIN));
        }
        // The one call that waits, until one of them is readable.
        poll(&mut watched, PollTimeout::NONE).or_fail("poll")?;
        let ready: Vec<bool> =
            watched.iter().map(|p| p.any() == Some(true)).collect();
        drop(watched);
        // Each ready connection: one recv and its echo. Drop (and so
        // close) those that are over.
        let mut i = 0;
        conns.retain(|conn| {
            i += 1;
            !ready[i] || echo(conn)
        });
        // A readable listener: accept until EAGAIN, as several clients
        // may be waiting.
        while ready[0]
            && let Ok((conn, peer)) = listener.accept()
        {
            conn.set_nonblocking(true).or_fail("set_nonblocking")?;
            log!("Connected with {peer}");
            conns.push(conn);
        }
    }
}
// ANCHOR_END: plain

// ANCHOR: echo
/// One `recv` and its echo; `false` when the connection is over.
fn echo(mut conn: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    match conn.read(&mut buf) {
        // The client closed its side: close ours (by dropping it).
        Ok(0) => false,
        // A write that would block fails, and the client is dropped.
        Ok(n) => conn.write_all(&buf[..n]).is_ok(),
        // Nothing after all is no reason to drop it; any error is.
        Err(err) => err.kind() == ErrorKind::WouldBlock,
    }
}
// ANCHOR_END: echo
