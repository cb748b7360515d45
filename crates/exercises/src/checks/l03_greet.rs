//! The check of exercise 3: the reader's server runs as a process of its
//! own; a Python client sends its name in two parts, and the server must
//! wait for the whole line, answer it, and close cleanly.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use crate::harness::{End, PATIENCE, Peers, Program, Which, announce, shown};

/// How long the check waits to see that nothing comes back yet.
const QUIET: Duration = Duration::from_millis(200);

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0.
pub fn run(serve: fn(TcpListener) -> io::Result<()>) -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(listener.local_addr()?)?;
    serve(listener)
}

/// Starts the server and talks to it, twice.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("3", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        talk(&mut peers, "A", &addr, "Ad", "a\n")?;
        talk(&mut peers, "B", &addr, "Grace Hop", "per\n")?;
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}

/// One client: sends `first`, sees that no answer comes, sends `rest`,
/// and reads the answer to the end of the stream.
fn talk(
    peers: &mut Peers,
    name: &str,
    addr: &str,
    first: &str,
    rest: &str,
) -> Result<(), String> {
    peers.tcp(name, addr)?;
    peers.send(name, first.as_bytes())?;
    let (early, _) = peers.recv(name, 64, QUIET, b"")?;
    if !early.is_empty() {
        return Err(format!(
            "the client sent {} and not yet the end of its line, but the \
             server answered {}: a read returns what has arrived, which may \
             be part of a line",
            shown(first.as_bytes()),
            shown(&early)
        ));
    }
    peers.send(name, rest.as_bytes())?;
    let line = format!("{first}{rest}");
    let wanted = format!("hello, {line}");
    let (answer, end) = peers.recv(name, 256, PATIENCE, b"")?;
    if answer != wanted.as_bytes() {
        return Err(format!(
            "the server must answer {} to {} and close; it answered {}",
            shown(wanted.as_bytes()),
            shown(line.as_bytes()),
            shown(&answer)
        ));
    }
    if end != End::Eof {
        return Err(format!(
            "the server answered {}, but did not close the connection in \
             {} ms: the client waits for the end of the stream",
            shown(wanted.as_bytes()),
            PATIENCE.as_millis()
        ));
    }
    peers.close(name)
}
