//! The check of exercise 12: three clients; one that says nothing must
//! still hear the others, and nobody hears their own line.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::harness::{PATIENCE, read_until, shown, start};

/// How long the check waits to see that nothing comes.
const QUIET: Duration = Duration::from_millis(100);

/// Runs `serve` on a listener at 127.0.0.1, port 0, with three clients.
pub fn check(serve: fn(TcpListener) -> io::Result<()>) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    // The server runs for ever; its thread is left when the check ends.
    let server = start("serve", move || serve(listener));
    // A connected first, so the server has it by the time it reads B's
    // line: a client is only sure to hear lines read after it was
    // accepted, and C's own line being heard says it was.
    let a = connect(addr)?;
    let b = connect(addr)?;
    say(&b, "B", "hello from B\n")?;
    hears(&a, "A", "B", "hello from B\n")?;
    let c = connect(addr)?;
    say(&c, "C", "C joins\n")?;
    hears(&a, "A", "C", "C joins\n")?;
    hears(&b, "B", "C", "C joins\n")?;
    say(&a, "A", "A here\n")?;
    hears(&b, "B", "A", "A here\n")?;
    hears(&c, "C", "A", "A here\n")?;
    let own = read_until(&a, 64, QUIET, |_| false).map_err(failed)?;
    if !own.is_empty() {
        return Err(format!(
            "client A must not get its own line back; it got {}",
            shown(&own)
        ));
    }
    match server.ended() {
        None => Ok(()),
        Some(Ok(Ok(()))) => {
            Err("serve returned: it must serve for ever".into())
        }
        Some(Ok(Err(err))) => Err(format!("serve failed: {err}")),
        Some(Err(panicked)) => Err(panicked),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect(addr).map_err(|err| format!("a client: {err}"))
}

fn say(client: &TcpStream, who: &str, line: &str) -> Result<(), String> {
    (&*client)
        .write_all(line.as_bytes())
        .map_err(|err| format!("client {who}: {err}"))
}

/// `client` must receive `line`, which `from` sent.
fn hears(
    client: &TcpStream,
    who: &str,
    from: &str,
    line: &str,
) -> Result<(), String> {
    let got = read_until(client, line.len(), PATIENCE, |_| false)
        .map_err(|err| format!("client {who}: {err}"))?;
    if got != line.as_bytes() {
        let what = if got.is_empty() {
            format!(
                "nothing in {} ms: a server that waits for one client \
                 cannot hear the others",
                PATIENCE.as_millis()
            )
        } else {
            shown(&got)
        };
        return Err(format!(
            "client {from} sent {}; client {who}, connected too, must \
             receive it; it received {what}",
            shown(line.as_bytes())
        ));
    }
    Ok(())
}
