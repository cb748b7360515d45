//! The client: lesson 3's, sending each line as a frame and reading until
//! the reply frame is whole.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};

use transcript::{Failure, OrFail};

use crate::frame::{Framing, encode, next_frame};
use crate::{MAX_REPLY, RECV_SIZE};

// ANCHOR: client
/// Connects to `addr`, then sends each line typed as one frame and prints
/// the reply frame, however many recvs it takes to arrive.
pub fn run(addr: SocketAddr, framing: Framing) -> Result<(), Failure> {
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    say(&format!("Connected to {addr} ({framing} framing)\n"))?;

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut pending = Vec::new();
    let mut buf = [0u8; RECV_SIZE];
    'lines: loop {
        say("Please input data: ")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if read == 0 || line.is_empty() {
            say("\n")?;
            break;
        }
        let frame = encode(framing, &line);
        stream.write_all(&frame).or_fail(format!("send {addr}"))?;
        say(&format!("Send Successfully ({} bytes)\n", frame.len()))?;
        // Read until one whole reply is in: one recv, or several.
        let reply = loop {
            let framed = next_frame(framing, &mut pending, MAX_REPLY);
            if let Some(reply) = framed.map_err(|e| Failure::new("reply", e))? {
                break reply;
            }
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    continue;
                }
                Err(err) => {
                    return Err(Failure::new(format!("recv {addr}"), err));
                }
            };
            if n == 0 {
                say("The server closed the connection\n")?;
                break 'lines;
            }
            pending.extend_from_slice(&buf[..n]);
        };
        say(&format!("Reply: {reply}\n"))?;
    }
    // Dropping the stream closes it: the server's recv returns 0.
    Ok(())
}
// ANCHOR_END: client

/// Prints to the terminal, at once (the prompt has no newline). A closed
/// stdout ends the client with an error instead of a panic.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
