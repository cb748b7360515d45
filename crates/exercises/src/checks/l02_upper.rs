//! The check of exercise 2: two clients in turn; each must first get its
//! own address, then its bytes back in upper case.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};

use socket2::{Domain, Socket, Type};

use crate::harness::{PATIENCE, read_until, shown, start};

/// Runs `serve` on a listener at 127.0.0.1, port 0, and talks to it.
pub fn check(serve: fn(Socket) -> io::Result<()>) -> Result<(), String> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .and_then(|s| {
            s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
            s.listen(8)?;
            Ok(s)
        })
        .map_err(|err| format!("the check could not listen: {err}"))?;
    let addr = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .ok_or("the check's listener has no address")?;
    // The server runs for ever; its thread is left when the check ends.
    let server = start("serve", move || serve(listener));
    // A second client shows the address is each client's own, and that
    // the server went back to accept.
    for text in ["hello, server\n", "Second Client: 42\n"] {
        talk(addr, text)?;
    }
    // A server that returned (or panicked) would not serve the next one.
    match server.ended() {
        None => Ok(()),
        Some(Ok(Ok(()))) => {
            Err("serve returned: it must serve for ever".into())
        }
        Some(Ok(Err(err))) => Err(format!("serve failed: {err}")),
        Some(Err(panicked)) => Err(panicked),
    }
}

/// One client: reads its greeting, sends `text`, reads the answer.
fn talk(addr: SocketAddr, text: &str) -> Result<(), String> {
    let failed = |err: io::Error| format!("a client of the server: {err}");
    let mut client = TcpStream::connect(addr).map_err(failed)?;
    let mine = client.local_addr().map_err(failed)?;
    let wanted = format!("{mine}\n");
    let line = read_until(&client, 64, PATIENCE, |got| got.contains(&b'\n'))
        .map_err(failed)?;
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
    client.write_all(text.as_bytes()).map_err(failed)?;
    let upper = text.to_ascii_uppercase();
    let answer = read_until(&client, upper.len(), PATIENCE, |_| false)
        .map_err(failed)?;
    if answer != upper.as_bytes() {
        return Err(format!(
            "the server must answer {} to {}; it answered {}",
            shown(upper.as_bytes()),
            shown(text.as_bytes()),
            shown(&answer)
        ));
    }
    Ok(())
}
