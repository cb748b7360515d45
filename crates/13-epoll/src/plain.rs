//! The loop a reader writes first: every socket non-blocking, one `epoll`
//! that keeps the list, accept until `EAGAIN`, one `recv` per ready
//! connection and its echo. It serves any number of clients from one
//! thread; what it lacks is what `server.rs` adds (see the chapter).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use transcript::{Failure, OrFail, log};

/// The listener's key in the events; a connection's is its descriptor.
const LISTENER: u64 = u64::MAX;

// ANCHOR: plain
/// Echoes what every client sends, from one thread, for ever.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    // No call on this socket waits now: accept fails with EAGAIN instead.
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    log!("Listening on {}", listener.local_addr().or_fail("getsockname")?);
    // The list lives in the kernel: each socket is added to it once.
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).or_fail("epoll")?;
    let readable = |key| EpollEvent::new(EpollFlags::EPOLLIN, key);
    epoll.add(&listener, readable(LISTENER)).or_fail("epoll_ctl")?;
    let mut conns: HashMap<u64, TcpStream> = HashMap::new();
    let mut events = [EpollEvent::empty(); 64];
    loop {
        // The one call that waits; only the ready sockets come back.
        let n = epoll.wait(&mut events, EpollTimeout::NONE);
        for event in &events[..n.or_fail("epoll_wait")?] {
            let key = event.data();
            // A readable listener: accept until EAGAIN, as several clients
            // may be waiting.
            while key == LISTENER
                && let Ok((conn, peer)) = listener.accept()
            {
                conn.set_nonblocking(true).or_fail("set_nonblocking")?;
                log!("Connected with {peer}");
                let fd = conn.as_raw_fd() as u64;
                epoll.add(&conn, readable(fd)).or_fail("epoll_ctl")?;
                conns.insert(fd, conn);
            }
            // A ready connection: one recv and its echo. Drop (and so
            // close, which takes it off the list) one that is over.
            if conns.get(&key).is_some_and(|conn| !echo(conn)) {
                conns.remove(&key);
            }
        }
    }
}

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
// ANCHOR_END: plain
