//! A solution of exercise 2: the article's server, answering in upper case
//! and telling each client its own address.

use std::io::{self, Read, Write};

use socket2::{SockAddr, Socket};

// ANCHOR: serve
/// Serves the clients of `listener` one after the other, for ever.
pub fn serve(listener: Socket) -> io::Result<()> {
    loop {
        let (conn, peer) = listener.accept()?;
        // An error concerns this client only: the server goes on.
        if let Err(err) = serve_one(&conn, &peer) {
            eprintln!("{err}");
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: serve_one
/// Tells the client its address, then answers what it sends in upper case
/// until it closes.
fn serve_one(conn: &Socket, peer: &SockAddr) -> io::Result<()> {
    // accept returned the client's address: the same one its
    // getsockname shows at the other end.
    let address = match peer.as_socket() {
        Some(address) => address.to_string(),
        None => "unknown".to_string(),
    };
    (&*conn).write_all(format!("{address}\n").as_bytes())?;
    let mut buf = [0u8; 4096];
    loop {
        let n = (&*conn).read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the client closed
        }
        // Byte by byte: a chunk may end anywhere, even inside a word.
        buf[..n].make_ascii_uppercase();
        (&*conn).write_all(&buf[..n])?;
    }
}
// ANCHOR_END: serve_one
