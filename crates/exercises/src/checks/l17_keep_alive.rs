//! The check of exercise 17: two requests in one write, then a third on
//! the same connection that asks to close.

use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};

use crate::harness::{PATIENCE, read_until, shown, start};

/// Runs `serve` on a listener at 127.0.0.1, port 0, with one client.
pub fn check(serve: fn(TcpListener) -> io::Result<()>) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    // The server runs for ever; its thread is left when the check ends.
    let server = start("serve", move || serve(listener));
    let client = TcpStream::connect(addr).map_err(failed)?;
    let get = |path: &str, extra: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: check\r\n{extra}\r\n")
    };
    let two = format!("{}{}", get("/a", ""), get("/b", ""));
    (&client).write_all(two.as_bytes()).map_err(failed)?;
    let wanted = format!("{}{}", response("/a"), response("/b"));
    let got = read_until(&client, wanted.len(), PATIENCE, |_| false)
        .map_err(failed)?;
    if got != wanted.as_bytes() {
        return Err(format!(
            "the client sent two requests in one write, GET /a and GET /b; \
             the server must answer both, in order, on this connection, \
             {} bytes; it sent {}{}",
            wanted.len(),
            shown(&got),
            if got == response("/a").as_bytes() {
                ": the answer to the first only, as if the second had never \
                 come"
            } else {
                ""
            }
        ));
    }
    let last = get("/c", "Connection: close\r\n");
    (&client).write_all(last.as_bytes()).map_err(failed)?;
    let got = read_until(&client, 1024, PATIENCE, |_| false).map_err(failed)?;
    if got != response("/c").as_bytes() {
        return Err(format!(
            "then GET /c with Connection: close, on the same connection: the \
             server must answer {} and close; it sent {}",
            shown(response("/c").as_bytes()),
            shown(&got)
        ));
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

/// The whole response to `GET path`.
fn response(path: &str) -> String {
    let body = format!("you asked for {path}\n");
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}
