//! Exercise 11 (lesson 11): a graceful shutdown. Edit this file; `just
//! check 11` says whether it works, `just hint 11` gives a hint. As it
//! stands the server never stops.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread;

/// Serves the clients of `listener`, each on a thread of its own, echoing
/// what they send.
///
/// To do: once `stop` is true, stop accepting and close the listener
/// (new clients are refused), let the clients already connected go on
/// until they close, and then return `Ok(())`.
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    let _ = stop;
    loop {
        let (conn, _peer) = listener.accept()?;
        thread::spawn(move || echo(&conn));
    }
}

/// Echoes what the client sends until it closes or fails.
fn echo(conn: &TcpStream) {
    let mut buf = [0u8; 4096];
    loop {
        match (&*conn).read(&mut buf) {
            Ok(0) => return, // the client closed
            Ok(n) => {
                if (&*conn).write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
