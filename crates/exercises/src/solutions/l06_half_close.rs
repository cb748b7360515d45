//! A solution of exercise 6: a client that half-closes, then reads.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

// ANCHOR: ask
/// Connects to `addr`, sends `request`, says it is done sending, and
/// returns every byte of the answer, until the server closes.
pub fn ask(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(request)?;
    // A FIN: the server's next read returns 0 bytes. Only the sending
    // half is closed; the socket still receives.
    stream.shutdown(Shutdown::Write)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer)
}
// ANCHOR_END: ask
