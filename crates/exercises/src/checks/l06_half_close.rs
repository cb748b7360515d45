//! The check of exercise 6: a server that reads a request to its end, then
//! answers with more bytes than one read returns, then closes.
//!
//! In the check's process, in a thread: `ask` is a client function whose
//! result the check compares byte for byte with what its own server
//! answered, and whose server must see how the request ended (a 0-byte
//! read or silence), which the check's server reports directly.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use crate::harness::{PATIENCE, shown, start};

/// What the server heard before it answered.
enum Heard {
    /// The request and then its end: the server answered.
    Ended(Vec<u8>),
    /// Bytes, and no end within `PATIENCE`: the server gave up.
    NoEnd(Vec<u8>),
}

/// Runs `ask` against the server below and compares what each side got.
pub fn check(
    ask: fn(SocketAddr, &[u8]) -> io::Result<Vec<u8>>,
) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's server: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    let server = start("the check's server", move || serve(&listener));
    let request: Vec<u8> = b"how many bytes is this?\n".repeat(1000);
    let sent = request.clone();
    let asked = start("ask", move || ask(addr, &sent)).wait(3 * PATIENCE);
    match server.wait(3 * PATIENCE)? {
        Ok(Heard::NoEnd(got)) => {
            return Err(format!(
                "the server received {} bytes and then, for {} ms, neither \
                 more nor the end of the request (a 0-byte read), so it \
                 never answered: the client must say it is done sending",
                got.len(),
                PATIENCE.as_millis()
            ));
        }
        Ok(Heard::Ended(got)) if got != request => {
            return Err(format!(
                "the server received {}, not the {} bytes of the request",
                shown(&got),
                request.len()
            ));
        }
        Ok(Heard::Ended(_)) => {}
        Err(err) => return Err(failed(err)),
    }
    let answer = match asked? {
        Ok(answer) => answer,
        Err(err) => return Err(format!("ask failed: {err}")),
    };
    let wanted = answer_to(&request);
    if answer != wanted {
        return Err(format!(
            "the server answered {} bytes; ask returned {} of them, {}: \
             it must read until the server closes",
            wanted.len(),
            answer.len(),
            shown(&answer)
        ));
    }
    Ok(())
}

/// The server: one client; reads until the end of the request, answers,
/// closes. Gives up on a client that says nothing for `PATIENCE`.
fn serve(listener: &TcpListener) -> io::Result<Heard> {
    let (mut conn, _) = listener.accept()?;
    conn.set_read_timeout(Some(PATIENCE))?;
    let mut got = Vec::new();
    match conn.read_to_end(&mut got) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
            return Ok(Heard::NoEnd(got));
        }
        Err(err) => return Err(err),
    }
    conn.write_all(&answer_to(&got))?;
    Ok(Heard::Ended(got))
}

/// The answer: a line with the size of the request, then the request in
/// upper case, 24 kB in all, more than one read returns.
fn answer_to(request: &[u8]) -> Vec<u8> {
    let head = format!("{} bytes\n", request.len());
    [head.as_bytes(), &request.to_ascii_uppercase()].concat()
}
