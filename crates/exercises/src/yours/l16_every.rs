//! Exercise 16 (lesson 16): a client that tries every address of a name,
//! and does not wait for ever on one. Edit this file; `just check 16` says
//! whether it works, `just hint 16` gives a hint.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connects to the first of `addrs` (a name's addresses, in the order the
/// resolver gave them) that accepts, giving each at most `each`. When none
/// does, the error of the last one.
///
/// To do: as it stands it tries each address in turn, but waits for each
/// as long as the kernel does: an address whose SYNs go unanswered holds
/// it for minutes.
pub fn connect(addrs: &[SocketAddr], each: Duration) -> io::Result<TcpStream> {
    let _ = each;
    let mut last =
        io::Error::new(io::ErrorKind::InvalidInput, "the name has no address");
    for addr in addrs {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err,
        }
    }
    Err(last)
}
