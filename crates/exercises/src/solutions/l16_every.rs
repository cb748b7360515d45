//! A solution of exercise 16: a client that tries every address of a name,
//! each for a bounded time.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

// ANCHOR: connect
/// Connects to the first of `addrs` that accepts, giving each at most
/// `each`. When none does, the error of the last one.
pub fn connect(addrs: &[SocketAddr], each: Duration) -> io::Result<TcpStream> {
    let mut last =
        io::Error::new(io::ErrorKind::InvalidInput, "the name has no address");
    for addr in addrs {
        // A nonblocking connect and a poll for at most `each`: an address
        // that never answers costs `each`, not the kernel's two minutes.
        match TcpStream::connect_timeout(addr, each) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err,
        }
    }
    Err(last)
}
// ANCHOR_END: connect
