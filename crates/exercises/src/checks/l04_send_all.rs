//! The check of exercise 4: a megabyte through a send buffer of a few
//! kilobytes, to a peer that reads everything; every byte must arrive, in
//! order.
//!
//! In the check's process, in a thread: `send_all` is a function over a
//! socket it is given, nonblocking with a tiny send buffer, which only the
//! process holding the socket can set up and hand it.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::harness::{PATIENCE, start};

/// What is sent: far more than the send buffer holds.
const SIZE: usize = 1 << 20;
/// The send buffer asked for; the kernel doubles it (`man 7 socket`).
const SNDBUF: usize = 4096;

/// Connects a nonblocking socket with a tiny send buffer to a peer that
/// reads until the end, and has `send_all` send a megabyte on it.
pub fn check(
    send_all: fn(&TcpStream, &[u8]) -> io::Result<()>,
) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's sockets: {err}");
    let (conn, peer) = connected().map_err(failed)?;
    // The peer reads until the end of the stream, whatever came.
    let reader = start("the peer", move || {
        let mut got = Vec::new();
        peer.set_read_timeout(Some(Duration::from_secs(5)))?;
        (&peer).read_to_end(&mut got).map(|_| got)
    });
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let sender = start("send_all", move || {
        let result = send_all(&conn, &sent);
        // Dropping the socket closes it: the peer's read ends.
        drop(conn);
        result
    });
    match sender.wait(5 * PATIENCE) {
        Ok(Ok(())) => {}
        Ok(Err(err)) if err.kind() == io::ErrorKind::WouldBlock => {
            return Err(format!(
                "send_all failed: {err}. On a nonblocking socket that means \
                 no room yet, not an error: wait for room, then go on"
            ));
        }
        Ok(Err(err)) => return Err(format!("send_all failed: {err}")),
        Err(why) => return Err(why),
    }
    let got = match reader.wait(5 * PATIENCE) {
        Ok(Ok(got)) => got,
        Ok(Err(err)) => return Err(format!("the peer's read failed: {err}")),
        Err(why) => return Err(why),
    };
    if got.len() != data.len() {
        return Err(format!(
            "the peer received {} of the {SIZE} bytes: send_all returned \
             before the kernel had taken them all",
            got.len()
        ));
    }
    if got != data {
        let at = got.iter().zip(&data).position(|(a, b)| a != b);
        return Err(format!(
            "the peer received {SIZE} bytes, but not in the order sent \
             (the first wrong one is byte {})",
            at.unwrap_or(0)
        ));
    }
    Ok(())
}

/// A connection on 127.0.0.1: the sending end, nonblocking with a tiny send
/// buffer, and the peer's end.
fn connected() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr: SocketAddr = listener.local_addr()?;
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.set_send_buffer_size(SNDBUF)?;
    sock.connect(&addr.into())?;
    let (peer, _) = listener.accept()?;
    let conn: TcpStream = sock.into();
    conn.set_nonblocking(true)?;
    Ok((conn, peer))
}
