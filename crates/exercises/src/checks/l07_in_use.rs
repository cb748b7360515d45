//! The check of exercise 7: a restart on a port whose last connection is
//! in TIME_WAIT must work; a second server on a port in use must get one
//! line naming the address.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};

use socket2::Socket;

use crate::harness::{PATIENCE, start};

type Listen = fn(SocketAddr) -> Result<Socket, String>;

/// An old server closes a connection first and stops; `listen` must bind
/// its port again, and refuse it while that new listener lives.
pub fn check(listen: Listen) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's sockets: {err}");
    let addr = old_server().map_err(failed)?;
    let socket = match start("listen", move || listen(addr)).wait(PATIENCE)? {
        Ok(socket) => socket,
        Err(line) => {
            return Err(format!(
                "a server restarting on {addr}, where the last connection is \
                 in TIME_WAIT and nobody listens, must get its listener; \
                 listen returned the error {line:?}"
            ));
        }
    };
    // The listener must be one: a client connects and is accepted.
    let client = TcpStream::connect(addr).map_err(|err| {
        format!("a client could not connect to the new listener: {err}")
    })?;
    let accepted = start("accept", move || socket.accept().map(|_| socket));
    let socket = match accepted.wait(PATIENCE)? {
        Ok(socket) => socket,
        Err(err) => return Err(format!("accept on the new listener: {err}")),
    };
    drop(client);
    // Now the port is taken by a live listener: a second server fails.
    match start("listen", move || listen(addr)).wait(PATIENCE)? {
        Ok(_) => Err(format!(
            "a second server got a listener on {addr}, where another one \
             listens (SO_REUSEPORT lets two share a port: leave it off)"
        )),
        Err(line) if line.contains(&addr.to_string()) && in_use(&line) => {
            drop(socket);
            Ok(())
        }
        Err(line) => Err(format!(
            "while another server listens on {addr}, listen must return one \
             line that names the address and says it is in use; it returned \
             {line:?}"
        )),
    }
}

fn in_use(line: &str) -> bool {
    line.to_lowercase().contains("in use")
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
