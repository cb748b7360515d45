//! The check of exercise 12: the reader's server runs as a process of its
//! own; three Python clients: one that says nothing must still hear the
//! others, and nobody hears their own line.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use crate::harness::{PATIENCE, Peers, Program, Which, announce, shown};

/// How long the check waits to see that nothing comes.
const QUIET: Duration = Duration::from_millis(100);

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0.
pub fn run(serve: fn(TcpListener) -> io::Result<()>) -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(listener.local_addr()?)?;
    serve(listener)
}

/// Starts the server, with three clients.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("12", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        // A connected first, so the server has it by the time it reads B's
        // line: a client is only sure to hear lines read after it was
        // accepted, and C's own line being heard says it was.
        peers.tcp("A", &addr)?;
        peers.tcp("B", &addr)?;
        peers.send("B", b"hello from B\n")?;
        hears(&mut peers, "A", "B", "hello from B\n")?;
        peers.tcp("C", &addr)?;
        peers.send("C", b"C joins\n")?;
        hears(&mut peers, "A", "C", "C joins\n")?;
        hears(&mut peers, "B", "C", "C joins\n")?;
        peers.send("A", b"A here\n")?;
        hears(&mut peers, "B", "A", "A here\n")?;
        hears(&mut peers, "C", "A", "A here\n")?;
        let (own, _) = peers.recv("A", 64, QUIET, b"")?;
        if !own.is_empty() {
            return Err(format!(
                "client A must not get its own line back; it got {}",
                shown(&own)
            ));
        }
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}

/// `who` must receive `line`, which `from` sent.
fn hears(
    peers: &mut Peers,
    who: &str,
    from: &str,
    line: &str,
) -> Result<(), String> {
    let (got, _) = peers.recv(who, line.len(), PATIENCE, b"")?;
    if got != line.as_bytes() {
        let what = if got.is_empty() {
            format!(
                "nothing in {} ms: a server that waits for one client \
                 cannot hear the others",
                PATIENCE.as_millis()
            )
        } else {
            shown(&got)
        };
        return Err(format!(
            "client {from} sent {}; client {who}, connected too, must \
             receive it; it received {what}",
            shown(line.as_bytes())
        ));
    }
    Ok(())
}
