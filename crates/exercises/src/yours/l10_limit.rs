//! Exercise 10 (lesson 10): a thread per connection, and a limit on the
//! connections. Edit this file; `just check 10` says whether it works,
//! `just hint 10` gives a hint. As it stands it is lesson 10's plain
//! server: every client gets a thread, however many there are.

use std::io::{self, ErrorKind, Read, Write};
use std::thread;

use socket2::Socket;

/// Serves the clients of `listener`, each on a thread of its own, echoing
/// what they send; for ever. `listener` is already bound and listening.
///
/// To do: serve at most `max` clients at once. A client that connects
/// while `max` are being served gets the line `busy\n`, and its connection
/// is closed at once; when a client leaves, its place is free again.
/// Count the clients in a counter the threads share: an
/// `Arc<AtomicUsize>` (`std::sync::Arc`, `std::sync::atomic`) cloned into
/// each thread, which takes 1 off when its client has gone.
pub fn serve(listener: Socket, max: usize) -> io::Result<()> {
    let _ = max;
    loop {
        let (conn, _peer) = listener.accept()?;
        thread::spawn(move || serve_one(&conn));
        // The thread owns `conn` now: it is closed when the thread ends.
    }
}

/// Echoes what the client sends until it closes or fails.
fn serve_one(conn: &Socket) {
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
