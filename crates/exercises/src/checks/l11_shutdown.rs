//! The check of exercise 11: a client is served, the stop flag is set;
//! new clients must then be refused, the connected one still served, and
//! `serve` must return once it has gone.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, Running, read_until, shown, start};

type Serve = fn(TcpListener, Arc<AtomicBool>) -> io::Result<()>;

/// Runs `serve` on a listener at 127.0.0.1, port 0, and stops it.
pub fn check(serve: Serve) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let server = start("serve", move || serve(listener, flag));
    let client = TcpStream::connect(addr).map_err(failed)?;
    echoed(&client, "before the stop\n")?;
    stop.store(true, Ordering::SeqCst);
    refused(addr, &server)?;
    echoed(&client, "after the stop\n")?;
    if server.ended().is_some() {
        return Err("serve returned while a client was still connected: \
                    the clients connected must be served until they close"
            .into());
    }
    drop(client);
    match server.wait(PATIENCE) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(format!("serve must return Ok; it failed: {err}")),
        Err(_) => Err(format!(
            "the stop flag is set and the last client has closed: serve \
             must return; it had not after {} ms",
            PATIENCE.as_millis()
        )),
    }
}

/// The client's line must come back.
fn echoed(client: &TcpStream, line: &str) -> Result<(), String> {
    let failed = |err: io::Error| format!("the client: {err}");
    (&*client).write_all(line.as_bytes()).map_err(failed)?;
    let got =
        read_until(client, line.len(), PATIENCE, |_| false).map_err(failed)?;
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
    addr: SocketAddr,
    server: &Running<io::Result<()>>,
) -> Result<(), String> {
    let began = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                return Ok(());
            }
            Err(err) => return Err(format!("a new client: {err}")),
            Ok(_let_in) => {}
        }
        if let Some(ended) = server.ended() {
            return Err(format!(
                "serve returned while a client was still connected ({}): \
                 the clients connected must be served until they close",
                match ended {
                    Ok(Ok(())) => "Ok".to_string(),
                    Ok(Err(err)) => err.to_string(),
                    Err(panicked) => panicked,
                }
            ));
        }
        if began.elapsed() > PATIENCE {
            return Err(format!(
                "{} ms after the stop flag was set, a new client was still \
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
