//! The demo: four experiments on loopback, each narrated call checked
//! against strace. No sleeps: `connect` returns once the kernel has queued
//! the connection, so one thread plays both sides (lesson 2).

use std::io::Read;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};
use transcript::{
    Call, Failure, Told, Transcript, bytes, client, client_note, section,
    server, server_note, tell,
};

use crate::RECV_SIZE;
use crate::client::connect_any;
use crate::server::{family_note, listen, socket_args};

/// The timeline: IPv6 loopback, an IPv4 client on an IPv6 socket, two
/// families on one port, and a name with two addresses.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    loopback()?;
    section("an IPv4 client on an IPv6 socket: IPV6_V6ONLY off, then on");
    mapped_client()?;
    v6only_refuses_ipv4()?;
    section("one port, two families: bind only, nothing listens");
    port_sharing()?;
    section("localhost: two addresses, a server on one of them");
    localhost()
}

// ANCHOR: loopback
/// The conversation of lesson 2 over IPv6: `AF_INET6` and `[::1]`.
fn loopback() -> Result<(), Failure> {
    let (listener, addr) = listen((Ipv6Addr::LOCALHOST, 0).into(), false)?;
    let (sock, _) = connect_any(&[addr])?;
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(&listener))?;

    let hello = b"hello over IPv6\n";
    sock.send(hello).told(|| client("send").on(&sock).args(bytes(hello)))?;
    let mut buf = [0u8; RECV_SIZE];
    (&conn)
        .read(&mut buf)
        .told(|| server("recv").on(&conn).args(RECV_SIZE).data(&buf))?;
    server_note("the calls of lesson 2; only the family and addresses differ");
    close(sock, client);
    close(conn, server);
    close(listener, server);
    Ok(())
}
// ANCHOR_END: loopback

// ANCHOR: mapped_client
/// An IPv6 socket with `IPV6_V6ONLY` off, bound to IPv4's loopback in its
/// IPv6 spelling, `::ffff:127.0.0.1`, takes a plain IPv4 client.
fn mapped_client() -> Result<(), Failure> {
    let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
    let (listener, addr) = listen((mapped, 0).into(), false)?;
    // The client knows nothing of IPv6: AF_INET, 127.0.0.1.
    let (sock, _) = connect_any(&[(Ipv4Addr::LOCALHOST, addr.port()).into()])?;
    let (conn, peer) =
        listener.accept().told(|| server("accept").on(&listener))?;
    if let Some(peer) = peer.as_socket() {
        server_note(family_note(peer));
    }
    close(sock, client);
    close(conn, server);
    close(listener, server);
    Ok(())
}
// ANCHOR_END: mapped_client

// ANCHOR: v6only_refuses_ipv4
/// With `IPV6_V6ONLY` on, an IPv6 socket has no IPv4 side at all: it
/// cannot even bind the mapped address.
fn v6only_refuses_ipv4() -> Result<(), Failure> {
    let wanted: SocketAddr = (Ipv4Addr::LOCALHOST.to_ipv6_mapped(), 0).into();
    let only6 = Socket::new(Domain::IPV6, Type::STREAM, None)
        .told(|| server("socket").args(socket_args(wanted)))?;
    only6
        .set_only_v6(true)
        .told(|| server("setsockopt").on(&only6).args("IPV6_V6ONLY, 1"))?;
    let bound = only6
        .bind(&wanted.into())
        .traced(|| server("bind").on(&only6).args(wanted));
    if bound.is_ok() {
        return Err(Failure::new("bind", "took a mapped address, IPv6 only"));
    }
    server_note("IPv4 clients need a second socket, AF_INET");
    close(only6, server);
    Ok(())
}
// ANCHOR_END: v6only_refuses_ipv4

// ANCHOR: port_sharing
/// `0.0.0.0:P` and `[::]:P` together: refused while the IPv6 socket
/// claims IPv4 too, allowed with `IPV6_V6ONLY` on. Bound, never listening,
/// so no one outside this machine can connect to them.
fn port_sharing() -> Result<(), Failure> {
    let v4 = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let any4: SocketAddr = (Ipv4Addr::UNSPECIFIED, 0).into();
    v4.bind(&any4.into()).told(|| server("bind").on(&v4).args(any4))?;
    let got = v4.local_addr().told(|| server("getsockname").on(&v4))?;
    let port = got.as_socket().map_or(0, |addr| addr.port());
    let any6: SocketAddr = (Ipv6Addr::UNSPECIFIED, port).into();

    for v6only in [false, true] {
        let v6 = Socket::new(Domain::IPV6, Type::STREAM, None)
            .told(|| server("socket").args(socket_args(any6)))?;
        let on = u8::from(v6only);
        v6.set_only_v6(v6only).told(|| {
            server("setsockopt").on(&v6).args(format!("IPV6_V6ONLY, {on}"))
        })?;
        let bound =
            v6.bind(&any6.into()).traced(|| server("bind").on(&v6).args(any6));
        server_note(match (v6only, bound.is_ok()) {
            (false, false) => "dual stack: [::] wants the IPv4 port too",
            (true, true) => "IPv6 only: one socket per family, one port",
            _ => "not what Linux does: see the chapter",
        });
        close(v6, server);
    }
    close(v4, server);
    Ok(())
}
// ANCHOR_END: port_sharing

// ANCHOR: localhost
/// A server on `127.0.0.1` and a client given the two addresses that
/// `localhost` has on most systems, `::1` first: the first is refused.
fn localhost() -> Result<(), Failure> {
    let (listener, addr) = listen((Ipv4Addr::LOCALHOST, 0).into(), false)?;
    let names = [(Ipv6Addr::LOCALHOST, addr.port()).into(), addr];
    client_note("getaddrinfo(\"localhost\") on most systems:");
    client_note(format!("{}, then {}", names[0], names[1]));
    let (sock, _) = connect_any(&names)?;
    client_note("the second address answered; taking the first alone fails");
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(&listener))?;
    close(sock, client);
    close(conn, server);
    close(listener, server);
    Ok(())
}
// ANCHOR_END: localhost

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: Socket, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
