//! The check of exercise 14: the reader's server runs as a process of its
//! own; two Python clients, one of which sends a request twice, as a
//! client that retries does when a reply is lost.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};

use crate::harness::{End, PATIENCE, Peers, Program, Which, announce, shown};

/// The reader's program: `serve` on a socket at 127.0.0.1, port 0.
pub fn run(serve: fn(UdpSocket) -> io::Result<()>) -> io::Result<()> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(socket.local_addr()?)?;
    serve(socket)
}

/// Starts the server and asks it.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("14", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        for name in ["X", "Y"] {
            peers
                .connect(name, &addr, true)?
                .map_err(|why| format!("client {name}: {why}"))?;
        }
        let mut ask = |who: &str, request: &str, wanted: &str, what: &str| {
            peers.send(who, request.as_bytes())?;
            let reply = match peers.recv(who, 512, PATIENCE, b"")? {
                (_, End::Quiet) => {
                    format!("nothing in {} ms", PATIENCE.as_millis())
                }
                (reply, _) => shown(&reply),
            };
            if reply != shown(wanted.as_bytes()) {
                return Err(format!(
                    "client {who} sent {} ({what}); the reply must be {}; it \
                     was {reply}",
                    shown(request.as_bytes()),
                    shown(wanted.as_bytes())
                ));
            }
            Ok::<(), String>(())
        };
        ask("X", "1 5", "1 5", "the first request")?;
        ask(
            "X",
            "1 5",
            "1 5",
            "request 1 again, as a client that retries does when the reply is \
             lost: 5 is added once",
        )?;
        ask("X", "2 3", "2 8", "request 2")?;
        ask(
            "Y",
            "1 2",
            "1 10",
            "another client's request 1: a request's number is its client's",
        )?;
        ask("X", "2 3", "2 8", "request 2 again, late")?;
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}
