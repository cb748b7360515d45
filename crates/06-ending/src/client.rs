//! A client that half-closes: it sends its whole request, says "that is all"
//! with `shutdown(Write)`, and still reads the answer.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use transcript::{Failure, OrFail};

use crate::RECV_SIZE;

// ANCHOR: client
/// Sends all of stdin, half-closes, and prints the reply until the server
/// closes. A reset or any other failure exits with one line and status 1.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    // All of stdin first: the server gives up on a client that stays
    // silent too long, and a person typing the request may pause.
    let mut request = Vec::new();
    io::stdin().read_to_end(&mut request).or_fail("read stdin")?;
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    say(format!("Connected to {addr}\n").as_bytes())?;
    stream.write_all(&request).or_fail(format!("send {addr}"))?;
    // Without this the server, reading to end of stream, would wait forever.
    stream.shutdown(Shutdown::Write).or_fail(format!("shutdown {addr}"))?;
    let sent = request.len();
    say(format!("Sent {sent} bytes, then shutdown(Write)\n").as_bytes())?;

    // The reply goes out as it comes: a reply of any length takes no more
    // memory than one buffer.
    say(b"Reply: ")?;
    let mut buf = [0u8; RECV_SIZE];
    loop {
        // The end of the reply is the server's FIN: a 0-byte read. A reset
        // instead is an error: the reply may be incomplete.
        let n = stream.read(&mut buf).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            break;
        }
        say(&buf[..n])?;
    }
    say(b"The server closed the connection\n")
}
// ANCHOR_END: client

/// Writes to the terminal, at once. A closed stdout ends the client with an
/// error instead of a panic.
fn say(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).or_fail("stdout")
}
