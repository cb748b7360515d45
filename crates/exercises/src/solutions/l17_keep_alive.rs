//! A solution of exercise 17: HTTP/1.1 keep-alive, with a buffer that
//! keeps what follows a head for the next request.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The most a request's head may take.
pub const MAX_HEAD: usize = 8192;

/// Serves the clients of `listener` one after the other, for ever.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (conn, _peer) = listener.accept()?;
        // An error concerns this client only: the server goes on.
        if let Err(err) = serve_one(&conn) {
            eprintln!("{err}");
        }
    }
}

// ANCHOR: serve_one
/// Answers the requests of one connection, in order, however the bytes
/// are cut: a read may hold part of a head, or two heads.
fn serve_one(conn: &TcpStream) -> io::Result<()> {
    let mut inbuf: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // Answer every whole head already here before reading more.
        while let Some(end) = find(&inbuf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&inbuf[..end]).to_string();
            inbuf.drain(..end + 4); // the next request starts here
            respond(conn, &head)?;
            if wants_close(&head) {
                return Ok(());
            }
        }
        if inbuf.len() >= MAX_HEAD {
            let refusal = "HTTP/1.1 431 Request Header Fields Too Large\r\n\
                           Content-Length: 0\r\nConnection: close\r\n\r\n";
            return (&*conn).write_all(refusal.as_bytes());
        }
        let n = (&*conn).read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the client closed
        }
        inbuf.extend_from_slice(&buf[..n]);
    }
}
// ANCHOR_END: serve_one

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
