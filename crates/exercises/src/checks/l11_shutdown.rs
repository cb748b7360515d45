//! The check of exercise 11: the reader's server runs as a process of its
//! own, whose stop flag SIGINT sets (Ctrl-C, as in lesson 11). A Python
//! client is served, then the server gets SIGINT; new clients must then
//! be refused, the connected one still served, and the process must exit
//! with status 0 once it has gone.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::Pid;

use crate::harness::{PATIENCE, Peers, Program, Which, announce, shown};

type Serve = fn(TcpListener, Arc<AtomicBool>) -> io::Result<()>;

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0, with
/// a flag that SIGINT or SIGTERM sets.
pub fn run(serve: Serve) -> io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    // Blocked here, before any thread starts, so blocked in every thread;
    // one thread waits for them and sets the flag.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().map_err(io::Error::from)?;
    let flag = Arc::clone(&stop);
    thread::spawn(move || {
        if signals.wait().is_ok() {
            flag.store(true, Ordering::SeqCst);
        }
    });
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(listener.local_addr()?)?;
    serve(listener, stop)
}

/// Starts the server, and stops it with SIGINT while a client is
/// connected.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("11", which, &[], "your server")?;
    let addr = server.listening()?;
    let mut peers = Peers::start()?;
    peers.tcp("A", &addr)?;
    echoed(&mut peers, "before the stop\n")?;
    let pid = Pid::from_raw(server.pid() as i32);
    kill(pid, Signal::SIGINT)
        .map_err(|err| format!("the check: kill -INT {pid}: {err}"))?;
    refused(&mut peers, &addr, &mut server)?;
    echoed(&mut peers, "after the stop\n")?;
    if let Err(how) = server.alive() {
        return Err(format!(
            "{how} while a client was still connected: the clients \
             connected must be served until they close"
        ));
    }
    peers.close("A")?;
    match server.wait(PATIENCE) {
        Ok(status) if status.success() => Ok(()),
        Ok(_) => Err(format!(
            "serve must return Ok, and the program exit with status 0; {}",
            server.alive().err().unwrap_or_default()
        )),
        Err(_) => Err(format!(
            "the stop flag is set and the last client has closed: serve \
             must return; it had not after {} ms",
            PATIENCE.as_millis()
        )),
    }
}

/// The client's line must come back.
fn echoed(peers: &mut Peers, line: &str) -> Result<(), String> {
    peers.send("A", line.as_bytes())?;
    let (got, _) = peers.recv("A", line.len(), PATIENCE, b"")?;
    if got != line.as_bytes() {
        return Err(format!(
            "a connected client sent {} and got {} back: it must be served \
             until it closes, stop or not",
            shown(line.as_bytes()),
            shown(&got)
        ));
    }
    Ok(())
}

/// After the stop, a new client must soon be refused: the listener is
/// closed. A client let in meanwhile is closed at once.
fn refused(
    peers: &mut Peers,
    addr: &str,
    server: &mut Program,
) -> Result<(), String> {
    let began = Instant::now();
    loop {
        match peers.connect("late", addr, false)? {
            Err(why) if why.starts_with("ConnectionRefused") => return Ok(()),
            Err(why) => return Err(format!("a new client: {why}")),
            Ok(_) => peers.close("late")?,
        }
        if let Err(how) = server.alive() {
            return Err(format!(
                "{how} while a client was still connected: the clients \
                 connected must be served until they close"
            ));
        }
        if began.elapsed() > PATIENCE {
            return Err(format!(
                "{} ms after SIGINT set the stop flag, a new client was still \
                 let in: the server must stop accepting and close its \
                 listener",
                PATIENCE.as_millis()
            ));
        }
        // A pause between tries spares a server still accepting from
        // thousands of connections.
        thread::sleep(Duration::from_millis(5));
    }
}
