//! # Lesson 8: what `listen(backlog)` really bounds
//!
//! The idea: the backlog is the length of the *accept queue*, the queue of
//! connections whose handshake the kernel has finished and that the program
//! has not yet taken with `accept`. It is not a limit on connections: an
//! accepted connection leaves the queue and no longer counts. On Linux the
//! queue holds `backlog + 1` connections, `net.core.somaxconn` silently
//! lowers any larger backlog, and when the queue is full the kernel drops
//! new SYNs, so a client's `connect` does not fail: it waits, and gets in
//! when its SYN is sent again after the server has accepted.
//!
//! What was wrong before: the article comments `listen(5)` as "the maximum
//! number of connections". Lessons 2 and 3 passed a backlog without saying
//! what it does. Here clients connect with nonblocking `connect` (it returns
//! `EINPROGRESS`; `poll` says when the handshake ends; `getsockopt(SO_ERROR)`
//! says how), so the demo can count who got in without hanging.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};
use transcript::cli::seconds;
use transcript::{Call, Failure, OrFail, OsError, Transcript, bytes, call};

/// Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// The kernel's ceiling for any backlog (see `man 2 listen`, NOTES).
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

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

/// The demo's defaults: the smallest queue that still shows the `+ 1`, and
/// two clients more than it holds.
const DEFAULT_BACKLOG: i32 = 1;
const DEFAULT_CLIENTS: usize = 4;

/// How many more clients the demo connects after the queue has drained, to
/// show that accepted connections do not count against the backlog.
const EXTRA_CLIENTS: usize = 4;

#[derive(Parser)]
#[command(
    name = "lesson-08",
    bin_name = "lesson-08",
    about = "Lesson 8: what listen(backlog) really bounds: the accept queue, not the connections"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Fill the accept queue, watch connect stall, then accept (the default)
    Demo {
        /// The backlog passed to listen()
        #[arg(long, default_value_t = DEFAULT_BACKLOG)]
        backlog: i32,
        /// How many clients connect before the server accepts anyone
        #[arg(long, default_value_t = DEFAULT_CLIENTS)]
        clients: usize,
    },
    /// Listen, wait for Enter before accepting, then accept and hold connections
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// The backlog passed to listen()
        #[arg(long, default_value_t = 1)]
        backlog: i32,
        /// How many accepted connections to keep open; beyond that the oldest is closed
        #[arg(long, default_value_t = 64)]
        hold: usize,
    },
    /// Open many connections at once and report when each one completes
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How many connections to open
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Seconds to wait for the last connection before giving up on it
        #[arg(long, default_value_t = 10.0)]
        wait: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-08", || match cli.command {
        None => demo(DEFAULT_BACKLOG, DEFAULT_CLIENTS),
        Some(Command::Demo { backlog, clients }) => {
            demo(checked_backlog(backlog)?, checked_clients(clients)?)
        }
        Some(Command::Server { addr, backlog, hold }) => {
            server(addr, checked_backlog(backlog)?, hold.max(1))
        }
        Some(Command::Client { addr, clients, wait }) => {
            client(addr, checked_clients(clients)?, seconds("--wait", wait)?)
        }
    })
}

/// The whole story in one thread. No thread is needed: the kernel, not
/// `accept`, completes handshakes, and nonblocking `connect` plus `poll`
/// with a bounded wait lets one thread watch every client.
fn demo(backlog: i32, clients: usize) -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);

    // ANCHOR: somaxconn
    // The kernel's ceiling for every backlog, per network namespace.
    let file = File::open(SOMAXCONN);
    t.server(
        call("open")
            .args(format!("{SOMAXCONN:?}, O_RDONLY|O_CLOEXEC"))
            .returned(&file),
    );
    let mut file = file.or_fail(format!("open {SOMAXCONN}"))?;
    let mut text = [0u8; 32];
    let got = file.read(&mut text);
    let n = *got.as_ref().unwrap_or(&0);
    t.server(
        call("read")
            .on(&file)
            .args(text.len())
            .returned(&got)
            .detail(bytes(&text[..n])),
    );
    got.or_fail(format!("read {SOMAXCONN}"))?;
    let somaxconn: u32 = String::from_utf8_lossy(&text[..n])
        .trim()
        .parse()
        .map_err(|err| Failure::new(format!("read {SOMAXCONN}"), err))?;
    let file_fd = file.as_raw_fd();
    drop(file);
    t.server(call("close").on_fd(file_fd).gave(&()));

    // listen() takes any int and quietly lowers it to somaxconn: ask for the
    // most an int can say, then ask the kernel what it kept.
    let greedy = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&greedy),
    );
    let greedy = greedy.or_fail("socket")?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = greedy.bind(&any_port.into());
    t.server(call("bind").on(&greedy).args(any_port).returned(&bound));
    bound.or_fail(format!("bind {any_port}"))?;
    let listening = greedy.listen(i32::MAX);
    t.server(call("listen").on(&greedy).args(i32::MAX).returned(&listening));
    listening.or_fail("listen")?;
    let queue = accept_queue(&greedy);
    t.server(queue_call(&greedy, &queue));
    let (_, limit) = queue.or_fail("getsockopt TCP_INFO")?;
    t.server_note(
        "for a listener, TCP_INFO reports the accept queue: tcpi_unacked = its length, tcpi_sacked = its limit",
    );
    if limit == somaxconn {
        t.server_note(format!(
            "asked for {}, got somaxconn = {somaxconn}: no error, no warning",
            i32::MAX
        ));
    } else {
        t.server_note(format!("asked for {}, got {limit}", i32::MAX));
    }
    let greedy_fd = greedy.as_raw_fd();
    drop(greedy);
    t.server(call("close").on_fd(greedy_fd).gave(&()));
    // ANCHOR_END: somaxconn

    // ANCHOR: listen
    t.section(format!(
        "listen({backlog}), {clients} clients, and nobody calls accept yet"
    ));
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&listener),
    );
    let listener = listener.or_fail("socket")?;
    let bound = listener.bind(&any_port.into());
    t.server(call("bind").on(&listener).args(any_port).returned(&bound));
    bound.or_fail(format!("bind {any_port}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));
    let listening = listener.listen(backlog);
    t.server(call("listen").on(&listener).args(backlog).returned(&listening));
    listening.or_fail("listen")?;
    let queue = accept_queue(&listener);
    t.server(queue_call(&listener, &queue));
    let (_, limit) = queue.or_fail("getsockopt TCP_INFO")?;
    // ANCHOR_END: listen

    // ANCHOR: connect
    // Each client connects without blocking, then gives the handshake a
    // bounded time to finish. On loopback it finishes at once, unless the
    // listener's accept queue is full: then the kernel drops the SYN.
    let mut connected = Vec::new();
    let mut stalled = Vec::new();
    for number in 1..=clients {
        // SOCK_NONBLOCK: connect() starts the handshake and returns at once.
        let client =
            Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None);
        t.client(
            call("socket")
                .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
                .returned(&client),
        );
        let client = client.or_fail("socket")?;
        let started = Instant::now();
        // EINPROGRESS is not a failure: the SYN is out, the answer is not in.
        let connecting = client.connect(&addr.into());
        t.client(call("connect").on(&client).args(addr).returned(&connecting));
        match connecting {
            Err(err) if err.raw_os_error() != Some(libc::EINPROGRESS) => {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
            _ => {}
        }
        if number == 1 {
            t.client_note("EINPROGRESS: the SYN is out; poll says when the handshake ends");
        }
        // POLLOUT means the handshake is over, either way; SO_ERROR says how.
        let mut fds = [PollFd::new(client.as_fd(), PollFlags::POLLOUT)];
        let ready = poll(&mut fds, PollTimeout::from(HANDSHAKE_WAIT_MS));
        t.client(poll_call(&fds, &format!("{HANDSHAKE_WAIT_MS} ms"), &ready));
        if ready.or_fail("poll")? > 0 {
            let status = client.take_error();
            t.client(so_error_call(&client, &status));
            if let Some(err) = status.or_fail("getsockopt SO_ERROR")? {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
            connected.push(client);
        } else {
            t.client_note("no answer: the handshake has not finished");
            stalled.push((client, started));
        }
    }
    let queue = accept_queue(&listener);
    t.server(queue_call(&listener, &queue));
    let (queued, _) = queue.or_fail("getsockopt TCP_INFO")?;
    if queued as usize == connected.len() && queued == limit + 1 {
        t.server_note(format!("{queued} of {clients} clients finished the handshake: backlog {backlog} + 1"));
    } else {
        t.server_note(format!(
            "{} of {clients} clients finished the handshake; {queued} are queued",
            connected.len()
        ));
    }
    if !stalled.is_empty() {
        t.client_note(format!(
            "{} still in connect(): the kernel dropped their SYNs, no error, no RST",
            stalled.len()
        ));
    }
    // ANCHOR_END: connect

    // ANCHOR: accept
    t.section("accept() makes room; the waiting clients get in when their SYN is resent");
    let mut accepted = Vec::new();
    for _ in 0..queued {
        // Each queued connection is already complete: accept only takes it.
        let conn = listener.accept();
        t.server(call("accept").on(&listener).returned(&conn));
        accepted.push(conn.or_fail("accept")?.0);
    }
    let queue = accept_queue(&listener);
    t.server(queue_call(&listener, &queue));
    queue.or_fail("getsockopt TCP_INFO")?;

    // All waiting clients are watched at once, and the server accepts each
    // one as soon as it is in, so that the queue has room for the next.
    let mut resent_after = Vec::new();
    let mut waiting = stalled;
    let give_up = Instant::now() + Duration::from_millis(RETRY_WAIT_MS.into());
    while !waiting.is_empty() {
        let left = give_up.saturating_duration_since(Instant::now());
        let left_ms = u16::try_from(left.as_millis()).unwrap_or(RETRY_WAIT_MS);
        // The kernel resends each SYN on its own; the clients only wait.
        let mut fds: Vec<PollFd> = waiting
            .iter()
            .map(|(client, _)| PollFd::new(client.as_fd(), PollFlags::POLLOUT))
            .collect();
        let ready = poll(&mut fds, PollTimeout::from(left_ms));
        t.client(poll_call(
            &fds,
            &format!("at most {RETRY_WAIT_MS} ms"),
            &ready,
        ));
        let done: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        drop(fds);
        if ready.or_fail("poll")? == 0 {
            t.client_note(format!(
                "still waiting after {} s: their resends found the queue full; give up",
                RETRY_WAIT_MS / 1000
            ));
            for (client, _) in waiting.drain(..) {
                let client_fd = client.as_raw_fd();
                drop(client);
                t.client(call("close").on_fd(client_fd).gave(&()));
            }
            break;
        }
        let (now_in, still): (Vec<_>, Vec<_>) =
            waiting.into_iter().zip(done).partition(|(_, done)| *done);
        waiting = still.into_iter().map(|(pair, _)| pair).collect();
        for ((client, started), _) in now_in {
            resent_after.push(started.elapsed());
            let status = client.take_error();
            t.client(so_error_call(&client, &status));
            if let Some(err) = status.or_fail("getsockopt SO_ERROR")? {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
            // The listener is readable when its accept queue is not empty.
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(ACCEPT_WAIT_MS));
            t.server(poll_call(&fds, &format!("{ACCEPT_WAIT_MS} ms"), &ready));
            if ready.or_fail("poll")? > 0 {
                let conn = listener.accept();
                t.server(call("accept").on(&listener).returned(&conn));
                accepted.push(conn.or_fail("accept")?.0);
            } else {
                t.server_note(
                    "nothing to accept: the client believes it is connected, the server has no such connection",
                );
            }
            connected.push(client);
        }
    }
    if !resent_after.is_empty() {
        // Print what cannot vary: each wait fell in the window between the
        // first resend (1 s) and the second (2 s after the first SYN with
        // Linux 6.5's linear SYN timeouts, 3 s on older kernels).
        let first_resend = resent_after.iter().all(|d| {
            (Duration::from_millis(900)..Duration::from_secs(2)).contains(d)
        });
        if first_resend {
            t.client_note("each got in about 1 s after its connect(): when its first SYN was resent");
        } else {
            t.client_note("they got in when their SYNs were resent (1 s, then 3 s, 7 s... after connect)");
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: more
    t.section("accepted connections no longer count");
    for _ in 0..EXTRA_CLIENTS {
        // A blocking connect: with room in the queue it returns at once.
        let client = Socket::new(Domain::IPV4, Type::STREAM, None);
        t.client(
            call("socket")
                .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
                .returned(&client),
        );
        let client = client.or_fail("socket")?;
        let connecting = client.connect(&addr.into());
        t.client(call("connect").on(&client).args(addr).returned(&connecting));
        connecting.or_fail(format!("connect {addr}"))?;
        connected.push(client);
        let conn = listener.accept();
        t.server(call("accept").on(&listener).returned(&conn));
        accepted.push(conn.or_fail("accept")?.0);
    }
    let queue = accept_queue(&listener);
    t.server(queue_call(&listener, &queue));
    let (queued, limit) = queue.or_fail("getsockopt TCP_INFO")?;
    t.server_note(format!(
        "holding {} connections with listen({backlog}): {queued} queued, limit {limit}",
        accepted.len()
    ));
    t.server_note("the backlog bounds the queue of connections not yet accepted, nothing else");
    // ANCHOR_END: more

    let open = accepted.len() + connected.len() + 1;
    drop((accepted, connected, listener));
    t.server_note(format!(
        "the demo drops those sockets: {open} close() calls, not shown"
    ));

    newcomer_first(&mut t)
}

/// "First come, first served" is not what the queue does: a client whose
/// SYN was dropped waits for its kernel to send it again, about a second
/// later, and a newcomer that arrives when there is room goes first.
fn newcomer_first(t: &mut Transcript) -> Result<(), Failure> {
    // ANCHOR: newcomer
    t.section(
        "a newcomer overtakes a client that waits for its SYN to be resent",
    );
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&listener),
    );
    let listener = listener.or_fail("socket")?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = listener.bind(&any_port.into());
    t.server(call("bind").on(&listener).args(any_port).returned(&bound));
    bound.or_fail(format!("bind {any_port}"))?;
    // Backlog 0: the queue holds one connection (backlog + 1).
    let listening = listener.listen(0);
    t.server(call("listen").on(&listener).args(0).returned(&listening));
    listening.or_fail("listen")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;

    // A takes the one place in the queue.
    let a = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").returned(&a),
    );
    let a = a.or_fail("socket")?;
    let connecting = a.connect(&addr.into());
    t.client(call("connect").on(&a).args(addr).returned(&connecting));
    connecting.or_fail(format!("connect {addr}"))?;
    let queue = accept_queue(&listener);
    t.server(queue_call(&listener, &queue));
    queue.or_fail("getsockopt TCP_INFO")?;
    // B finds the queue full: its SYN is dropped, and its kernel will send
    // it again in about a second (RFC 6298).
    let b = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
            .returned(&b),
    );
    let b = b.or_fail("socket")?;
    let connecting = b.connect(&addr.into());
    t.client(call("connect").on(&b).args(addr).returned(&connecting));
    let mut fds = [PollFd::new(b.as_fd(), PollFlags::POLLOUT)];
    let ready = poll(&mut fds, PollTimeout::ZERO);
    t.client(poll_call(&fds, "0 ms", &ready));
    t.client_note("B is still in connect(): its SYN was dropped");

    // The server makes room; C arrives now and is answered at once.
    let first = listener.accept();
    t.server(call("accept").on(&listener).returned(&first));
    let (first, _) = first.or_fail("accept")?;
    let c = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").returned(&c),
    );
    let c = c.or_fail("socket")?;
    let connecting = c.connect(&addr.into());
    t.client(call("connect").on(&c).args(addr).returned(&connecting));
    connecting.or_fail(format!("connect {addr}"))?;
    let second = listener.accept();
    t.server(call("accept").on(&listener).returned(&second));
    let (second, peer) = second.or_fail("accept")?;
    let from_c = peer.as_socket().is_some()
        && peer.as_socket() == c.local_addr().ok().and_then(|a| a.as_socket());
    t.server_note(if from_c {
        "that is C: it came after B and is accepted first. B gets in only when its SYN is resent"
    } else {
        "NOT what this part shows: B came first"
    });
    for socket in [second, first, listener] {
        let fd = socket.as_raw_fd();
        drop(socket);
        t.server(call("close").on_fd(fd).gave(&()));
    }
    for socket in [c, b, a] {
        let fd = socket.as_raw_fd();
        drop(socket);
        t.client(call("close").on_fd(fd).gave(&()));
    }
    // ANCHOR_END: newcomer
    Ok(())
}

// ANCHOR: tcp_info
/// `getsockopt(fd, IPPROTO_TCP, TCP_INFO)`. Neither socket2 nor nix wraps
/// it. For a listening socket Linux fills `tcpi_unacked` with the accept
/// queue's length and `tcpi_sacked` with its limit (the same two numbers
/// `ss -ltn` shows as Recv-Q and Send-Q).
fn accept_queue(listener: &Socket) -> io::Result<(u32, u32)> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is
    // that large, and sets `len` to what it wrote; the struct is plain data
    // for which all-zero bytes are a valid value.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, then (partly) filled in by the kernel.
    let info = unsafe { info.assume_init() };
    Ok((info.tcpi_unacked, info.tcpi_sacked))
}
// ANCHOR_END: tcp_info

/// The transcript line for `getsockopt(TCP_INFO)` on a listener.
fn queue_call(listener: &Socket, queue: &io::Result<(u32, u32)>) -> Call {
    let line = call("getsockopt").on(listener).args("TCP_INFO");
    match queue {
        Ok((queued, limit)) => line
            .gave(&())
            .detail(format!("accept queue {queued}, limit {limit}")),
        Err(err) => line.failed(err),
    }
}

/// The transcript line for `poll`: the descriptors and what each waited
/// for, how long, and which came back ready with what.
fn poll_call(fds: &[PollFd], wait: &str, ready: &nix::Result<i32>) -> Call {
    let watched: Vec<String> = fds
        .iter()
        .map(|fd| {
            format!("fd {} {}", fd.as_fd().as_raw_fd(), events(fd.events()))
        })
        .collect();
    let line = call("poll").args(format!("[{}], {wait}", watched.join(", ")));
    match ready {
        Ok(0) => line.gave(&0i64).detail("timed out"),
        Ok(n) => {
            let fired: Vec<String> = fds
                .iter()
                .filter_map(|fd| {
                    fd.revents().filter(|e| !e.is_empty()).map(|e| (fd, e))
                })
                .map(|(fd, e)| {
                    if fds.len() == 1 {
                        events(e)
                    } else {
                        format!("fd {} {}", fd.as_fd().as_raw_fd(), events(e))
                    }
                })
                .collect();
            line.gave(&i64::from(*n)).detail(fired.join(", "))
        }
        Err(errno) => line.failed(errno),
    }
}

/// Poll flags by name, `POLLOUT|POLLERR`.
fn events(flags: PollFlags) -> String {
    let names = [
        (PollFlags::POLLIN, "POLLIN"),
        (PollFlags::POLLOUT, "POLLOUT"),
        (PollFlags::POLLERR, "POLLERR"),
        (PollFlags::POLLHUP, "POLLHUP"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| *name)
        .collect();
    set.join("|")
}

/// The transcript line for `getsockopt(SO_ERROR)`: how a nonblocking
/// connect ended. 0 means it succeeded; otherwise the value is the errno
/// connect would have returned.
fn so_error_call(
    client: &Socket,
    status: &io::Result<Option<io::Error>>,
) -> Call {
    let line = call("getsockopt").on(client).args("SO_ERROR");
    match status {
        Ok(None) => line.gave(&()).detail("value 0: connected"),
        Ok(Some(err)) => line.gave(&()).detail(format!(
            "value {}: {}",
            err.errno_name(),
            err.detail()
        )),
        Err(err) => line.failed(err),
    }
}

/// Listens, waits for Enter, then accepts and holds connections, greeting
/// each with what the accept queue looked like when it was taken.
fn server(addr: SocketAddr, backlog: i32, hold: usize) -> Result<(), Failure> {
    // ANCHOR: server
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    // This server closes connections first, leaving them in TIME_WAIT:
    // without SO_REUSEADDR a restart could not bind the port (lesson 7).
    listener.set_reuse_address(true).or_fail("setsockopt SO_REUSEADDR")?;
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(backlog).or_fail("listen")?;
    let (_, limit) = accept_queue(&listener).or_fail("getsockopt TCP_INFO")?;
    println!(
        "Listening on {local} (backlog {backlog}: the accept queue holds {limit} + 1)"
    );
    println!(
        "Not accepting yet. Connect clients, watch `ss -ltn` and `ss -tan`, then press Enter."
    );

    // Until Enter (or the end of input), the kernel alone answers clients.
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).or_fail("read stdin")?;
    println!("Accepting");

    let mut held = VecDeque::new();
    let mut count = 0u64;
    loop {
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            // Out of descriptors (EMFILE), or another error about one
            // connection, not the server (man 2 accept). Letting go of the
            // oldest connection frees a descriptor for the next.
            Err(err) => {
                eprintln!("accept: {err}");
                if held.pop_front().is_none() {
                    return Err(Failure::new("accept", err));
                }
                continue;
            }
        };
        count += 1;
        let peer =
            peer.as_socket().map_or("unknown".to_string(), |p| p.to_string());
        let (queued, limit) =
            accept_queue(&listener).or_fail("getsockopt TCP_INFO")?;
        let greeting = format!(
            "connection #{count}; {queued} waiting in the accept queue (limit {limit})\n"
        );
        // A greeting that does not fit or a client already gone is that
        // client's problem; MSG_NOSIGNAL (socket2 sets it) turns the latter
        // into an error instead of a fatal SIGPIPE.
        if let Err(err) = conn.send(greeting.as_bytes()) {
            println!("send to {peer}: {err}");
        }
        held.push_back(conn);
        if held.len() > hold {
            held.pop_front();
        }
        let holding = match held.len() {
            1 => "1 connection".to_string(),
            n => format!("{n} connections"),
        };
        println!(
            "Accepted #{count} from {peer}: holding {holding}, {queued} waiting in the accept queue (limit {limit})"
        );
    }
    // ANCHOR_END: server
}

/// Opens `clients` connections at once and reports when each completes.
fn client(
    addr: SocketAddr,
    clients: usize,
    wait: Duration,
) -> Result<(), Failure> {
    // ANCHOR: client
    let start = Instant::now();
    let mut pending = Vec::new();
    for number in 1..=clients {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking(),
            None,
        )
        .or_fail("socket")?;
        match socket.connect(&addr.into()) {
            Ok(()) => println!("connection {number}: connected at once"),
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(err) => {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
        }
        pending.push((number, socket));
    }
    println!(
        "{clients} connect() calls made; waiting up to {wait:?} for the handshakes"
    );

    let mut done = Vec::new();
    let mut failed = 0;
    while !pending.is_empty() {
        let left = wait.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        let timeout = PollTimeout::try_from(left)
            .map_err(|err| Failure::new("poll", err))?;
        let mut fds: Vec<PollFd> = pending
            .iter()
            .map(|(_, s)| PollFd::new(s.as_fd(), PollFlags::POLLOUT))
            .collect();
        let ready = poll(&mut fds, timeout).or_fail("poll")?;
        if ready == 0 {
            break;
        }
        let finished: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        drop(fds);
        let mut still = Vec::new();
        for ((number, socket), finished) in pending.into_iter().zip(finished) {
            if !finished {
                still.push((number, socket));
                continue;
            }
            let after = start.elapsed().as_secs_f64();
            match socket.take_error().or_fail("getsockopt SO_ERROR")? {
                None => println!(
                    "connection {number}: connected after {after:.1} s"
                ),
                Some(err) => {
                    println!(
                        "connection {number}: failed after {after:.1} s: {err}"
                    );
                    failed += 1;
                }
            }
            done.push(socket);
        }
        pending = still;
    }
    println!(
        "{} of {clients} connected, {failed} failed, {} still waiting",
        done.len() - failed,
        pending.len()
    );
    if !pending.is_empty() {
        println!(
            "still waiting means the server's accept queue was full: see `ss -tan` (SYN-SENT)"
        );
    }
    println!("Holding the connections open; press Enter to close them");
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).or_fail("read stdin")?;
    Ok(())
    // ANCHOR_END: client
}

/// A backlog `listen` will take as meant: negative values are legal in C
/// but mean "as large as allowed", which is not what anyone types on purpose.
fn checked_backlog(backlog: i32) -> Result<i32, Failure> {
    if backlog < 0 {
        return Err(Failure::new(
            "--backlog",
            format!("{backlog} is negative; use 0 or more"),
        ));
    }
    Ok(backlog)
}

/// Enough clients to overflow a small queue; few enough to print.
fn checked_clients(clients: usize) -> Result<usize, Failure> {
    const MOST: usize = 200;
    if !(1..=MOST).contains(&clients) {
        return Err(Failure::new(
            "--clients",
            format!("{clients} is not between 1 and {MOST}"),
        ));
    }
    Ok(clients)
}
