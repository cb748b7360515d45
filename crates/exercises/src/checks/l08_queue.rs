//! The check of exercise 8: a listener that does not accept, three Python
//! clients connected, then one accepted; and a port nothing listens on.
//! The reader's `waiting` runs in a process of its own each time
//! (`run 8 PORT` prints what it returned), as `ss` does: it reads the
//! queue of a listener another process holds.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, Peers, Program, Which};

type Waiting = fn(u16) -> io::Result<Option<u32>>;

/// The reader's program, `run 8 PORT`: prints what `waiting(PORT)`
/// returned, `Some(3)` or `None`.
pub fn run(waiting: Waiting, args: &[String]) -> io::Result<()> {
    let port = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other("usage: run 8 PORT"))?;
    println!("{:?}", waiting(port)?);
    Ok(())
}

/// Compares what `waiting` says with the queue the check made.
pub fn check(which: Which) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    expect(which, port, Some(0), "a listener nobody has connected to")?;
    let mut peers = Peers::start()?;
    for name in ["A", "B", "C"] {
        peers.tcp(name, &format!("127.0.0.1:{port}"))?;
    }
    expect(which, port, Some(3), "three clients connected, none accepted")?;
    let (_first, _) = listener.accept().map_err(failed)?;
    expect(which, port, Some(2), "three connected, one accepted")?;
    drop(listener);
    expect(which, port, None, "the listener closed")?;
    Ok(())
}

/// Runs `waiting` until it says `wanted`; the kernel queues a connection
/// a moment after the client's `connect` returns, so a first answer may
/// be early. Fails when it still says something else after `PATIENCE`.
fn expect(
    which: Which,
    port: u16,
    wanted: Option<u32>,
    when: &str,
) -> Result<(), String> {
    let began = Instant::now();
    let wanted = format!("{wanted:?}");
    loop {
        let name = format!("waiting({port})");
        let mut program =
            Program::start("8", which, &[port.to_string()], &name)?;
        let got = program.output(PATIENCE)?;
        let got = got.trim();
        if got == wanted {
            return Ok(());
        }
        if began.elapsed() > PATIENCE {
            return Err(format!(
                "with {when}, waiting({port}) must return {wanted}; it \
                 returned {got}"
            ));
        }
        // Polling a file, not waiting for a peer: a pause spares the CPU.
        thread::sleep(Duration::from_millis(5));
    }
}
