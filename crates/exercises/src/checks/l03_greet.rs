//! The check of exercise 3: a client sends its name in two parts; the
//! server must wait for the whole line, answer it, and close cleanly.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::harness::{PATIENCE, read_until, shown, start};

/// How long the check waits to see that nothing comes back yet.
const QUIET: Duration = Duration::from_millis(200);

/// Runs `serve` on a listener at 127.0.0.1, port 0, and talks to it.
pub fn check(serve: fn(TcpListener) -> io::Result<()>) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check could not listen: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    // The server runs for ever; its thread is left when the check ends.
    let server = start("serve", move || serve(listener));
    talk(addr, "Ad", "a\n")?;
    talk(addr, "Grace Hop", "per\n")?;
    match server.ended() {
        None => Ok(()),
        Some(Ok(Ok(()))) => {
            Err("serve returned: it must serve for ever".into())
        }
        Some(Ok(Err(err))) => Err(format!("serve failed: {err}")),
        Some(Err(panicked)) => Err(panicked),
    }
}

/// One client: sends `first`, sees that no answer comes, sends `rest`,
/// and reads the answer to the end of the stream.
fn talk(addr: SocketAddr, first: &str, rest: &str) -> Result<(), String> {
    let failed = |err: io::Error| format!("a client of the server: {err}");
    let mut client = TcpStream::connect(addr).map_err(failed)?;
    client.write_all(first.as_bytes()).map_err(failed)?;
    let early = read_until(&client, 64, QUIET, |_| false).map_err(failed)?;
    if !early.is_empty() {
        return Err(format!(
            "the client sent {} and not yet the end of its line, but the \
             server answered {}: a read returns what has arrived, which may \
             be part of a line",
            shown(first.as_bytes()),
            shown(&early)
        ));
    }
    client.write_all(rest.as_bytes()).map_err(failed)?;
    let line = format!("{first}{rest}");
    let wanted = format!("hello, {line}");
    let answer =
        read_until(&client, 256, PATIENCE, |_| false).map_err(|err| {
            format!(
                "the server must answer {} to {} and close; the client's read \
             failed: {err}",
                shown(wanted.as_bytes()),
                shown(line.as_bytes())
            )
        })?;
    if answer != wanted.as_bytes() {
        return Err(format!(
            "the server must answer {} to {} and close; it answered {}",
            shown(wanted.as_bytes()),
            shown(line.as_bytes()),
            shown(&answer)
        ));
    }
    Ok(())
}
