//! The plain version: the `epoll` loop a reader would write first. It
//! serves many clients from one thread, level-triggered, and answers each
//! with what it sent. What it leaves out is what `server.rs` adds.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use transcript::{Failure, OrFail, log};

/// The key of the listener's events; a connection's is its descriptor.
const LISTENER: u64 = u64::MAX;

// ANCHOR: plain
/// Echoes what each client sends, every client from one thread.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    log!("Listening on {}", listener.local_addr().or_fail("getsockname")?);
    let epoll =
        Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).or_fail("epoll_create1")?;
    let readable = |key| EpollEvent::new(EpollFlags::EPOLLIN, key);
    epoll.add(&listener, readable(LISTENER)).or_fail("epoll_ctl")?;
    let mut conns: HashMap<u64, TcpStream> = HashMap::new();
    let mut events = [EpollEvent::empty(); 64];
    loop {
        let n = epoll.wait(&mut events, EpollTimeout::NONE);
        for event in &events[..n.or_fail("epoll_wait")?] {
            if event.data() == LISTENER {
                // Accept until EAGAIN (or any error): all that wait.
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true).or_fail("set_nonblocking")?;
                    let key = stream.as_raw_fd() as u64;
                    epoll.add(&stream, readable(key)).or_fail("epoll_ctl")?;
                    conns.insert(key, stream);
                }
                continue;
            }
            let Some(mut stream) = conns.get(&event.data()) else { continue };
            let mut buf = [0u8; 4096];
            let done = match stream.read(&mut buf) {
                Ok(0) => true,
                // Level-triggered: what is left is reported again.
                Ok(n) => stream.write_all(&buf[..n]).is_err(),
                Err(err) => err.kind() != io::ErrorKind::WouldBlock,
            };
            if done {
                // Closing a socket also takes it off the interest list.
                conns.remove(&event.data());
            }
        }
    }
}
// ANCHOR_END: plain
