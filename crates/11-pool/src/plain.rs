//! The plain version, the one a reader would write first: a fixed number
//! of worker threads, each taking the next connection from one channel,
//! however many clients come. No limit, no time limits, no shutdown: the
//! server in `server.rs` adds them.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;

use transcript::{Failure, OrFail, log};

// ANCHOR: plain
/// Listens on `addr`; `workers` threads serve the connections, each one
/// connection at a time.
pub fn run(addr: SocketAddr, workers: usize) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {local} ({workers} workers)");
    let (queue, connections) = channel::<TcpStream>();
    // One receiver, shared: each connection goes to exactly one worker.
    let connections = Arc::new(Mutex::new(connections));
    for _ in 0..workers {
        let connections = Arc::clone(&connections);
        let work = move || loop {
            // The lock is held for this statement only (see trap 1).
            let next = connections.lock().unwrap().recv();
            match next {
                Ok(conn) => serve(conn),
                Err(_) => return,
            }
        };
        thread::Builder::new().spawn(work).or_fail("thread::spawn")?;
    }
    for conn in listener.incoming() {
        match conn {
            // Fails only if every worker has gone, which nothing here does.
            Ok(conn) => drop(queue.send(conn)),
            Err(err) => log!("accept: {err}"),
        }
    }
    Ok(())
}
// ANCHOR_END: plain

// ANCHOR: plain_serve
/// Answers each line with itself until the client closes or fails.
fn serve(conn: TcpStream) {
    let mut reader = BufReader::new(&conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if (&conn).write_all(&line).is_err() => return,
            Ok(_) => {}
        }
    }
}
// ANCHOR_END: plain_serve
