//! The check of exercise 10: the reader's server runs as a process of its
//! own, with a limit of 2; Python clients connect: two are served, the
//! third is told `busy`, and once one leaves a new one is served.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use socket2::{Domain, Socket, Type};

use crate::harness::{End, PATIENCE, Peers, Program, Which, announce, shown};

/// The limit the check gives `serve`.
const MAX: usize = 2;

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0, with
/// a limit of 2.
pub fn run(serve: fn(Socket, usize) -> io::Result<()>) -> io::Result<()> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    listener.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    listener.listen(8)?;
    let addr = listener.local_addr()?.as_socket();
    announce(addr.ok_or_else(|| io::Error::other("no address"))?)?;
    serve(listener, MAX)
}

/// Starts the server and connects its clients.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("10", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        served(&mut peers, &addr, "A")?;
        served(&mut peers, &addr, "B")?;
        peers.tcp("C", &addr)?;
        let (got, end) = peers.recv("C", 64, PATIENCE, b"")?;
        if got != b"busy\n" || end != End::Eof {
            let what = match (got.is_empty(), end) {
                (true, End::Quiet) => format!(
                    "got nothing, and no close, in {} ms",
                    PATIENCE.as_millis()
                ),
                (_, End::Quiet) => format!(
                    "got {}, and no close in {} ms",
                    shown(&got),
                    PATIENCE.as_millis()
                ),
                (_, End::Reset) => format!("got {}, then a reset", shown(&got)),
                _ => format!("got {}", shown(&got)),
            };
            return Err(format!(
                "with a limit of {MAX} and {MAX} clients served, the third \
                 must get \"busy\\n\" and then the end of the stream; it \
                 {what}"
            ));
        }
        // A leaves. The server's thread sees its read return 0, and only then
        // takes 1 off the counter: a client that comes in between is refused,
        // a race the server cannot avoid. So a client refused here tries
        // again, a new connection each time, for a while.
        peers.close("A")?;
        let began = Instant::now();
        for attempt in 0.. {
            let name = format!("N{attempt}");
            peers.tcp(&name, &addr)?;
            let text = b"after A left\n";
            let echo = match peers.send(&name, text) {
                Ok(()) => {
                    match peers.recv(&name, text.len(), PATIENCE, b"busy\n")? {
                        // Refused while the line was on its way: closing a
                        // socket with unread bytes sends a reset (lesson 6),
                        // the same "busy".
                        (_, End::Reset) => b"busy\n".to_vec(),
                        (echo, _) => echo,
                    }
                }
                // The reset came before the line left.
                Err(_) => b"busy\n".to_vec(),
            };
            peers.close(&name)?;
            if echo == text {
                break;
            }
            if echo != b"busy\n" || began.elapsed() > 3 * PATIENCE {
                return Err(format!(
                    "client A left, so a new client must be served: it sent \
                     \"after A left\\n\" and got {} back",
                    shown(&echo)
                ));
            }
        }
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}

/// A client that must be served: its line comes back. It stays connected.
fn served(peers: &mut Peers, addr: &str, name: &str) -> Result<(), String> {
    peers.tcp(name, addr)?;
    let text = format!("hello from {name}\n");
    peers.send(name, text.as_bytes())?;
    let (echo, _) = peers.recv(name, text.len(), PATIENCE, b"busy\n")?;
    if echo != text.as_bytes() {
        return Err(format!(
            "client {name}, one of the first {MAX}, must be served: it sent \
             {} and got {} back",
            shown(text.as_bytes()),
            shown(&echo)
        ));
    }
    Ok(())
}
