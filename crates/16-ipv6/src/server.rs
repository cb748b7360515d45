//! An echo server for either family. Given `[::]`, one IPv6 socket serves
//! IPv4 clients too (dual stack), unless `--v6-only` says otherwise.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, Told, bytes, log, server};

use crate::RECV_SIZE;

// ANCHOR: listen
/// Opens a listening socket on `addr` and returns it with the address it
/// got. For an IPv6 address, `v6only` decides whether IPv4 clients may
/// come in too, as `::ffff:a.b.c.d`: say it, since the default differs
/// between systems (`/proc/sys/net/ipv6/bindv6only` on Linux).
pub fn listen(
    addr: SocketAddr,
    v6only: bool,
) -> Result<(Socket, SocketAddr), Failure> {
    // The family follows the address: AF_INET6 for [::1], AF_INET for
    // 127.0.0.1. A socket of one family cannot bind the other's address.
    let domain = Domain::for_address(addr);
    let listener = Socket::new(domain, Type::STREAM, None)
        .told(|| server("socket").args(socket_args(addr)))?;
    if addr.is_ipv6() {
        // Before bind: the option decides which ports bind must claim.
        listener.set_only_v6(v6only).told(|| {
            server("setsockopt")
                .on(&listener)
                .args(format_args!("IPV6_V6ONLY, {}", u8::from(v6only)))
        })?;
    }
    listener
        .bind(&addr.into())
        .told(|| server("bind").on(&listener).args(addr))?;
    let local = listener
        .local_addr()
        .told(|| server("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(128).told(|| server("listen").on(&listener).args(128))?;
    Ok((listener, local))
}
// ANCHOR_END: listen

/// The arguments of `socket` for an address of `addr`'s family.
pub fn socket_args(addr: SocketAddr) -> &'static str {
    match addr {
        SocketAddr::V4(_) => "AF_INET, SOCK_STREAM|SOCK_CLOEXEC",
        SocketAddr::V6(_) => "AF_INET6, SOCK_STREAM|SOCK_CLOEXEC",
    }
}

// ANCHOR: server
/// Listens on `addr` and serves clients one after the other, for ever.
pub fn run(
    addr: SocketAddr,
    v6only: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    let (listener, local) = listen(addr, v6only)?;
    log!("Listening on {local}");
    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                log!("accept: {err}");
                continue;
            }
        };
        let Some(peer) = peer.as_socket() else { continue };
        log!("Connected with {peer}: {}", family_note(peer));
        serve_one(&conn, &peer.to_string(), timeout);
    }
}
// ANCHOR_END: server

// ANCHOR: family_note
/// What a peer's address says about its family. On an IPv6 socket an
/// IPv4 client's address is IPv4-mapped: `::ffff:` and its four bytes.
pub fn family_note(peer: SocketAddr) -> String {
    match peer.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("an IPv4 client ({v4}), mapped into IPv6"),
            None => "an IPv6 client".to_string(),
        },
        IpAddr::V4(_) => "an IPv4 client".to_string(),
    }
}
// ANCHOR_END: family_note

/// Echoes until the client closes, goes quiet for `timeout`, or fails:
/// lesson 2's loop, which is the same for every family.
fn serve_one(conn: &Socket, peer: &str, timeout: Duration) {
    if let Err(err) = conn.set_read_timeout(Some(timeout)) {
        log!("setsockopt SO_RCVTIMEO for {peer}: {err}; closing");
        return;
    }
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let received = match (&*conn).read(&mut buf) {
            Ok(0) => {
                log!("{peer} closed the connection");
                return;
            }
            Ok(n) => &buf[..n],
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) => {
                log!("No data from {peer} for {timeout:?}: closing it");
                return;
            }
            Err(err) => {
                log!("recv from {peer}: {err}; closing this connection");
                return;
            }
        };
        log!("Received from {peer}: {}", bytes(received));
        if let Err(err) = send_all(conn, received) {
            log!("send to {peer}: {err}; closing this connection");
            return;
        }
    }
}

/// Sends all of `data`, however many calls that takes (lesson 4).
fn send_all(conn: &Socket, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match conn.send(data) {
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// A read timeout is `WouldBlock` (EAGAIN) on Linux, `TimedOut` elsewhere.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}
