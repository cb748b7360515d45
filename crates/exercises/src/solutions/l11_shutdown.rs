//! A solution of exercise 11: a graceful shutdown, with an accept loop
//! that looks at the flag every 20 ms.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

// ANCHOR: serve
/// Serves the clients of `listener`, each on a thread of its own, until
/// `stop`; then lets the connected ones finish, and returns.
pub fn serve(listener: TcpListener, stop: Arc<AtomicBool>) -> io::Result<()> {
    // Nothing wakes a blocking accept but a connection: a nonblocking one
    // returns at once, and the loop looks at the flag between tries.
    listener.set_nonblocking(true)?;
    let mut threads = Vec::new();
    loop {
        // Read before accepting: the clients queued when the flag was set
        // are taken on the way out, not reset by the close.
        let stopping = stop.load(Ordering::SeqCst);
        match listener.accept() {
            Ok((conn, _peer)) => {
                // Linux does not pass O_NONBLOCK on to the accepted
                // socket; other systems do. echo needs it blocking.
                conn.set_nonblocking(false)?;
                threads.push(thread::spawn(move || echo(&conn)));
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                if stopping {
                    break;
                }
                // The cost of this design: a stop waits up to one period.
                thread::sleep(Duration::from_millis(20));
            }
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    drop(listener); // closed: new clients are refused from here on
    for thread in threads {
        // A thread that panicked has ended too; its client is gone.
        let _ = thread.join();
    }
    Ok(())
}
// ANCHOR_END: serve

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
