//! The check of exercise 8: a listener that does not accept, three
//! clients connected, then one accepted; and a port nothing listens on.

use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, start};

type Waiting = fn(u16) -> io::Result<Option<u32>>;

/// Compares what `waiting` says with the queue the check made.
pub fn check(waiting: Waiting) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    expect(waiting, port, Some(0), "a listener nobody has connected to")?;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(TcpStream::connect(("127.0.0.1", port)).map_err(failed)?);
    }
    expect(waiting, port, Some(3), "three clients connected, none accepted")?;
    let (_first, _) = listener.accept().map_err(failed)?;
    expect(waiting, port, Some(2), "three connected, one accepted")?;
    drop(listener);
    expect(waiting, port, None, "the listener closed")?;
    Ok(())
}

/// Calls `waiting` until it says `wanted`; the kernel queues a connection
/// a moment after the client's `connect` returns, so a first answer may
/// be early. Fails when it still says something else after `PATIENCE`.
fn expect(
    waiting: Waiting,
    port: u16,
    wanted: Option<u32>,
    when: &str,
) -> Result<(), String> {
    let began = Instant::now();
    loop {
        let got = start("waiting", move || waiting(port))
            .wait(PATIENCE)?
            .map_err(|err| format!("waiting({port}) failed: {err}"))?;
        if got == wanted {
            return Ok(());
        }
        if began.elapsed() > PATIENCE {
            return Err(format!(
                "with {when}, waiting({port}) must return {wanted:?}; it \
                 returned {got:?}"
            ));
        }
        // Polling a file, not waiting for a peer: a pause spares the CPU.
        thread::sleep(Duration::from_millis(5));
    }
}
