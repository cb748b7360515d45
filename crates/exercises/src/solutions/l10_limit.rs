//! A solution of exercise 10: a thread per connection, at most `max` at
//! once; the next client is told `busy`.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use socket2::Socket;

// ANCHOR: serve
/// Serves the clients of `listener`, each on a thread of its own, at most
/// `max` at once; for ever.
pub fn serve(listener: Socket, max: usize) -> io::Result<()> {
    // Only the accept loop adds, so a load then an add cannot race with
    // another add; the threads only take away.
    let served = Arc::new(AtomicUsize::new(0));
    loop {
        let (conn, _peer) = listener.accept()?;
        if served.load(Ordering::SeqCst) >= max {
            // Refused politely: one line, then the close (the drop).
            let _ = (&conn).write_all(b"busy\n");
            continue;
        }
        served.fetch_add(1, Ordering::SeqCst);
        let served = Arc::clone(&served);
        thread::spawn(move || {
            serve_one(&conn);
            // Closed before the place is freed: never max + 1 at once.
            drop(conn);
            served.fetch_sub(1, Ordering::SeqCst);
        });
    }
}
// ANCHOR_END: serve

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
