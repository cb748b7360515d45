//! The check of exercise 17: the reader's server runs as a process of its
//! own; a Python client sends two requests in one write, then a third on
//! the same connection that asks to close.

use std::io;
use std::net::{Ipv4Addr, TcpListener};

use crate::harness::{PATIENCE, Peers, Program, Which, announce, shown};

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0.
pub fn run(serve: fn(TcpListener) -> io::Result<()>) -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(listener.local_addr()?)?;
    serve(listener)
}

/// Starts the server, with one client.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("17", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        peers.tcp("A", &addr)?;
        let get = |path: &str, extra: &str| {
            format!("GET {path} HTTP/1.1\r\nHost: check\r\n{extra}\r\n")
        };
        let two = format!("{}{}", get("/a", ""), get("/b", ""));
        peers.send("A", two.as_bytes())?;
        let wanted = format!("{}{}", response("/a"), response("/b"));
        let (got, _) = peers.recv("A", wanted.len(), PATIENCE, b"")?;
        if got != wanted.as_bytes() {
            return Err(format!(
                "the client sent two requests in one write, GET /a and GET /b; \
                 the server must answer both, in order, on this connection, \
                 {} bytes; it sent {}{}",
                wanted.len(),
                shown(&got),
                if got == response("/a").as_bytes() {
                    ": the answer to the first only, as if the second had \
                     never come"
                } else {
                    ""
                }
            ));
        }
        let last = get("/c", "Connection: close\r\n");
        peers.send("A", last.as_bytes())?;
        let (got, _) = peers.recv("A", 1024, PATIENCE, b"")?;
        if got != response("/c").as_bytes() {
            return Err(format!(
                "then GET /c with Connection: close, on the same connection: \
                 the server must answer {} and close; it sent {}",
                shown(response("/c").as_bytes()),
                shown(&got)
            ));
        }
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}

/// The whole response to `GET path`.
fn response(path: &str) -> String {
    let body = format!("you asked for {path}\n");
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}
