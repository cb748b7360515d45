//! Lesson 2's client with std: prompt, send, print the reply, until an
//! empty line.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};

use transcript::{Failure, OrFail};

use crate::RECV_SIZE;

// ANCHOR: client
/// Connects to `addr`, then sends each line typed and prints the reply.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    // socket and connect in one call.
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    say(&format!("Connected to {addr}\n"))?;

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut reply = [0u8; RECV_SIZE];
    loop {
        say("Please input data: ")?;
        line.clear();
        // Bytes, not a String: the network carries bytes, in any encoding.
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            say("\n")?;
            break;
        }
        // write_all calls send until every byte is taken (lesson 4).
        stream.write_all(&line).or_fail(format!("send {addr}"))?;
        say(&format!("Send Successfully ({} bytes)\n", line.len()))?;
        // Still one read for one reply, like the article: lesson 5 fixes it.
        let n = stream.read(&mut reply).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            say("The server closed the connection\n")?;
            break;
        }
        let reply = String::from_utf8_lossy(&reply[..n]);
        say(&format!("Reply: {}\n", reply.trim_end()))?;
    }
    // Dropping the stream closes it: the server's read returns 0.
    Ok(())
}
// ANCHOR_END: client

/// Prints to the terminal, at once (the prompt has no newline). A closed
/// stdout ends the client with an error instead of a panic.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
