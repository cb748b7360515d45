//! # Lesson 7: when things fail
//!
//! The idea: `bind` and `connect` fail in a few well-defined ways, each an
//! errno worth knowing. `EADDRINUSE`: someone holds that address, and on
//! Linux `SO_REUSEADDR` only lets you past connections in TIME_WAIT, never
//! past a listener; `SO_REUSEPORT` lets several sockets listen on one port
//! and spreads connections over them. `ECONNREFUSED`: nobody listens there.
//! `EADDRNOTAVAIL`: no local port left for a new connection. And a port is
//! not one connection: every accepted socket shares the listener's port,
//! told apart by the 4-tuple.
//!
//! What was wrong before: the article says a port cannot be used by two
//! processes at once (it can, with `SO_REUSEPORT`, and every connection
//! shares it anyway) and exits with status 0 when `bind` fails. Here each
//! failure is shown as the kernel reports it, and every failure of the
//! programs ends with one line naming the call, the address and the OS
//! error, and a non-zero exit status.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, Transcript, call, tcp_state};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// What every `socket` call here asks for. socket2 adds SOCK_CLOEXEC.
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";

/// The backlog used here, the same std passes on Linux (lesson 3).
const BACKLOG: i32 = 128;

/// How many clients the `SO_REUSEPORT` part sends. Each listener misses all
/// of them with probability 2^-40 per run: never, in practice.
const SPREAD_CLIENTS: usize = 40;

/// How long the demo waits for a connection that must come: a bound, not a
/// pause. On loopback it comes within microseconds.
const WAIT_MS: u16 = 5000;

#[derive(Parser)]
#[command(
    name = "lesson-07",
    bin_name = "lesson-07",
    about = "Lesson 7: when things fail: address in use, reuse options, refused connections, port 0 and the 4-tuple"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Show each failure and option in one process, as a timeline (the default)
    Demo,
    /// Tell each client its 4-tuple, then close (the server closes first)
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Set SO_REUSEADDR before bind, as std does: a restart can bind while
        /// the last run's connections sit in TIME_WAIT, if that run set it too
        #[arg(long)]
        reuse_address: bool,
        /// Set SO_REUSEPORT before bind: several servers may listen on one
        /// port, and the kernel spreads new connections over them
        #[arg(long)]
        reuse_port: bool,
    },
    /// Connect, print both ends of the connection and the server's reply
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
    /// Connect and close, again and again, until no local port is left
    ExhaustPorts {
        /// Stop after this many connections if none has failed
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-07", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, reuse_address, reuse_port }) => {
            server(addr, reuse_address, reuse_port)
        }
        Some(Command::Client { addr }) => client(addr),
        Some(Command::ExhaustPorts { max }) => exhaust_ports(max),
    })
}

/// Every failure and option, one part each, on loopback and ports the
/// kernel chose, so the demo never collides with anything.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);
    let (listener, addr) = port_zero(&mut t)?;
    address_in_use(&mut t, addr)?;
    check_then_bind(&mut t)?;
    four_tuple(&mut t, &listener, addr)?;
    reuse_port(&mut t)?;
    refused(&mut t)?;
    time_wait_rebind(&mut t)?;
    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    Ok(())
}

/// Port 0: ask the kernel for a free port, then ask which one it chose.
fn port_zero(t: &mut Transcript) -> Result<(Socket, SocketAddr), Failure> {
    t.section("port 0: the kernel picks a free port");
    // ANCHOR: port_zero
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&listener));
    let listener = listener.or_fail("socket")?;
    // As std does (lesson 3); the last part of the demo shows what it is for.
    let set = listener.set_reuse_address(true);
    t.server(
        call("setsockopt").on(&listener).args("SO_REUSEADDR, 1").returned(&set),
    );
    set.or_fail("setsockopt SO_REUSEADDR")?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = listener.bind(&wanted.into());
    t.server(call("bind").on(&listener).args(wanted).returned(&bound));
    bound.or_fail(format!("bind {wanted}"))?;
    // The only reliable way to know a free port: the kernel's answer.
    let addr = listener
        .local_addr()
        .or_fail("getsockname")?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));
    let listening = listener.listen(BACKLOG);
    t.server(call("listen").on(&listener).args(BACKLOG).returned(&listening));
    listening.or_fail("listen")?;
    // ANCHOR_END: port_zero
    Ok((listener, addr))
}

/// A second socket on a listening address fails, with or without
/// `SO_REUSEADDR`.
fn address_in_use(t: &mut Transcript, addr: SocketAddr) -> Result<(), Failure> {
    t.section("a port someone listens on: EADDRINUSE");
    // ANCHOR: in_use
    let second = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&second));
    let second = second.or_fail("socket")?;
    // fd 3 listens on this address: the kernel refuses a second bind.
    let bound = second.bind(&addr.into());
    t.server(call("bind").on(&second).args(addr).returned(&bound));
    let second_fd = second.as_raw_fd();
    drop(second);
    t.server(call("close").on_fd(second_fd).gave(&()));

    // Both sockets with SO_REUSEADDR, and still no: on Linux it never lets
    // a second socket bind an address that one is listening on (man 7 socket).
    let second = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&second));
    let second = second.or_fail("socket")?;
    let set = second.set_reuse_address(true);
    t.server(
        call("setsockopt").on(&second).args("SO_REUSEADDR, 1").returned(&set),
    );
    set.or_fail("setsockopt SO_REUSEADDR")?;
    let bound = second.bind(&addr.into());
    t.server(call("bind").on(&second).args(addr).returned(&bound));
    t.server_note("SO_REUSEADDR on both: still one listener per address");
    let second_fd = second.as_raw_fd();
    drop(second);
    t.server(call("close").on_fd(second_fd).gave(&()));
    // ANCHOR_END: in_use
    Ok(())
}

/// "Find a free port, then bind it" is a race: the two steps, with another
/// program's bind in between, played in that order.
fn check_then_bind(t: &mut Transcript) -> Result<(), Failure> {
    t.section("check that a port is free, then bind it: a race");
    // ANCHOR: race
    let probe = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&probe));
    let probe = probe.or_fail("socket")?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = probe.bind(&wanted.into());
    t.server(call("bind").on(&probe).args(wanted).returned(&bound));
    bound.or_fail(format!("bind {wanted}"))?;
    let free = probe
        .local_addr()
        .or_fail("getsockname")?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&probe).gave(&()).detail(free));
    let probe_fd = probe.as_raw_fd();
    drop(probe);
    t.server(call("close").on_fd(probe_fd).gave(&()));
    t.server_note(format!("the check: {free} is free"));

    // Between the check and the bind, anyone may take the port.
    t.server_note("meanwhile, another program binds it:");
    let other = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&other));
    let other = other.or_fail("socket")?;
    let bound = other.bind(&free.into());
    t.server(call("bind").on(&other).args(free).returned(&bound));
    bound.or_fail(format!("bind {free}"))?;

    t.server_note("the bind the check was for:");
    let ours = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&ours));
    let ours = ours.or_fail("socket")?;
    let bound = ours.bind(&free.into());
    t.server(call("bind").on(&ours).args(free).returned(&bound));
    t.server_note(
        "binding port 0 and asking getsockname cannot lose this race",
    );
    let ours_fd = ours.as_raw_fd();
    drop(ours);
    t.server(call("close").on_fd(ours_fd).gave(&()));
    let other_fd = other.as_raw_fd();
    drop(other);
    t.server(call("close").on_fd(other_fd).gave(&()));
    // ANCHOR_END: race
    Ok(())
}

/// Three connections to one listener: three sockets with the same local
/// address, told apart by the peer's.
fn four_tuple(
    t: &mut Transcript,
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(), Failure> {
    t.section("the 4-tuple: many connections on one port");
    // ANCHOR: four_tuple
    let mut clients = Vec::new();
    for _ in 0..3 {
        let client = Socket::new(Domain::IPV4, Type::STREAM, None);
        t.client(call("socket").args(STREAM).returned(&client));
        let client = client.or_fail("socket")?;
        let connected = client.connect(&addr.into());
        t.client(call("connect").on(&client).args(addr).returned(&connected));
        connected.or_fail(format!("connect {addr}"))?;
        clients.push(client);
    }
    let mut tuples = Vec::new();
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let conn = listener.accept();
        t.server(call("accept").on(listener).returned(&conn));
        let (conn, _) = conn.or_fail("accept")?;
        // Both ends of the connection, as the kernel keeps them.
        let local = conn
            .local_addr()
            .or_fail("getsockname")?
            .as_socket()
            .ok_or(Failure::new("getsockname", "not an IP address"))?;
        t.server(call("getsockname").on(&conn).gave(&()).detail(local));
        let peer = conn.peer_addr().or_fail("getpeername")?;
        let peer = peer
            .as_socket()
            .ok_or(Failure::new("getpeername", "not an IP address"))?;
        t.server(call("getpeername").on(&conn).gave(&()).detail(peer));
        tuples.push((local, peer));
        accepted.push(conn);
    }
    // Printed ports vary from run to run, so the comparisons are printed.
    let same_port = tuples.iter().all(|(local, _)| *local == addr);
    t.server_note(format!(
        "each accepted socket's local address is the listener's: {}",
        yes_no(same_port)
    ));
    let mut peers: Vec<u16> =
        tuples.iter().map(|(_, peer)| peer.port()).collect();
    peers.sort_unstable();
    peers.dedup();
    t.server_note(format!(
        "their peer ports all differ: {}",
        yes_no(peers.len() == tuples.len())
    ));
    t.server_note("(local address, local port, peer address, peer port) names a connection");
    // ANCHOR_END: four_tuple
    for client in clients {
        let client_fd = client.as_raw_fd();
        drop(client);
        t.client(call("close").on_fd(client_fd).gave(&()));
    }
    for conn in accepted {
        let conn_fd = conn.as_raw_fd();
        drop(conn);
        t.server(call("close").on_fd(conn_fd).gave(&()));
    }
    Ok(())
}

/// Two sockets listening on one port, and the kernel choosing which one
/// gets each connection.
fn reuse_port(t: &mut Transcript) -> Result<(), Failure> {
    t.section("SO_REUSEPORT: two listeners on one port");
    // ANCHOR: reuse_port
    let mut listeners: Vec<Socket> = Vec::new();
    let mut addr: SocketAddr = ([127, 0, 0, 1], 0).into();
    for _ in 0..2 {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
        t.server(call("socket").args(STREAM).returned(&listener));
        let listener = listener.or_fail("socket")?;
        // Every socket sharing the port must set it, before bind, and
        // belong to the same user (man 7 socket).
        let set = listener.set_reuse_port(true);
        t.server(
            call("setsockopt")
                .on(&listener)
                .args("SO_REUSEPORT, 1")
                .returned(&set),
        );
        set.or_fail("setsockopt SO_REUSEPORT")?;
        let bound = listener.bind(&addr.into());
        t.server(call("bind").on(&listener).args(addr).returned(&bound));
        bound.or_fail(format!("bind {addr}"))?;
        if addr.port() == 0 {
            addr = listener
                .local_addr()
                .or_fail("getsockname")?
                .as_socket()
                .ok_or(Failure::new("getsockname", "not an IP address"))?;
            t.server(call("getsockname").on(&listener).gave(&()).detail(addr));
        }
        let listening = listener.listen(BACKLOG);
        t.server(
            call("listen").on(&listener).args(BACKLOG).returned(&listening),
        );
        listening.or_fail("listen")?;
        listeners.push(listener);
    }
    // ANCHOR_END: reuse_port

    // ANCHOR: spread
    // One client at a time: connect, wait until one of the two listeners
    // has it, accept it there, close both ends. Which listener gets it is a
    // hash of the 4-tuple, so these calls are counted, not printed.
    t.client_note(format!("{SPREAD_CLIENTS} clients: socket, connect, then the server polls both listeners"));
    t.server_note(
        "and accepts from the one that has the connection (calls not shown)",
    );
    let mut got = [0usize; 2];
    for _ in 0..SPREAD_CLIENTS {
        let client =
            Socket::new(Domain::IPV4, Type::STREAM, None).or_fail("socket")?;
        client.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
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
        drop(client);
        drop(conn);
    }
    for (listener, count) in listeners.iter().zip(got) {
        t.server_note(format!(
            "listener fd {} accepted some of them: {}",
            listener.as_raw_fd(),
            yes_no(count > 0)
        ));
    }
    t.server_note(format!("together: {} of {SPREAD_CLIENTS}", got[0] + got[1]));
    t.server_note(
        "a stale server left running with SO_REUSEPORT would get its share too",
    );
    // ANCHOR_END: spread
    for listener in listeners.into_iter().rev() {
        let listener_fd = listener.as_raw_fd();
        drop(listener);
        t.server(call("close").on_fd(listener_fd).gave(&()));
    }
    Ok(())
}

/// A port that is bound but where nobody listens: the kernel answers the
/// client's SYN with RST.
fn refused(t: &mut Transcript) -> Result<(), Failure> {
    t.section("nobody listening: ECONNREFUSED");
    // ANCHOR: refused
    // Bound and not listening: the port stays ours, so nobody else can
    // start listening on it while the demo runs.
    let holder = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&holder));
    let holder = holder.or_fail("socket")?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = holder.bind(&wanted.into());
    t.server(call("bind").on(&holder).args(wanted).returned(&bound));
    bound.or_fail(format!("bind {wanted}"))?;
    let closed = holder
        .local_addr()
        .or_fail("getsockname")?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&holder).gave(&()).detail(closed));

    let client = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(call("socket").args(STREAM).returned(&client));
    let client = client.or_fail("socket")?;
    let connected = client.connect(&closed.into());
    t.client(call("connect").on(&client).args(closed).returned(&connected));
    t.client_note("the kernel answered the SYN with RST: nobody listens there");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    let holder_fd = holder.as_raw_fd();
    drop(holder);
    t.server(call("close").on_fd(holder_fd).gave(&()));
    // ANCHOR_END: refused
    Ok(())
}

/// Pitfall: a restarted server cannot bind while its last run's
/// connections sit in TIME_WAIT, unless both runs set `SO_REUSEADDR`, as
/// std does and raw socket2 does not.
fn time_wait_rebind(t: &mut Transcript) -> Result<(), Failure> {
    t.section("TIME_WAIT and a restart: std binds, raw socket2 does not");
    // ANCHOR: old_server
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    t.server_note(format!(
        "the old server: TcpListener::bind(\"{wanted}\"), as in lesson 3"
    ));
    let old = TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    t.server(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&old),
    );
    t.server(call("setsockopt").on(&old).args("SO_REUSEADDR, 1").gave(&()));
    t.server(call("bind").on(&old).args(wanted).gave(&()));
    t.server(call("listen").on(&old).args(BACKLOG).gave(&()));
    let addr = old.local_addr().or_fail("getsockname")?;
    t.server(call("getsockname").on(&old).gave(&()).detail(addr));

    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&client),
    );
    t.client(call("connect").on(&client).args(addr).gave(&()));
    let accepted = old.accept();
    t.server(call("accept").on(&old).args("SOCK_CLOEXEC").returned(&accepted));
    let (conn, peer) = accepted.or_fail("accept")?;

    // The server ends the conversation first (lesson 6), so its end of the
    // 4-tuple, on the listening port, will wait in TIME_WAIT.
    let shut = conn.shutdown(std::net::Shutdown::Write);
    t.server(call("shutdown").on(&conn).args("SHUT_WR").returned(&shut));
    shut.or_fail("shutdown")?;
    let mut buf = [0u8; RECV_SIZE];
    let got = (&client).read(&mut buf);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));
    // This 0 is the client's FIN, and the server's side is in TIME_WAIT
    // from the moment it arrived.
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    let old_fd = old.as_raw_fd();
    drop(old);
    t.server(call("close").on_fd(old_fd).gave(&()));
    t.server_note(
        "the old server is gone, its fds closed; the kernel still has:",
    );
    let states = tcp_states(t, 0, &[(addr, peer)])?;
    t.server_note(format!("{addr} -> {peer}: {}", states[0]));
    // ANCHOR_END: old_server

    // ANCHOR: rebind
    t.server_note("a new server with raw socket2 calls:");
    let raw = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(call("socket").args(STREAM).returned(&raw));
    let raw = raw.or_fail("socket")?;
    let bound = raw.bind(&addr.into());
    t.server(call("bind").on(&raw).args(addr).returned(&bound));
    let raw_fd = raw.as_raw_fd();
    drop(raw);
    t.server(call("close").on_fd(raw_fd).gave(&()));

    t.server_note(format!("a new server with TcpListener::bind(\"{addr}\"):"));
    let new = TcpListener::bind(addr);
    let new = new.or_fail(format!("bind {addr}"))?;
    t.server(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&new),
    );
    t.server(call("setsockopt").on(&new).args("SO_REUSEADDR, 1").gave(&()));
    t.server(call("bind").on(&new).args(addr).gave(&()));
    t.server(call("listen").on(&new).args(BACKLOG).gave(&()));
    t.server_note("SO_REUSEADDR on the old socket and the new one: TIME_WAIT no longer blocks");
    let new_fd = new.as_raw_fd();
    drop(new);
    t.server(call("close").on_fd(new_fd).gave(&()));
    // ANCHOR_END: rebind
    Ok(())
}

fn yes_no(answer: bool) -> &'static str {
    if answer { "yes" } else { "no" }
}

/// The states of the connections `local -> peer` as the kernel lists them
/// in /proc/net/tcp, the table `ss -tan` and `netstat` read ("no entry" for
/// one it does not list). The reads are not narrated: their byte counts
/// depend on every other TCP socket on the machine.
fn tcp_states(
    t: &mut Transcript,
    column: usize,
    pairs: &[(SocketAddr, SocketAddr)],
) -> Result<Vec<&'static str>, Failure> {
    const TABLE: &str = "/proc/net/tcp";
    let file = File::open(TABLE);
    t.at(
        column,
        call("open").args(format!("{TABLE:?}, O_RDONLY")).returned(&file),
    );
    let mut file = file.or_fail(format!("open {TABLE}"))?;
    let mut text = String::new();
    file.read_to_string(&mut text).or_fail(format!("read {TABLE}"))?;
    let file_fd = file.as_raw_fd();
    drop(file);
    t.at(column, call("close").on_fd(file_fd).gave(&()));
    Ok(pairs
        .iter()
        .map(|&(local, peer)| {
            tcp_state::find(&text, local, peer).unwrap_or("no entry")
        })
        .collect())
}

/// Tells each client both ends of its connection, then closes first. Every
/// option is a flag, so its effect can be tried: a restart without
/// `--reuse-address` fails while the last run's connections are in
/// TIME_WAIT; two servers with `--reuse-port` share the port.
fn server(
    addr: SocketAddr,
    reuse_address: bool,
    reuse_port: bool,
) -> Result<(), Failure> {
    // ANCHOR: server
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    if reuse_address {
        listener.set_reuse_address(true).or_fail("setsockopt SO_REUSEADDR")?;
    }
    if reuse_port {
        listener.set_reuse_port(true).or_fail("setsockopt SO_REUSEPORT")?;
    }
    // Any failure here ends the program: one line, exit status 1.
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(BACKLOG).or_fail(format!("listen {local}"))?;
    let pid = std::process::id();
    println!("Listening on {local} (pid {pid})");

    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("accept: {err}");
                continue;
            }
        };
        let peer = peer.as_socket().map_or("unknown".into(), |p| p.to_string());
        // The accepted socket's own address: the listener's port, always.
        let here = conn
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map_or("unknown".into(), |a| a.to_string());
        println!("fd {}: {here} <-> {peer}", conn.as_raw_fd());
        let reply = format!("you are {peer}, I am {here} (pid {pid})\n");
        if let Err(err) = (&conn).write_all(reply.as_bytes()) {
            println!("send to {peer}: {err}");
        }
        // Closing first puts this end, on the listening port, in TIME_WAIT.
        drop(conn);
    }
    // ANCHOR_END: server
}

/// Connects, prints both ends of the connection, and prints the reply.
fn client(addr: SocketAddr) -> Result<(), Failure> {
    // ANCHOR: client
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    // ECONNREFUSED (nobody listens), ETIMEDOUT, EADDRNOTAVAIL: one line and
    // exit status 1, naming the call and the address.
    socket.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
    let local = socket.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    println!("Connected: {local} -> {addr}");
    let mut reply = Vec::new();
    (&socket).read_to_end(&mut reply).or_fail(format!("recv {addr}"))?;
    println!("Reply: {}", String::from_utf8_lossy(&reply).trim_end());
    Ok(())
    // ANCHOR_END: client
}

/// Opens and closes connections to its own listener until `connect` fails,
/// each one leaving its client port in TIME_WAIT. With the usual range of
/// 28,232 ports it reaches `max` first; in a network namespace with a small
/// `net.ipv4.ip_local_port_range` it runs out: EADDRNOTAVAIL. (Loopback may
/// reuse a port in TIME_WAIT, `tcp_tw_reuse` = 2, but only one that has sat
/// there for `tcp_tw_reuse_delay`, a second: a fast loop runs out anyway.)
fn exhaust_ports(max: usize) -> Result<(), Failure> {
    // ANCHOR: exhaust
    let listener =
        TcpListener::bind("127.0.0.1:0").or_fail("bind 127.0.0.1:0")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    println!("Listening on {addr}");
    for opened in 0..max {
        // Each connect needs a local port no other connection to `addr`
        // uses; a port in TIME_WAIT still counts as used.
        let client = match TcpStream::connect(addr) {
            Ok(client) => client,
            Err(err) => {
                println!(
                    "{opened} connections made, then no local port was left"
                );
                return Err(Failure::new(format!("connect {addr}"), err));
            }
        };
        let (conn, _) = listener.accept().or_fail("accept")?;
        // The client closes first: its port waits in TIME_WAIT (lesson 6).
        drop(client);
        drop(conn);
    }
    println!("{max} connections made; no local port ran out");
    Ok(())
    // ANCHOR_END: exhaust
}
