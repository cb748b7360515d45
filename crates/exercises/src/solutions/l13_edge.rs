//! A solution of exercise 13: an edge-triggered `epoll` loop that reads
//! until `EAGAIN`.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};

/// The listener's key in the events; a connection's is its descriptor.
const LISTENER: u64 = u64::MAX;

/// Echoes what every client sends, from one thread, for ever, with every
/// socket registered `EPOLLIN | EPOLLET`.
///
pub fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let edge =
        |key| EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, key);
    epoll.add(&listener, edge(LISTENER))?;
    let mut conns: HashMap<u64, TcpStream> = HashMap::new();
    let mut events = [EpollEvent::empty(); 64];
    loop {
        let n = epoll.wait(&mut events, EpollTimeout::NONE)?;
        for event in &events[..n] {
            let key = event.data();
            while key == LISTENER
                && let Ok((conn, _peer)) = listener.accept()
            {
                conn.set_nonblocking(true)?;
                let fd = conn.as_raw_fd() as u64;
                epoll.add(&conn, edge(fd))?;
                conns.insert(fd, conn);
            }
            if conns.get(&key).is_some_and(|conn| !echo(conn)) {
                conns.remove(&key);
            }
        }
    }
}

// ANCHOR: echo_all
/// Reads and echoes until the socket has nothing more (`EAGAIN`): with
/// `EPOLLET`, the next event comes only when new bytes arrive. `false`
/// when the connection is over.
fn echo(mut conn: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return false, // the client closed
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return false;
                }
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => return true,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
// ANCHOR_END: echo_all
