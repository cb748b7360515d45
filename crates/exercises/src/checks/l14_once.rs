//! The check of exercise 14: two clients; one sends a request twice, as a
//! client that retries does when a reply is lost.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use crate::harness::{PATIENCE, shown, start};

/// Runs `serve` on a socket at 127.0.0.1, port 0, and asks it.
pub fn check(serve: fn(UdpSocket) -> io::Result<()>) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = socket.local_addr().map_err(failed)?;
    // The server runs for ever; its thread is left when the check ends.
    let server = start("serve", move || serve(socket));
    let x = client(addr)?;
    let y = client(addr)?;
    ask(&x, "X", "1 5", "1 5", "the first request")?;
    ask(
        &x,
        "X",
        "1 5",
        "1 5",
        "request 1 again, as a client that retries does when the reply \
         is lost: 5 is added once",
    )?;
    ask(&x, "X", "2 3", "2 8", "request 2")?;
    ask(
        &y,
        "Y",
        "1 2",
        "1 10",
        "another client's request 1: a request's number is its client's",
    )?;
    ask(&x, "X", "2 3", "2 8", "request 2 again, late")?;
    match server.ended() {
        None => Ok(()),
        Some(Ok(Ok(()))) => {
            Err("serve returned: it must serve for ever".into())
        }
        Some(Ok(Err(err))) => Err(format!("serve failed: {err}")),
        Some(Err(panicked)) => Err(panicked),
    }
}

/// A client socket connected to the server, with a bounded wait.
fn client(server: SocketAddr) -> Result<UdpSocket, String> {
    let failed = |err: io::Error| format!("a client: {err}");
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    socket.connect(server).map_err(failed)?;
    socket.set_read_timeout(Some(PATIENCE)).map_err(failed)?;
    Ok(socket)
}

/// Sends `request`; the reply must be `wanted`.
fn ask(
    client: &UdpSocket,
    who: &str,
    request: &str,
    wanted: &str,
    what: &str,
) -> Result<(), String> {
    client
        .send(request.as_bytes())
        .map_err(|err| format!("client {who}: {err}"))?;
    let mut buf = [0u8; 512];
    let reply = match client.recv(&mut buf) {
        Ok(n) => shown(&buf[..n]),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            format!("nothing in {} ms", PATIENCE.as_millis())
        }
        Err(err) => return Err(format!("client {who}: {err}")),
    };
    if reply != shown(wanted.as_bytes()) {
        return Err(format!(
            "client {who} sent {} ({what}); the reply must be {}; it was \
             {reply}",
            shown(request.as_bytes()),
            shown(wanted.as_bytes())
        ));
    }
    Ok(())
}
