//! The demo, in one thread, as in lesson 12: the clients act between the
//! server's turns, and each turn waits (bounded) until the events it is to
//! handle have arrived. First two experiments on bare `epoll` descriptors
//! (one read per event under both triggers; `EMFILE` without a spare), then
//! the server itself, edge-triggered.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use transcript::demo::{
    SETTLE_LIMIT, close_client, connect, lowest_free_descriptor, recv, send,
    settle, socket, wait_line,
};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, client, client_note, section,
    server, server_note,
};

use crate::conn::RECV_SIZE;
use crate::interests::register;
use crate::server::{Limits, Server};
use crate::shutdown::close;

/// How `interests.rs` prints interests, as strace does.
pub use transcript::demo::epoll_flags;

/// The demo's idle limit: long enough that no step comes near it.
const DEMO_IDLE: Duration = Duration::from_secs(10);

/// How many more turns the naive loop of `spin_without_a_spare` is watched.
const SPIN_TURNS: usize = 1000;

/// The timeline: the two triggers, the server, EMFILE, then Ctrl-C.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "clients"]);
    level_and_edge()?;
    let mut server = edge_triggered_server()?;
    // The problem first, then the way out.
    spin_without_a_spare()?;
    out_of_descriptors(&mut server)?;
    shutdown_by_signal(server)
}

/// Two clients, A slow to finish its line, served by one thread.
fn edge_triggered_server() -> Result<Server, Failure> {
    section("the server, edge-triggered: it drains every socket");
    let limits = Limits { max_conns: 64, idle: DEMO_IDLE, edge: true };
    let mut server = Server::start(([127, 0, 0, 1], 0).into(), limits)?;
    let addr = server.local;
    let listener = listener_fd(&server);
    let a = socket("A")?;
    let b = socket("B")?;
    connect(&a, addr)?;
    let a_fd = accepted(&mut server, listener)?;
    connect(&b, addr)?;
    let b_fd = accepted(&mut server, listener)?;
    send(&a, b"slow ")?;
    send(&b, b"hello from B\n")?;
    turn(&mut server, &[(a_fd, PollFlags::POLLIN), (b_fd, PollFlags::POLLIN)])?;
    recv(&b)?;
    send(&a, b"client\n")?;
    turn(&mut server, &[(a_fd, PollFlags::POLLIN)])?;
    recv(&a)?;
    close_client(a);
    close_client(b);
    turn(&mut server, &[(a_fd, PollFlags::POLLIN), (b_fd, PollFlags::POLLIN)])?;
    Ok(server)
}

/// SIGINT with a request in flight: answered, then a lingering close.
fn shutdown_by_signal(mut server: Server) -> Result<(), Failure> {
    section("Ctrl-C: a signalfd in the same epoll");
    let f = socket("F")?;
    connect(&f, server.local)?;
    let listener = listener_fd(&server);
    let f_fd = accepted(&mut server, listener)?;
    // To the process, as Ctrl-C does. Blocked, it waits in the signalfd.
    kill(Pid::this(), Signal::SIGINT)
        .told(|| client("kill").args("getpid(), SIGINT"))?;
    send(&f, b"in flight\n")?;
    let signals = server.signals.as_raw_fd();
    turn(
        &mut server,
        &[(signals, PollFlags::POLLIN), (f_fd, PollFlags::POLLIN)],
    )?;
    server_note(
        "F may still be sending: FIN after its replies, then the server",
    );
    server_note("waits for F's end (a lingering close), so nothing is reset");
    recv(&f)?;
    recv(&f)?;
    client_note(
        "F's request, sent after the signal but before the loop saw it, was \
         answered",
    );
    close_client(f);
    turn(&mut server, &[(f_fd, PollFlags::POLLIN)])?;
    while !server.finished() {
        turn(&mut server, &[])?;
    }
    server_note("no connection left: the loop ends");
    server.stop();
    Ok(())
}

/// The pitfall of one read per event: edge triggering strands bytes and
/// connections that level triggering would report again.
fn level_and_edge() -> Result<(), Failure> {
    section("one read per event: level-triggered, then edge-triggered");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let client = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    let (near, _) = listener.accept().or_fail("accept")?;
    near.set_nonblocking(true).or_fail("set_nonblocking")?;
    server_note(format!(
        "a connected pair, made as in lesson 3: client fd {}, and fd {} \
         here, non-blocking",
        client.as_raw_fd(),
        near.as_raw_fd()
    ));
    for edge in [false, true] {
        one_read_per_event(&client, &near, edge)?;
    }
    accept_once(listener, addr, [client, near])
}

// ANCHOR: demo_one_read
/// A handler that reads once per event, and only 4 bytes, of 10.
fn one_read_per_event(
    client: &TcpStream,
    near: &TcpStream,
    edge: bool,
) -> Result<(), Failure> {
    let epoll = new_epoll()?;
    let flags = match edge {
        true => EpollFlags::EPOLLIN | EpollFlags::EPOLLET,
        false => EpollFlags::EPOLLIN,
    };
    register(&epoll, near, flags)?;
    send(client, b"0123456789")?;
    wait(&epoll, EpollTimeout::NONE)?;
    let mut four = [0u8; 4];
    let _ = (&*near)
        .read(&mut four)
        .traced(|| server("recv").on(near).args(4).data(&four));
    let again = wait(&epoll, EpollTimeout::ZERO)?;
    server_note(match (edge, again) {
        (false, 1) => "reported again: 6 bytes are still unread",
        (true, 0) => {
            "no event, yet 6 bytes are unread: nothing new happened. A loop \
             that waits"
        }
        _ => "NOT what this part shows",
    });
    if edge {
        server_note(
            "for the next event before reading strands them. Read until \
             EAGAIN:",
        );
    }
    drain_all(near)?;
    close(epoll.0);
    Ok(())
}
// ANCHOR_END: demo_one_read

// ANCHOR: demo_listener
/// The listener too: two clients wait, and it is edge-triggered. Then
/// every descriptor of the experiment is closed, the pair's too.
fn accept_once(
    listener: TcpListener,
    addr: SocketAddr,
    pair: [TcpStream; 2],
) -> Result<(), Failure> {
    server_note(
        "the listener too: two clients wait, and the listener is \
         edge-triggered",
    );
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    let epoll = new_epoll()?;
    register(&epoll, &listener, EpollFlags::EPOLLIN | EpollFlags::EPOLLET)?;
    let first = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    let second = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    client_note(format!(
        "two clients connect: fds {} and {}",
        first.as_raw_fd(),
        second.as_raw_fd()
    ));
    waiting_in_queue(&listener, 2)?;
    wait(&epoll, EpollTimeout::NONE)?;
    let one = listener.accept().told(|| server("accept").on(&listener))?;
    let again = wait(&epoll, EpollTimeout::ZERO)?;
    server_note(if again == 0 {
        "no event, yet a client still waits: accept until EAGAIN, as \
         accept_all does"
    } else {
        "NOT what this part shows"
    });
    let two = listener.accept().told(|| server("accept").on(&listener))?;
    let _ = listener.accept().traced(|| server("accept").on(&listener));
    let [client, near] = pair;
    for stream in [one.0, two.0, near] {
        close(stream);
    }
    for stream in [first, second, client] {
        close_client(stream);
    }
    close(epoll.0);
    close(listener);
    Ok(())
}
// ANCHOR_END: demo_listener

// ANCHOR: demo_spin
/// The `EMFILE` pitfall, the other way: a level-triggered loop that only logs
/// an `EMFILE` from `accept` and waits again. The client stays queued, the
/// listener stays ready, and every `epoll_wait` returns at once.
fn spin_without_a_spare() -> Result<(), Failure> {
    section("without the spare: EMFILE in a level-triggered loop");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    listener.set_nonblocking(true).or_fail("set_nonblocking")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    server_note(format!(
        "a non-blocking listener, made as in lesson 3: fd {}",
        listener.as_raw_fd()
    ));
    let epoll = new_epoll()?;
    register(&epoll, &listener, EpollFlags::EPOLLIN)?;
    let h = socket("H")?;
    connect(&h, addr)?;
    let (soft, hard) = lower_the_limit(false)?;
    // The loop: wait, accept, log the error, wait again.
    for _ in 0..2 {
        wait(&epoll, EpollTimeout::ZERO)?;
        let _ = (listener.accept())
            .traced(|| server("accept").on(&listener).args("SOCK_CLOEXEC"));
    }
    let spun = (0..SPIN_TURNS).filter(|_| spins(&epoll, &listener)).count();
    server_note(format!(
        "{SPIN_TURNS} more turns: {} the listener ready at once and accept \
         failing with EMFILE",
        if spun == SPIN_TURNS {
            "each found"
        } else {
            "NOT what this part shows: not each found"
        }
    ));
    server_note(
        "with a timeout of -1 the same: the loop never sleeps, and H is \
         never answered",
    );
    restore_the_limit(soft, hard)?;
    let (conn, _) = (listener.accept())
        .told(|| server("accept").on(&listener).args("SOCK_CLOEXEC"))?;
    server_note("a descriptor is free again: H is accepted at last");
    close(conn);
    close(listener);
    close(epoll.0);
    close_client(h);
    Ok(())
}
// ANCHOR_END: demo_spin

/// One turn of the naive loop, not printed: whether the listener was
/// ready at once and `accept` failed with `EMFILE`.
fn spins(epoll: &Epoll, listener: &TcpListener) -> bool {
    let mut events = [EpollEvent::empty(); 8];
    let ready = epoll.wait(&mut events, EpollTimeout::ZERO);
    let refused = (listener.accept())
        .is_err_and(|e| e.raw_os_error() == Some(libc::EMFILE));
    ready == Ok(1) && refused
}

/// The `EMFILE` pitfall: `EMFILE` from `accept`, made to happen by lowering the
/// limit on open descriptors, and handled with the spare.
fn out_of_descriptors(server: &mut Server) -> Result<(), Failure> {
    section("out of descriptors: EMFILE, and the spare");
    let g = socket("G")?;
    connect(&g, server.local)?;
    let (soft, hard) = lower_the_limit(true)?;
    turn(server, &[(listener_fd(server), PollFlags::POLLIN)])?;
    restore_the_limit(soft, hard)?;
    recv(&g)?;
    recv(&g)?;
    close_client(g);
    let listener =
        server.listener.as_ref().ok_or(Failure::new("demo", "no listener"))?;
    let mut asked = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    server_note(match poll(&mut asked, PollTimeout::ZERO) {
        Ok(0) => {
            "the listener is not ready any more: nobody waits in its queue, \
             nothing spins"
        }
        _ => "NOT what this part shows: the listener is still ready",
    });
    Ok(())
}

/// Lowers the limit on open descriptors to the number the next one would
/// get, so the next is refused; returns the limits to restore. `shown`
/// prints the `getrlimit` and a note, as the server's part does.
fn lower_the_limit(shown: bool) -> Result<(u64, u64), Failure> {
    let limits = getrlimit(Resource::RLIMIT_NOFILE);
    if shown {
        limits
            .map(|_| ())
            .told(|| server("getrlimit").args("RLIMIT_NOFILE"))?;
    }
    let (soft, hard) = limits.or_fail("getrlimit")?;
    // A new descriptor gets the lowest free number, and must be below the
    // limit: with the limit at that number, the next one is refused.
    // (Descriptors above it, say leaked by a shell, stay open.)
    let free = lowest_free_descriptor()?;
    setrlimit(Resource::RLIMIT_NOFILE, free as u64, hard)
        .told(|| server("setrlimit").args(format!("RLIMIT_NOFILE, {free}")))?;
    if shown {
        server_note(format!(
            "(the demo lowers the limit: fds 0 to {} are open, and no more \
             may be)",
            free - 1
        ));
    }
    Ok((soft, hard))
}

fn restore_the_limit(soft: u64, hard: u64) -> Result<(), Failure> {
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard)
        .told(|| server("setrlimit").args("RLIMIT_NOFILE, as before"))
}

fn new_epoll() -> Result<Epoll, Failure> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map(|epoll| epoll.0)
        .told(|| server("epoll_create1").args("EPOLL_CLOEXEC"))?;
    Ok(Epoll(epoll))
}

/// One narrated `epoll_wait` of the experiments; returns how many events
/// came.
fn wait(epoll: &Epoll, timeout: EpollTimeout) -> Result<usize, Failure> {
    let mut events = [EpollEvent::empty(); 8];
    let got = epoll.wait(&mut events, timeout);
    let shown = if timeout == EpollTimeout::NONE { "-1" } else { "0" };
    let epfd = epoll.0.as_raw_fd();
    transcript::tell(|| wait_line(epfd, 8, shown, &events, &got));
    got.or_fail("epoll_wait")
}

/// Reads until `EAGAIN`.
fn drain_all(stream: &TcpStream) -> Result<(), Failure> {
    loop {
        let mut buf = [0u8; RECV_SIZE];
        let got = (&*stream)
            .read(&mut buf)
            .traced(|| server("recv").on(stream).args(RECV_SIZE).data(&buf));
        match got {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return Ok(());
            }
            Err(err) => return Err(Failure::new("recv", err)),
        }
    }
}

/// Waits (bounded) until the listener's queue holds `count` connections,
/// and shows the count, as `ss` shows it in Recv-Q (lesson 8).
fn waiting_in_queue(listener: &TcpListener, count: u32) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let queued = accept_queue(listener);
        if queued.as_ref().is_ok_and(|&n| n >= count)
            || Instant::now() > deadline
        {
            transcript::tell(|| {
                let call = server("getsockopt").on(listener).args("TCP_INFO");
                match &queued {
                    Ok(n) => call.gave(&()).detail(format!(
                        "tcpi_unacked {n}: clients waiting to be accepted"
                    )),
                    Err(err) => call.failed(err),
                }
            });
            return queued.map(|_| ()).or_fail("getsockopt TCP_INFO");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// For a listening socket, `tcpi_unacked` is the length of its accept
/// queue (what `ss -lt` prints as Recv-Q).
fn accept_queue(listener: &TcpListener) -> io::Result<u32> {
    // SAFETY: tcp_info is plain data, valid when zeroed.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the descriptor is open; the pointer and length describe
    // `info`, which the kernel fills in, at most `len` bytes.
    let ret = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if ret == 0 {
        Ok(info.tcpi_unacked)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn listener_fd(server: &Server) -> RawFd {
    server.listener.as_ref().map_or(-1, |l| l.as_raw_fd())
}

/// A turn in which the server accepts one client; returns the descriptor
/// the client gets: the lowest free number (`man 2 open`).
fn accepted(server: &mut Server, listener: RawFd) -> Result<RawFd, Failure> {
    let fd = lowest_free_descriptor()?;
    turn(server, &[(listener, PollFlags::POLLIN)])?;
    Ok(fd)
}

/// One turn of the server, once every event in `expected` has arrived.
fn turn(
    server: &mut Server,
    expected: &[(RawFd, PollFlags)],
) -> Result<(), Failure> {
    settle(expected, |fd| server_fd(server, fd))?;
    server.turn()
}

/// The server's descriptor numbered `fd`, lent for a look.
fn server_fd(server: &Server, fd: RawFd) -> Option<BorrowedFd<'_>> {
    if listener_fd(server) == fd {
        server.listener.as_ref().map(|l| l.as_fd())
    } else if server.signals.as_raw_fd() == fd {
        Some(server.signals.as_fd())
    } else {
        server.conns.get(fd).map(|c| c.stream.as_fd())
    }
}

/// The server's `epoll_wait` line: its timeout is shown as `-1` (for ever)
/// or as at most the idle limit, which does not vary from run to run.
pub fn waited(
    server: &Server,
    events: &[EpollEvent],
    got: &nix::Result<usize>,
    timeout: EpollTimeout,
) -> Call {
    let shown = match timeout == EpollTimeout::NONE {
        true => "-1".to_string(),
        false => format!("≤{}", server.limits.idle.as_millis()),
    };
    let epfd = server.epoll.0.as_raw_fd();
    wait_line(epfd, events.len(), &shown, events, got)
}
