//! Exercise 17 (lesson 17): HTTP/1.1 keep-alive, pipelined requests
//! included. Edit this file; `just check 17` says whether it works, `just
//! hint 17` gives a hint.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The most a request's head may take.
pub const MAX_HEAD: usize = 8192;

/// Serves the clients of `listener` one after the other, for ever. Every
/// request (`GET /a HTTP/1.1`, headers, an empty line; no body) gets
/// `200 OK` and the body `you asked for /a\n`. The connection stays open
/// for the next request until the client closes it or sends
/// `Connection: close`.
///
/// To do: as it stands each read is taken for one request, and what
/// follows the first head in it is lost: a client that sends two requests
/// at once (pipelining) gets one answer.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (conn, _peer) = listener.accept()?;
        // An error concerns this client only: the server goes on.
        if let Err(err) = serve_one(&conn) {
            eprintln!("{err}");
        }
    }
}

/// Answers the requests of one connection.
fn serve_one(conn: &TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    loop {
        let n = (&*conn).read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the client closed
        }
        let Some(end) = find(&buf[..n], b"\r\n\r\n") else {
            continue; // not a whole head: given up
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        respond(conn, &head)?;
        if wants_close(&head) {
            return Ok(());
        }
    }
}

/// Answers the request whose head is `head` (without its empty line).
pub fn respond(conn: &TcpStream, head: &str) -> io::Result<()> {
    let path = head.split(' ').nth(1).unwrap_or("/");
    let body = format!("you asked for {path}\n");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    (&*conn).write_all(response.as_bytes())
}

/// Whether the head asks to close after this response.
pub fn wants_close(head: &str) -> bool {
    head.lines().any(|line| line.eq_ignore_ascii_case("connection: close"))
}

/// Where `needle` starts in `bytes`.
pub fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes.windows(needle.len()).position(|w| w == needle)
}
