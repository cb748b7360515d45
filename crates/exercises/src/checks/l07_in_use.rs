//! The check of exercise 7: the reader's server runs as a process of its
//! own, twice. Restarted on a port whose last connection is in TIME_WAIT,
//! it must listen (`nc -z` connects to it); a second one on the same port,
//! while the first listens, must exit with status 1 and one line naming
//! the address.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};

use socket2::Socket;

use crate::harness::{PATIENCE, Program, Which, announce};

type Listen = fn(SocketAddr) -> Result<Socket, String>;

/// The reader's program, `run 7 ADDR`: `listen` on ADDR, say so, and
/// accept (and close) connections for ever; or its line, and status 1.
pub fn run(listen: Listen, args: &[String]) -> io::Result<()> {
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other("usage: run 7 ADDR"))?;
    let socket = listen(addr).map_err(io::Error::other)?;
    announce(addr)?;
    loop {
        drop(socket.accept()?);
    }
}

/// An old server closes a connection first and stops; the reader's
/// server must listen on its port again, and a second one be refused.
pub fn check(which: Which) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's sockets: {err}");
    let addr = old_server().map_err(failed)?;
    let args = [addr.to_string()];
    let mut first = Program::start("7", which, &args, "your server")?;
    if let Err(how) = first.listening() {
        return Err(format!(
            "a server restarting on {addr}, where the last connection is in \
             TIME_WAIT and nobody listens, must listen; {how}"
        ));
    }
    // The listener must be one: nc connects to it.
    nc_connects(addr)?;
    // Now the port is taken by a live listener: a second server fails.
    let mut second = Program::start("7", which, &args, "the second server")?;
    let status = second.wait(PATIENCE);
    first.still_serving()?;
    let said = second.said();
    match status {
        Ok(status) if status.code() == Some(1) => {
            if said.contains(&addr.to_string()) && in_use(&said) {
                Ok(())
            } else {
                Err(format!(
                    "while another server listens on {addr}, the second must \
                     print one line that names the address and says it is in \
                     use; it printed {said:?}"
                ))
            }
        }
        Ok(status) => Err(format!(
            "while another server listens on {addr}, the second must print \
             one line and exit with status 1; it exited with {status}, \
             saying {said:?}"
        )),
        Err(_) => Err(format!(
            "a second server went on running on {addr}, where another one \
             listens (SO_REUSEPORT lets two share a port: leave it off)"
        )),
    }
}

fn in_use(line: &str) -> bool {
    line.to_lowercase().contains("in use")
}

/// `nc -z` connects to `addr` and closes: it must succeed.
fn nc_connects(addr: SocketAddr) -> Result<(), String> {
    let out = Command::new("nc")
        .args(["-z", "-w", "1"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|err| {
            format!("the check runs nc (OpenBSD netcat), a client: {err}")
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "your server said it listens on {addr}, but `nc -z {} {}` could not \
         connect: {}",
        addr.ip(),
        addr.port(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// A server on 127.0.0.1, port 0, that accepts one client, closes the
/// connection first (so its end goes to TIME_WAIT, lesson 6) and stops.
/// Returns the address it listened on.
fn old_server() -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let mut client = TcpStream::connect(addr)?;
    let (conn, _) = listener.accept()?;
    drop(conn); // the server closes first
    // The client reads the end of the stream, then closes too.
    client.set_read_timeout(Some(PATIENCE))?;
    client.read_to_end(&mut Vec::new())?;
    drop(client);
    drop(listener);
    Ok(addr)
}
