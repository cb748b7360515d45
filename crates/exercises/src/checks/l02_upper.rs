//! The check of exercise 2: the reader's server runs as a process of its
//! own; two Python clients in turn must each first get their own address,
//! then their bytes back in upper case.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Socket, Type};

use crate::harness::{PATIENCE, Peers, Program, Which, announce, shown};

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0.
pub fn run(serve: fn(Socket) -> io::Result<()>) -> io::Result<()> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    listener.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    listener.listen(8)?;
    let addr = listener.local_addr()?.as_socket();
    announce(addr.ok_or_else(|| io::Error::other("no address"))?)?;
    serve(listener)
}

/// Starts the server and talks to it.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("2", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        // A second client shows the address is each client's own, and that
        // the server went back to accept.
        for (name, text) in
            [("A", "hello, server\n"), ("B", "Second Client: 42\n")]
        {
            talk(&mut peers, name, &addr, text)?;
        }
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}

/// One client: reads its greeting, sends `text`, reads the answer.
fn talk(
    peers: &mut Peers,
    name: &str,
    addr: &str,
    text: &str,
) -> Result<(), String> {
    let mine = peers.tcp(name, addr)?;
    let wanted = format!("{mine}\n");
    let (line, _) = peers.recv(name, 64, PATIENCE, b"\n")?;
    if line != wanted.as_bytes() {
        let sent = if line.is_empty() {
            format!("it sent nothing in {} ms", PATIENCE.as_millis())
        } else {
            format!("it sent {}", shown(&line))
        };
        return Err(format!(
            "the server must first send the client its address, {}; {sent}",
            shown(wanted.as_bytes()),
        ));
    }
    peers.send(name, text.as_bytes())?;
    let upper = text.to_ascii_uppercase();
    let (answer, _) = peers.recv(name, upper.len(), PATIENCE, b"")?;
    if answer != upper.as_bytes() {
        return Err(format!(
            "the server must answer {} to {}; it answered {}",
            shown(upper.as_bytes()),
            shown(text.as_bytes()),
            shown(&answer)
        ));
    }
    peers.close(name)
}
