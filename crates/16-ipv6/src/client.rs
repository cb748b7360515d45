//! A client that resolves a name and tries each of its addresses in turn,
//! as std's `TcpStream::connect` does, then prompts, sends, and prints the
//! reply until an empty line.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, Told, client, log, tell};

use crate::RECV_SIZE;
use crate::server::socket_args;

// ANCHOR: client
/// Resolves `target` (`localhost:8016`, `[::1]:8016`), connects to the
/// first of its addresses that answers, then sends each line typed and
/// prints the reply.
pub fn run(target: &str) -> Result<(), Failure> {
    // getaddrinfo(3): /etc/hosts, then DNS. A name may stand for several
    // addresses, of both families, in an order the resolver chose.
    let addrs: Vec<SocketAddr> = target
        .to_socket_addrs()
        .or_fail(format!("resolve {target}"))?
        .collect();
    if target.parse::<SocketAddr>().is_err() {
        let all: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        say(&format!("{target} is {}\n", all.join(", ")))?;
    }
    let (socket, addr) = connect_any(&addrs)?;
    say(&format!("Connected to {addr}\n"))?;

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut reply = [0u8; RECV_SIZE];
    loop {
        say("Please input data: ")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            say("\n")?;
            return Ok(());
        }
        socket.send(&line).or_fail(format!("send {addr}"))?;
        // One recv for the echo of one short line, as in lesson 2.
        let n = (&socket).read(&mut reply).or_fail(format!("recv {addr}"))?;
        if n == 0 {
            say("The server closed the connection\n")?;
            return Ok(());
        }
        let reply = String::from_utf8_lossy(&reply[..n]);
        say(&format!("Reply: {}\n", reply.trim_end()))?;
    }
}
// ANCHOR_END: client

// ANCHOR: connect_any
/// Connects to the first of `addrs` that accepts, each with a socket of
/// its own family. Taking only the first address fails whenever the
/// server listens on another one: `::1` refused, `127.0.0.1` listening.
pub fn connect_any(
    addrs: &[SocketAddr],
) -> Result<(Socket, SocketAddr), Failure> {
    let mut last = Failure::new("connect", "the name has no address");
    for (i, &addr) in addrs.iter().enumerate() {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
            .told(|| client("socket").args(socket_args(addr)))?;
        match socket
            .connect(&addr.into())
            .traced(|| client("connect").on(&socket).args(addr))
        {
            Ok(()) => return Ok((socket, addr)),
            Err(err) => {
                if i + 1 < addrs.len() {
                    log!("connect {addr}: {err}; trying the next address");
                }
                last = Failure::new(format!("connect {addr}"), err);
                close(socket);
            }
        }
    }
    Err(last)
}
// ANCHOR_END: connect_any

/// Closes the client's socket: dropping it is `close(2)`.
pub fn close(socket: Socket) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| client("close").on_fd(fd).gave(&()));
}

/// Prints to the terminal, at once (the prompt has no newline). A closed
/// stdout ends the client with an error instead of a panic.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
