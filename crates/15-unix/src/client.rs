//! The client: connect to the socket file, then send each line typed and
//! print the reply, until an empty line.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};
use transcript::{Failure, OrFail};

use crate::MAX_LINE;

// ANCHOR: client
/// Connects to the server at `path`, then sends each line typed and
/// prints the line that comes back.
pub fn run(path: &Path) -> Result<(), Failure> {
    let shown = path.display();
    let addr = SockAddr::unix(path).or_fail(format!("{shown}"))?;
    let socket =
        Socket::new(Domain::UNIX, Type::STREAM, None).or_fail("socket")?;
    // ENOENT: no file there; ECONNREFUSED: a file nobody listens on;
    // EACCES: its mode does not let us write to it.
    socket.connect(&addr).or_fail(format!("connect {shown}"))?;
    say(&format!("Connected to {shown}\n"))?;

    // The reply is read a line at a time: it may come in pieces.
    let mut replies = BufReader::new(&socket);
    let mut stdin = io::stdin().lock();
    let (mut line, mut reply) = (Vec::new(), Vec::new());
    loop {
        say("Please input data: ")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            say("\n")?;
            break;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        (&socket).write_all(&line).or_fail(format!("send {shown}"))?;
        reply.clear();
        let limit = (MAX_LINE + 1) as u64;
        let n = (&mut replies)
            .take(limit)
            .read_until(b'\n', &mut reply)
            .or_fail(format!("recv {shown}"))?;
        if n == 0 {
            say("The server closed the connection\n")?;
            break;
        }
        let reply = String::from_utf8_lossy(&reply);
        say(&format!("Reply: {}\n", reply.trim_end()))?;
    }
    Ok(())
}
// ANCHOR_END: client

/// Prints to the terminal at once (the prompt has no newline).
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
