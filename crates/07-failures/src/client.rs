//! A client whose every failure names the call, the address and the OS
//! error: `connect 127.0.0.1:8003: Connection refused (os error 111)`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail};

use crate::RECV_SIZE;

// ANCHOR: client
/// Connects, prints both ends of the connection, and prints the reply as
/// it comes, until the server closes.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, None).or_fail("socket")?;
    // ECONNREFUSED (nobody listens), ETIMEDOUT, EADDRNOTAVAIL: one line and
    // exit status 1, naming the call and the address.
    socket.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
    let local = socket.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    say(format!("Connected: {local} -> {addr}\nReply: ").as_bytes())?;
    // Printed as it arrives: a reply of any length takes one buffer.
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let n = (&socket).read(&mut buf).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            return Ok(());
        }
        say(&buf[..n])?;
    }
}
// ANCHOR_END: client

/// Writes to the terminal, at once. A closed stdout ends the client with an
/// error instead of a panic.
fn say(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).or_fail("stdout")
}
