//! The article's client: prompt, send, print the reply, until an empty
//! line.

use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail};

use crate::RECV_SIZE;

// ANCHOR: client
/// Connects to `addr`, then sends each line typed and prints the reply.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, None).or_fail("socket")?;
    say("Socket Created\n")?;
    socket.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
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
        let sent = socket.send(&line).or_fail(format!("send {addr}"))?;
        say(&format!("Send Successfully ({sent} bytes)\n"))?;
        // Assumes the whole reply comes in one recv, like the article.
        // Lesson 5 shows why that is not guaranteed and how to fix it.
        let n = (&socket).read(&mut reply).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            say("The server closed the connection\n")?;
            break;
        }
        let reply = String::from_utf8_lossy(&reply[..n]);
        say(&format!("Reply: {}\n", reply.trim_end()))?;
    }
    // Dropping the socket closes it: the server's recv returns 0.
    Ok(())
}
// ANCHOR_END: client

/// Prints to the terminal, at once (the prompt has no newline). A closed
/// stdout ends the client with an error instead of a panic.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
