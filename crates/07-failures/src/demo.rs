//! The demo: each failure and option provoked in turn, one experiment per
//! function, on loopback and on ports the kernel chose, so it never
//! collides with anything else on the machine. And the `exhaust-ports`
//! experiment, which runs out of local ports.
//!
//! Each call carries its line of the timeline as a suffix, `.told(|| ...)`
//! (or `.traced(|| ...)` where the demo expects it to fail). std's
//! `TcpListener::bind` and `TcpStream::connect` make several system calls
//! each; their lines are told with `tell` once the call has returned.

use std::fs::File;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, SockAddr, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, client, client_note, log, section,
    server, server_note, tcp_state, tell,
};

use crate::RECV_SIZE;
use crate::server::BACKLOG;

/// What every `socket` call here asks for. socket2 adds SOCK_CLOEXEC.
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";

/// How many clients the `SO_REUSEPORT` part sends. Each listener misses all
/// of them with probability 2^-40 per run: never, in practice.
const SPREAD_CLIENTS: usize = 40;

/// How long the demo waits for a connection that must come: a bound, not a
/// pause. On loopback it comes within microseconds.
const WAIT_MS: u16 = 5000;

/// Every failure and option, one part each.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let (listener, addr) = port_zero()?;
    address_in_use(addr)?;
    check_then_bind()?;
    four_tuple(&listener, addr)?;
    let (listeners, shared) = reuse_port()?;
    spread(listeners, shared)?;
    refused()?;
    let port = old_server()?;
    rebind(port)?;
    close(listener, server);
    Ok(())
}

// ANCHOR: port_zero
/// Port 0: ask the kernel for a free port, then ask which one it chose.
fn port_zero() -> Result<(Socket, SocketAddr), Failure> {
    section("port 0: the kernel picks a free port");
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    // As std does (lesson 3); the last part of the demo shows what it is for.
    listener
        .set_reuse_address(true)
        .told(|| server("setsockopt").on(&listener).args("SO_REUSEADDR, 1"))?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&wanted.into())
        .told(|| server("bind").on(&listener).args(wanted))?;
    // The only reliable way to know a free port: the kernel's answer.
    let addr = local_addr(&listener)?;
    listener
        .listen(BACKLOG)
        .told(|| server("listen").on(&listener).args(BACKLOG))?;
    Ok((listener, addr))
}
// ANCHOR_END: port_zero

// ANCHOR: in_use
/// A second socket on a listening address fails, with or without
/// `SO_REUSEADDR`.
fn address_in_use(addr: SocketAddr) -> Result<(), Failure> {
    section("a port someone listens on: EADDRINUSE");
    let second = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    // fd 3 listens on this address: the kernel refuses a second bind.
    let bound = second
        .bind(&addr.into())
        .traced(|| server("bind").on(&second).args(addr));
    expect_in_use(bound)?;
    close(second, server);

    // Both sockets with SO_REUSEADDR, and still no: on Linux it never lets
    // a second socket bind an address that one is listening on.
    let second = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    second
        .set_reuse_address(true)
        .told(|| server("setsockopt").on(&second).args("SO_REUSEADDR, 1"))?;
    let bound = second
        .bind(&addr.into())
        .traced(|| server("bind").on(&second).args(addr));
    expect_in_use(bound)?;
    server_note("SO_REUSEADDR on both: still one listener per address");
    close(second, server);
    Ok(())
}
// ANCHOR_END: in_use

// ANCHOR: race
/// "Find a free port, then bind it" is a race: the two steps, with another
/// program's bind in between, played in that order.
fn check_then_bind() -> Result<(), Failure> {
    section("check that a port is free, then bind it: a race");
    let probe = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    probe
        .bind(&wanted.into())
        .told(|| server("bind").on(&probe).args(wanted))?;
    let free = local_addr(&probe)?;
    close(probe, server);
    server_note(format!("the check: {free} is free"));

    // Between the check and the bind, anyone may take the port.
    server_note("meanwhile, another program binds it:");
    let other = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    other.bind(&free.into()).told(|| server("bind").on(&other).args(free))?;

    server_note("the bind the check was for:");
    let ours = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let bound =
        ours.bind(&free.into()).traced(|| server("bind").on(&ours).args(free));
    expect_in_use(bound)?;
    server_note("binding port 0 and asking getsockname cannot lose this race");
    close(ours, server);
    close(other, server);
    Ok(())
}
// ANCHOR_END: race

// ANCHOR: four_tuple
/// Three connections to one listener: three sockets with the same local
/// address, told apart by the peer's.
fn four_tuple(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    section("the 4-tuple: many connections on one port");
    let mut clients = Vec::new();
    for _ in 0..3 {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)
            .told(|| client("socket").args(STREAM))?;
        sock.connect(&addr.into())
            .told(|| client("connect").on(&sock).args(addr))?;
        clients.push(sock);
    }
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let (conn, _) =
            listener.accept().told(|| server("accept").on(listener))?;
        // Both ends of the connection, as the kernel keeps them.
        let local = local_addr(&conn)?;
        let peer = conn.peer_addr().told(|| server("getpeername").on(&conn))?;
        accepted.push((conn, local, as_inet(peer, "getpeername")?));
    }
    // Printed ports vary from run to run, so the comparisons are printed.
    let same = accepted.iter().all(|(_, local, _)| *local == addr);
    server_note(format!(
        "each accepted socket's local address is the listener's: {}",
        yes_no(same)
    ));
    let mut ports: Vec<u16> =
        accepted.iter().map(|(_, _, peer)| peer.port()).collect();
    ports.sort_unstable();
    ports.dedup();
    let differ = yes_no(ports.len() == accepted.len());
    server_note(format!("their peer ports all differ: {differ}"));
    server_note(
        "(local address, local port, peer address, peer port) \
         names a connection",
    );
    clients.into_iter().for_each(|sock| close(sock, client));
    accepted.into_iter().for_each(|(conn, ..)| close(conn, server));
    Ok(())
}
// ANCHOR_END: four_tuple

// ANCHOR: reuse_port
/// Two sockets listening on one port, both with `SO_REUSEPORT`.
fn reuse_port() -> Result<(Vec<Socket>, SocketAddr), Failure> {
    section("SO_REUSEPORT: two listeners on one port");
    let mut listeners: Vec<Socket> = Vec::new();
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    for _ in 0..2 {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
            .told(|| server("socket").args(STREAM))?;
        // Every socket sharing the port must set it, before bind, and
        // belong to the same user (man 7 socket).
        listener.set_reuse_port(true).told(|| {
            server("setsockopt").on(&listener).args("SO_REUSEPORT, 1")
        })?;
        listener
            .bind(&addr.into())
            .told(|| server("bind").on(&listener).args(addr))?;
        if addr.port() == 0 {
            addr = local_addr(&listener)?;
        }
        listener
            .listen(BACKLOG)
            .told(|| server("listen").on(&listener).args(BACKLOG))?;
        listeners.push(listener);
    }
    Ok((listeners, addr))
}
// ANCHOR_END: reuse_port

// ANCHOR: spread
/// The kernel chooses which listener gets each connection. One client at a
/// time: connect, wait until one of the two listeners has it, accept it
/// there, close both ends. Which one is a hash of the 4-tuple, so these
/// calls are counted, not printed.
fn spread(listeners: Vec<Socket>, addr: SocketAddr) -> Result<(), Failure> {
    client_note(format!(
        "{SPREAD_CLIENTS} clients: socket, connect, \
         then the server polls both listeners"
    ));
    server_note(
        "and accepts from the one that has the connection (calls not shown)",
    );
    let mut got = [0usize; 2];
    for _ in 0..SPREAD_CLIENTS {
        let sock =
            Socket::new(Domain::IPV4, Type::STREAM, None).or_fail("socket")?;
        sock.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
        let mut fds = [
            PollFd::new(listeners[0].as_fd(), PollFlags::POLLIN),
            PollFd::new(listeners[1].as_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::from(WAIT_MS)).or_fail("poll")?;
        let ready = fds
            .iter()
            .position(|fd| fd.any() == Some(true))
            .ok_or(Failure::new("poll", "no listener had the connection"))?;
        let (conn, _) = listeners[ready].accept().or_fail("accept")?;
        got[ready] += 1;
        drop((sock, conn));
    }
    for (listener, count) in listeners.iter().zip(got) {
        let fd = listener.as_raw_fd();
        let some = yes_no(count > 0);
        server_note(format!("listener fd {fd} accepted some of them: {some}"));
    }
    server_note(format!("together: {} of {SPREAD_CLIENTS}", got[0] + got[1]));
    server_note(
        "a stale server left running with SO_REUSEPORT would get its share too",
    );
    listeners.into_iter().rev().for_each(|l| close(l, server));
    Ok(())
}
// ANCHOR_END: spread

// ANCHOR: refused
/// A port that is bound but where nobody listens: the kernel answers the
/// client's SYN with RST.
fn refused() -> Result<(), Failure> {
    section("nobody listening: ECONNREFUSED");
    // Bound and not listening: the port stays ours, so nobody else can
    // start listening on it while the demo runs.
    let holder = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    holder
        .bind(&wanted.into())
        .told(|| server("bind").on(&holder).args(wanted))?;
    let closed = local_addr(&holder)?;

    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args(STREAM))?;
    let connected = sock
        .connect(&closed.into())
        .traced(|| client("connect").on(&sock).args(closed));
    match connected {
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {}
        other => return Err(Failure::new("connect", format!("{other:?}"))),
    }
    client_note("the kernel answered the SYN with RST: nobody listens there");
    close(sock, client);
    close(holder, server);
    Ok(())
}
// ANCHOR_END: refused

// ANCHOR: old_server
/// The old server, written with std, closes first: its end of the
/// 4-tuple, on the listening port, waits in TIME_WAIT after it is gone.
/// Returns its address.
fn old_server() -> Result<SocketAddr, Failure> {
    section("TIME_WAIT and a restart: std binds, raw socket2 does not");
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    server_note(format!(
        "the old server: TcpListener::bind(\"{wanted}\"), as in lesson 3"
    ));
    let old = std_listen(wanted)?;
    let addr = old.local_addr().told(|| server("getsockname").on(&old))?;

    let sock = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    tell(|| client("socket").args(STREAM).gave(&sock));
    tell(|| client("connect").on(&sock).args(addr).gave(&()));
    let (conn, peer) =
        old.accept().told(|| server("accept").on(&old).args("SOCK_CLOEXEC"))?;

    // The server ends the conversation first (lesson 6).
    conn.shutdown(Shutdown::Write)
        .told(|| server("shutdown").on(&conn).args("SHUT_WR"))?;
    let mut buf = [0u8; RECV_SIZE];
    (&sock).read(&mut buf).told(|| client("recv").on(&sock).args(RECV_SIZE))?;
    close(sock, client);
    // This 0 is the client's FIN, and the server's side is in TIME_WAIT
    // from the moment it arrived.
    (&conn).read(&mut buf).told(|| server("recv").on(&conn).args(RECV_SIZE))?;
    close(conn, server);
    close(old, server);
    server_note(
        "the old server is gone, its fds closed; the kernel still has:",
    );
    let state = tcp_state(addr, peer)?;
    server_note(format!("{addr} -> {peer}: {state}"));
    Ok(addr)
}
// ANCHOR_END: old_server

// ANCHOR: rebind
/// A new server on the old one's port: raw socket2 cannot bind it, std,
/// which sets `SO_REUSEADDR` as the old server did, can.
fn rebind(addr: SocketAddr) -> Result<(), Failure> {
    server_note("a new server with raw socket2 calls:");
    let raw = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let bound =
        raw.bind(&addr.into()).traced(|| server("bind").on(&raw).args(addr));
    expect_in_use(bound)?;
    close(raw, server);

    server_note(format!("a new server with TcpListener::bind(\"{addr}\"):"));
    let new = std_listen(addr)?;
    server_note(
        "SO_REUSEADDR on the old socket and the new one: \
         TIME_WAIT no longer blocks",
    );
    close(new, server);
    Ok(())
}
// ANCHOR_END: rebind

/// `TcpListener::bind`, and the four calls it makes (lesson 3).
fn std_listen(addr: SocketAddr) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    tell(|| server("socket").args(STREAM).gave(&listener));
    tell(|| {
        server("setsockopt").on(&listener).args("SO_REUSEADDR, 1").gave(&())
    });
    tell(|| server("bind").on(&listener).args(addr).gave(&()));
    tell(|| server("listen").on(&listener).args(BACKLOG).gave(&()));
    Ok(listener)
}

/// `getsockname`: the address the kernel gave `socket`.
fn local_addr(socket: &Socket) -> Result<SocketAddr, Failure> {
    let addr = socket.local_addr().told(|| server("getsockname").on(socket))?;
    as_inet(addr, "getsockname")
}

fn as_inet(addr: SockAddr, call: &str) -> Result<SocketAddr, Failure> {
    addr.as_socket().ok_or(Failure::new(call, "not an IP address"))
}

/// A bind that must have failed with `EADDRINUSE`: anything else stops the
/// demo, which would otherwise show what did not happen.
fn expect_in_use(bound: io::Result<()>) -> Result<(), Failure> {
    match bound {
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => Ok(()),
        Err(err) => Err(Failure::new("bind", err)),
        Ok(()) => Err(Failure::new("bind", "succeeded, not EADDRINUSE")),
    }
}

fn yes_no(answer: bool) -> &'static str {
    if answer { "yes" } else { "no" }
}

/// Closes `socket`, in `side`'s column: dropping it is `close(2)`.
fn close(socket: impl AsRawFd, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}

/// The state of the connection `local -> peer` as the kernel lists it in
/// /proc/net/tcp, the table `ss -tan` and `netstat` read ("no entry" if it
/// does not list it). The read is not told: its byte count depends on
/// every other TCP socket on the machine.
fn tcp_state(
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<&'static str, Failure> {
    const TABLE: &str = "/proc/net/tcp";
    let mut file = File::open(TABLE)
        .told(|| server("open").args(format!("{TABLE:?}, O_RDONLY")))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_fail(format!("read {TABLE}"))?;
    close(file, server);
    Ok(tcp_state::find(&text, local, peer).unwrap_or("no entry"))
}

// ANCHOR: exhaust
/// Opens and closes connections to its own listener until `connect` fails,
/// each one leaving its client port in TIME_WAIT. With the usual range of
/// 28,232 ports it reaches `max` first; in a network namespace with a small
/// `net.ipv4.ip_local_port_range` it runs out: EADDRNOTAVAIL. (Loopback may
/// reuse a port in TIME_WAIT, `tcp_tw_reuse` = 2, but only one that has sat
/// there for `tcp_tw_reuse_delay`, a second: a fast loop runs out anyway.)
pub fn exhaust_ports(max: usize) -> Result<(), Failure> {
    let listener =
        TcpListener::bind("127.0.0.1:0").or_fail("bind 127.0.0.1:0")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {addr}");
    for opened in 0..max {
        // Each connect needs a local port no other connection to `addr`
        // uses; a port in TIME_WAIT still counts as used.
        let sock = match TcpStream::connect(addr) {
            Ok(sock) => sock,
            Err(err) => {
                log!("{opened} connections made, then no local port was left");
                return Err(Failure::new(format!("connect {addr}"), err));
            }
        };
        let (conn, _) = listener.accept().or_fail("accept")?;
        // The client closes first: its port waits in TIME_WAIT (lesson 6).
        drop(sock);
        drop(conn);
    }
    log!("{max} connections made; no local port ran out");
    Ok(())
}
// ANCHOR_END: exhaust
