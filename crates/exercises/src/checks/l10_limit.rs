//! The check of exercise 10: a limit of 2; two clients are served, the
//! third is told `busy`, and once one leaves a new one is served.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Instant;

use socket2::{Domain, Socket, Type};

use crate::harness::{PATIENCE, read_until, shown, start};

/// The limit the check gives `serve`.
const MAX: usize = 2;

/// Runs `serve` on a listener at 127.0.0.1, port 0, with a limit of 2.
pub fn check(serve: fn(Socket, usize) -> io::Result<()>) -> Result<(), String> {
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
    let server = start("serve", move || serve(listener, MAX));
    let a = served(addr, "client A")?;
    let _b = served(addr, "client B")?;
    let third = connect(addr)?;
    let got = read_until(&third, 64, PATIENCE, |_| false)
        .map_err(|err| format!("the third client: {err}"))?;
    if got != b"busy\n" {
        let what = if got.is_empty() {
            format!("got nothing, and no close, in {} ms", PATIENCE.as_millis())
        } else {
            format!("got {}", shown(&got))
        };
        return Err(format!(
            "with a limit of {MAX} and {MAX} clients served, the third must \
             get \"busy\\n\" and then the end of the stream; it {what}"
        ));
    }
    // A leaves; the server notices when its read returns 0, a moment
    // later: a client refused in that moment tries again.
    drop(a);
    let began = Instant::now();
    loop {
        let next = connect(addr)?;
        let echo = match talk(&next, "after A left\n") {
            Ok(echo) => echo,
            // Refused while the line was on its way: closing a socket with
            // unread bytes sends a reset (lesson 6), the same "busy".
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                b"busy\n".to_vec()
            }
            Err(err) => return Err(format!("a client: {err}")),
        };
        if echo == b"after A left\n" {
            break;
        }
        if echo != b"busy\n" || began.elapsed() > PATIENCE {
            return Err(format!(
                "client A left, so a new client must be served: it sent \
                 \"after A left\\n\" and got {} back",
                shown(&echo)
            ));
        }
    }
    match server.ended() {
        None => Ok(()),
        Some(Ok(Ok(()))) => {
            Err("serve returned: it must serve for ever".into())
        }
        Some(Ok(Err(err))) => Err(format!("serve failed: {err}")),
        Some(Err(panicked)) => Err(panicked),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect(addr).map_err(|err| format!("a client: {err}"))
}

/// Sends `text` and returns what came back: the echo, or `busy\n`.
fn talk(client: &TcpStream, text: &str) -> io::Result<Vec<u8>> {
    (&*client).write_all(text.as_bytes())?;
    read_until(client, text.len(), PATIENCE, |got| got == b"busy\n")
}

/// A client that must be served: its line comes back.
fn served(addr: SocketAddr, who: &str) -> Result<TcpStream, String> {
    let client = connect(addr)?;
    let text = format!("hello from {who}\n");
    let echo = talk(&client, &text).map_err(|err| format!("{who}: {err}"))?;
    if echo != text.as_bytes() {
        return Err(format!(
            "{who}, one of the first {MAX}, must be served: it sent {} and \
             got {} back",
            shown(text.as_bytes()),
            shown(&echo)
        ));
    }
    Ok(client)
}
