//! The client: it reads everything the server sends until the server
//! closes, and checks every byte.

use std::fmt::Display;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use transcript::{Failure, OrFail};

// ANCHOR: client
/// Connects to `addr`, waits `pause` if asked, then reads until the server
/// closes, checking that the bytes come in the order they were sent.
pub fn run(addr: SocketAddr, pause: Duration) -> Result<(), Failure> {
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    say(format_args!("Connected to {addr}"))?;
    if !pause.is_zero() {
        say(format_args!(
            "Not reading for {pause:?}: the server's sends go short meanwhile"
        ))?;
        thread::sleep(pause);
    }
    let mut buf = vec![0u8; 64 * 1024];
    let (mut received, mut reads, mut in_order) = (0, 0, true);
    loop {
        let n = match stream.read(&mut buf) {
            // 0 bytes: the server closed; everything it sent is here.
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(Failure::new(format!("recv {addr}"), err)),
        };
        reads += 1;
        // The server sends the pattern 0, 1, ... 250, 0, 1, ...
        in_order &= buf[..n]
            .iter()
            .enumerate()
            .all(|(i, &b)| b == ((received + i) % 251) as u8);
        received += n;
    }
    say(format_args!("Received {received} bytes in {reads} reads"))?;
    if !in_order {
        return Err(Failure::new("recv", "bytes arrived out of order"));
    }
    say("Every byte arrived in the order sent")
}
// ANCHOR_END: client

/// Prints a line. A closed stdout ends the client with an error instead
/// of a panic.
fn say(line: impl Display) -> Result<(), Failure> {
    writeln!(io::stdout(), "{line}").or_fail("stdout")
}
