//! The server you take away: each socket option set for its reason, a
//! failed `bind` reported as one line and exit status 1, and each client
//! told both ends of its connection, which shares the listener's port.

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, SockAddr, Socket, Type};
use transcript::{Failure, OrFail, log};

/// The backlog, the same std passes on Linux (lesson 3).
pub const BACKLOG: i32 = 128;

// ANCHOR: listen
/// A socket listening on `addr`, each option set for its reason. A failure
/// comes back as one line naming the call, the address and the OS error,
/// which `main` prints before it exits with status 1.
pub fn listen(
    addr: SocketAddr,
    reuse_address: bool,
    reuse_port: bool,
) -> Result<Socket, Failure> {
    let domain = Domain::for_address(addr);
    let listener = Socket::new(domain, Type::STREAM, None).or_fail("socket")?;
    // This server closes first, so each connection it ends waits in
    // TIME_WAIT on this port after it is gone (lesson 6). SO_REUSEADDR
    // lets a restart bind the port meanwhile, if the last run set it too.
    // It never lets a second server listen here: that is SO_REUSEPORT.
    if reuse_address {
        listener.set_reuse_address(true).or_fail("setsockopt SO_REUSEADDR")?;
    }
    // Several listeners on one port, sharing its connections: each sets
    // it before bind, all as the same user (man 7 socket).
    if reuse_port {
        listener.set_reuse_port(true).or_fail("setsockopt SO_REUSEPORT")?;
    }
    // EADDRINUSE: someone holds the port. EADDRNOTAVAIL: not an address
    // of this machine. EACCES: a port below 1024 without the right.
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    listener.listen(BACKLOG).or_fail(format!("listen {addr}"))?;
    Ok(listener)
}
// ANCHOR_END: listen

// ANCHOR: server
/// Tells each client both ends of its connection, then closes first. Every
/// option is a flag, so its effect can be tried: a restart with
/// `--no-reuse-address` fails while the last run's connections are in
/// TIME_WAIT; two servers with `--reuse-port` share the port.
pub fn run(
    addr: SocketAddr,
    reuse_address: bool,
    reuse_port: bool,
) -> Result<(), Failure> {
    let listener = listen(addr, reuse_address, reuse_port)?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    let pid = std::process::id();
    log!("Listening on {local} (pid {pid})");
    loop {
        match listener.accept() {
            // `conn` is dropped at the end of this line: the server closes
            // first, and this end, on the listening port, waits in
            // TIME_WAIT.
            Ok((conn, peer)) => tell_both_ends(&conn, &peer, pid),
            // An accept error concerns one connection, not the server.
            Err(err) => log!("accept: {err}"),
        }
    }
}
// ANCHOR_END: server

// ANCHOR: tell_both_ends
/// Writes the client its own address and the server's, as the kernel keeps
/// them for this connection.
fn tell_both_ends(conn: &Socket, peer: &SockAddr, pid: u32) {
    let peer = shown(Some(peer));
    // The accepted socket's own address: the listener's port, always.
    let here = shown(conn.local_addr().ok().as_ref());
    log!("fd {}: {here} <-> {peer}", conn.as_raw_fd());
    let reply = format!("you are {peer}, I am {here} (pid {pid})\n");
    if let Err(err) = (&*conn).write_all(reply.as_bytes()) {
        log!("send to {peer}: {err}");
    }
}
// ANCHOR_END: tell_both_ends

/// An address as `127.0.0.1:8001`, or `unknown`.
fn shown(addr: Option<&SockAddr>) -> String {
    match addr.and_then(SockAddr::as_socket) {
        Some(addr) => addr.to_string(),
        None => "unknown".to_string(),
    }
}
