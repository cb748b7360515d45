//! Experiment 2: a listener that does not accept. Its accept queue fills,
//! the next clients' `connect` waits instead of failing, and they get in
//! when their SYN is resent after the server has made room. Then more
//! clients than the backlog, accepted one by one: the backlog never
//! limited connections, only the queue.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};
use transcript::{
    Failure, Told, client, client_note, section, server, server_note,
};

use super::{NONBLOCKING, STREAM, close, handshake_ended, polled, queue};

/// How long the demo lets a client's handshake take before calling it
/// stalled. A loopback handshake takes microseconds, even on a busy
/// machine far less than this; a dropped SYN is only sent again after a
/// second. This separates the two with room on both sides.
const HANDSHAKE_WAIT_MS: u16 = 200;

/// How long the demo waits for the stalled clients once there is room.
/// Their SYNs are resent 1 s after the first one, then at 2 s and 3 s with
/// `net.ipv4.tcp_syn_linear_timeouts` (Linux 6.5 and later), or at 3 s and
/// 7 s without it; this covers the third resend either way.
const RETRY_WAIT_MS: u16 = 8000;

/// How long the server waits for a connection a client says it completed.
const ACCEPT_WAIT_MS: u16 = 1000;

/// How many more clients the demo connects after the queue has drained, to
/// show that accepted connections do not count against the backlog.
const EXTRA_CLIENTS: usize = 4;

/// A client whose SYN was dropped, and when it called `connect`.
type Stalled = (Socket, Instant);

// ANCHOR: full_queue
/// `clients` clients against `listen(backlog)` and no `accept`; then the
/// server makes room, and then holds more connections than its backlog.
pub fn run(backlog: i32, clients: usize) -> Result<(), Failure> {
    section(format!(
        "listen({backlog}), {clients} clients, and nobody calls accept yet"
    ));
    let (listener, addr) = listen(backlog)?;
    let (mut connected, stalled) = connect_all(addr, clients)?;
    let queued = who_got_in(&listener, backlog, clients, &connected, &stalled)?;

    section(
        "accept() makes room; the waiting clients get in when their SYN \
         is resent",
    );
    let mut accepted = Vec::new();
    for _ in 0..queued {
        // Each queued connection is already complete: accept only takes it.
        let (conn, _) =
            listener.accept().told(|| server("accept").on(&listener))?;
        accepted.push(conn);
    }
    queue(&listener)?;
    let_the_resends_in(
        &listener,
        addr,
        stalled,
        &mut connected,
        &mut accepted,
    )?;

    section("accepted connections no longer count");
    more_than_the_backlog(&listener, addr, &mut connected, &mut accepted)?;
    let held = queue(&listener)?;
    server_note(format!(
        "holding {} connections with listen({backlog}): {} queued, limit {}",
        accepted.len(),
        held.waiting,
        held.limit
    ));
    server_note(
        "the backlog bounds the queue of connections not yet accepted, \
         nothing else",
    );
    let open = accepted.len() + connected.len() + 1;
    drop((accepted, connected, listener));
    server_note(format!(
        "the demo drops those sockets: {open} close() calls, not shown"
    ));
    Ok(())
}
// ANCHOR_END: full_queue

// ANCHOR: listen
/// A listener with `backlog` on a port the kernel picks.
fn listen(backlog: i32) -> Result<(Socket, SocketAddr), Failure> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&any_port.into())
        .told(|| server("bind").on(&listener).args(any_port))?;
    let addr = listener
        .local_addr()
        .told(|| server("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener
        .listen(backlog)
        .told(|| server("listen").on(&listener).args(backlog))?;
    queue(&listener)?;
    Ok((listener, addr))
}
// ANCHOR_END: listen

// ANCHOR: connect_all
/// Each client connects without blocking, then gives the handshake a
/// bounded time to finish. On loopback it finishes at once, unless the
/// listener's accept queue is full: then the kernel drops the SYN.
fn connect_all(
    addr: SocketAddr,
    clients: usize,
) -> Result<(Vec<Socket>, Vec<Stalled>), Failure> {
    let (mut connected, mut stalled) = (Vec::new(), Vec::new());
    for number in 1..=clients {
        // SOCK_NONBLOCK: connect() starts the handshake and returns at once.
        let sock = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None)
            .told(|| client("socket").args(NONBLOCKING))?;
        let started = Instant::now();
        // EINPROGRESS is not a failure: the SYN is out, the answer is not in.
        match sock
            .connect(&addr.into())
            .traced(|| client("connect").on(&sock).args(addr))
        {
            Err(err) if err.raw_os_error() != Some(libc::EINPROGRESS) => {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
            _ => {}
        }
        if number == 1 {
            client_note(
                "EINPROGRESS: the SYN is out; \
                 poll says when the handshake ends",
            );
        }
        // POLLOUT means the handshake is over, either way; SO_ERROR says how.
        let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
        let wait = format!("{HANDSHAKE_WAIT_MS} ms");
        let ready = poll(&mut fds, PollTimeout::from(HANDSHAKE_WAIT_MS))
            .map(i64::from)
            .told(|| polled(client, &fds, &wait))?;
        if ready > 0 {
            handshake_ended(&sock, addr)?;
            connected.push(sock);
        } else {
            client_note("no answer: the handshake has not finished");
            stalled.push((sock, started));
        }
    }
    Ok((connected, stalled))
}
// ANCHOR_END: connect_all

// ANCHOR: who_got_in
/// Reads the accept queue after every client tried: how many it holds.
fn who_got_in(
    listener: &Socket,
    backlog: i32,
    clients: usize,
    connected: &[Socket],
    stalled: &[Stalled],
) -> Result<u32, Failure> {
    let queue = queue(listener)?;
    let queued = queue.waiting;
    if queued as usize == connected.len() && queued == queue.limit + 1 {
        server_note(format!(
            "{queued} of {clients} clients finished the handshake: \
             backlog {backlog} + 1"
        ));
    } else {
        server_note(format!(
            "{} of {clients} clients finished the handshake; {queued} are \
             queued",
            connected.len()
        ));
    }
    if !stalled.is_empty() {
        client_note(format!(
            "{} still in connect(): the kernel dropped their SYNs, no error, \
             no RST",
            stalled.len()
        ));
    }
    Ok(queued)
}
// ANCHOR_END: who_got_in

// ANCHOR: let_the_resends_in
/// Watches every waiting client at once; the server accepts each one as
/// soon as it is in, so that the queue has room for the next. The kernel
/// resends each SYN on its own: the clients only wait.
fn let_the_resends_in(
    listener: &Socket,
    addr: SocketAddr,
    mut waiting: Vec<Stalled>,
    connected: &mut Vec<Socket>,
    accepted: &mut Vec<Socket>,
) -> Result<(), Failure> {
    let mut waited = Vec::new();
    let give_up = Instant::now() + Duration::from_millis(RETRY_WAIT_MS.into());
    let wait = format!("at most {RETRY_WAIT_MS} ms");
    while !waiting.is_empty() {
        let left = give_up.saturating_duration_since(Instant::now());
        let left_ms = u16::try_from(left.as_millis()).unwrap_or(RETRY_WAIT_MS);
        let mut fds: Vec<PollFd> = waiting
            .iter()
            .map(|(sock, _)| PollFd::new(sock.as_fd(), PollFlags::POLLOUT))
            .collect();
        let ready = poll(&mut fds, PollTimeout::from(left_ms))
            .map(i64::from)
            .told(|| polled(client, &fds, &wait))?;
        let done: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        drop(fds);
        if ready == 0 {
            give_up_on(waiting);
            break;
        }
        let (now_in, still): (Vec<_>, Vec<_>) =
            waiting.into_iter().zip(done).partition(|(_, done)| *done);
        waiting = still.into_iter().map(|(pair, _)| pair).collect();
        for ((sock, started), _) in now_in {
            waited.push(started.elapsed());
            handshake_ended(&sock, addr)?;
            accepted.extend(accept_when_ready(listener)?);
            connected.push(sock);
        }
    }
    say_how_long(&waited);
    Ok(())
}
// ANCHOR_END: let_the_resends_in

/// The clients whose resends all found the queue full: closed.
fn give_up_on(waiting: Vec<Stalled>) {
    client_note(format!(
        "still waiting after {} s: their resends found the queue full; \
         give up",
        RETRY_WAIT_MS / 1000
    ));
    for (sock, _) in waiting {
        close(sock, client);
    }
}

// ANCHOR: accept_when_ready
/// Waits for the listener to be readable, which for a listening socket
/// means its accept queue is not empty, and accepts. `None` when the
/// client that says it is connected never reaches the queue.
fn accept_when_ready(listener: &Socket) -> Result<Option<Socket>, Failure> {
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let wait = format!("{ACCEPT_WAIT_MS} ms");
    let ready = poll(&mut fds, PollTimeout::from(ACCEPT_WAIT_MS))
        .map(i64::from)
        .told(|| polled(server, &fds, &wait))?;
    if ready == 0 {
        server_note(
            "nothing to accept: the client believes it is connected, \
             the server has no such connection",
        );
        return Ok(None);
    }
    let (conn, _) = listener.accept().told(|| server("accept").on(listener))?;
    Ok(Some(conn))
}
// ANCHOR_END: accept_when_ready

/// Says when the waiting clients got in, in words that cannot vary: each
/// wait fell between the first resend (1 s) and the second (2 s after the
/// first SYN with Linux 6.5's linear SYN timeouts, 3 s on older kernels).
fn say_how_long(waited: &[Duration]) {
    if waited.is_empty() {
        return;
    }
    let first_resend = waited.iter().all(|d| {
        (Duration::from_millis(900)..Duration::from_secs(2)).contains(d)
    });
    client_note(if first_resend {
        "each got in about 1 s after its connect(): when its first SYN was \
         resent"
    } else {
        "they got in when their SYNs were resent (1 s, then 3 s, 7 s... \
         after connect)"
    });
}

// ANCHOR: more_than_the_backlog
/// More clients, each accepted as soon as it is in: with room in the
/// queue, a blocking `connect` returns at once.
fn more_than_the_backlog(
    listener: &Socket,
    addr: SocketAddr,
    connected: &mut Vec<Socket>,
    accepted: &mut Vec<Socket>,
) -> Result<(), Failure> {
    for _ in 0..EXTRA_CLIENTS {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)
            .told(|| client("socket").args(STREAM))?;
        sock.connect(&addr.into())
            .told(|| client("connect").on(&sock).args(addr))?;
        connected.push(sock);
        let (conn, _) =
            listener.accept().told(|| server("accept").on(listener))?;
        accepted.push(conn);
    }
    Ok(())
}
// ANCHOR_END: more_than_the_backlog
