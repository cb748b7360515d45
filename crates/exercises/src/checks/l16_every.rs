//! The check of exercise 16: three addresses, the first never answers
//! (a listener whose accept queue is full drops SYNs, lesson 8), the
//! second refuses, the third listens; and then two that refuse.
//!
//! In the check's process, in a thread: `connect` returns a stream whose
//! peer the check looks at, or the last error's kind, and its time is
//! measured against 200 ms per address, which a process's start on a
//! loaded machine would blur.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::harness::{PATIENCE, start};

type Connect = fn(&[SocketAddr], Duration) -> io::Result<TcpStream>;

/// What `connect` is given for each address.
const EACH: Duration = Duration::from_millis(200);

/// Runs `connect` on the two lists.
pub fn check(connect: Connect) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let (silent, _filled) = silent().map_err(failed)?;
    let refusing = refusing().map_err(failed)?;
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let good = listener.local_addr().map_err(failed)?;
    let addrs = vec![silent, refusing, good];
    let began = Instant::now();
    let got = start("connect", move || connect(&addrs, EACH))
        .wait(PATIENCE)
        .map_err(|_| {
            format!(
                "connect had not returned after {} ms: the first address \
                 never answers, and each may take at most {} ms",
                PATIENCE.as_millis(),
                EACH.as_millis()
            )
        })?;
    let stream = got.map_err(|err| {
        format!(
            "the third address, {good}, listens: connect must reach it; it \
             failed: {err}"
        )
    })?;
    let peer = stream.peer_addr().map_err(failed)?;
    if peer != good {
        return Err(format!(
            "connect must return the connection to {good}, the one that \
             listens; it returned one to {peer}"
        ));
    }
    let took = began.elapsed();
    if took < EACH - Duration::from_millis(20) {
        return Err(format!(
            "connect gave the first address {} ms, less than the {} ms it \
             may take",
            took.as_millis(),
            EACH.as_millis()
        ));
    }
    // None listens: the last address's error.
    let addrs = vec![refusing, refusing];
    match start("connect", move || connect(&addrs, EACH)).wait(PATIENCE)? {
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(err) => Err(format!(
            "with two addresses that refuse, connect must fail with the \
             last one's error, ConnectionRefused; it failed with {:?} ({err})",
            err.kind()
        )),
        Ok(_) => Err("with two addresses that refuse, connect returned a \
                      connection"
            .into()),
    }
}

/// An address whose SYNs get no answer: a listener with a backlog of 0 and
/// one connection it never accepts, so its queue is full and Linux drops
/// the next SYN. Returns it with what keeps it so.
fn silent() -> io::Result<(SocketAddr, (Socket, TcpStream))> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    listener.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
    listener.listen(0)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("no address"))?;
    let filler = TcpStream::connect(addr)?;
    Ok((addr, (listener, filler)))
}

/// An address nothing listens on: a port bound a moment ago, now closed.
fn refusing() -> io::Result<SocketAddr> {
    let gone = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    gone.local_addr()
}
