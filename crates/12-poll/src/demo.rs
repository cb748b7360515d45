//! The demo, in one thread: it plays the clients between the server's
//! turns, so every step happens in the order printed. Before a turn it
//! waits (bounded, looking with `poll` and a timeout of 0) until the
//! events the turn is to handle have arrived, so that what one `poll`
//! returns does not depend on how fast loopback is.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use socket2::{Domain, SockRef, Socket, Type};
use transcript::demo::{
    SETTLE_LIMIT, close_client, connect, peek, recv, send, settle, socket,
};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, bytes, client, client_note,
    hushed, section, server, server_note, tell,
};

use crate::conn::RECV_SIZE;
use crate::select;
use crate::server::{Limits, Server};
use crate::shutdown;

/// The demo's idle limit: long enough that no step comes near it.
const DEMO_IDLE: Duration = Duration::from_secs(10);

const IN: PollFlags = PollFlags::POLLIN;

/// The timeline: two clients served at once, a reset and a half-close, a
/// client that does not read, what non-blocking breaks, then Ctrl-C; and,
/// beside the lesson, `select` and the descriptor it cannot watch.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "clients"]);
    let limits = Limits { max_conns: 64, idle: DEMO_IDLE };
    section("one thread, every socket non-blocking");
    let mut server = Server::start(([127, 0, 0, 1], 0).into(), limits)?;
    two_clients(&mut server)?;
    reset_and_half_close(&mut server)?;
    full_buffer(&mut server)?;
    more_than_a_flag()?;
    read_exact_loses()?;
    ctrl_c(server)?;
    select_wall()
}

/// A and B connect; A sends half a line, B a whole one: B is answered in
/// the same turn that finds A's line unfinished.
fn two_clients(server: &mut Server) -> Result<(), Failure> {
    let addr = server.local;
    let a = socket("A")?;
    let b = socket("B")?;
    connect(&a, addr)?;
    let a_fd = accept_turn(server)?;
    connect(&b, addr)?;
    let b_fd = accept_turn(server)?;

    send(&a, b"slow ")?;
    send(&b, b"hello from B\n")?;
    turn(server, &[(a_fd, IN), (b_fd, IN)])?;
    recv(&b)?;
    client_note(
        "B is answered while A's line is unfinished: no one waited in recv",
    );
    send(&a, b"client\n")?;
    turn(server, &[(a_fd, IN)])?;
    recv(&a)?;
    close_client(a);
    close_client(b);
    turn(server, &[(a_fd, IN), (b_fd, IN)])
}

/// C resets its connection; D half-closes after its last line.
fn reset_and_half_close(server: &mut Server) -> Result<(), Failure> {
    section("a client that resets, a client that half-closes");
    let addr = server.local;
    let c = socket("C")?;
    connect(&c, addr)?;
    let c_fd = accept_turn(server)?;
    // SO_LINGER 0: close sends RST instead of FIN (lesson 6).
    SockRef::from(&c)
        .set_linger(Some(Duration::ZERO))
        .told(|| client("setsockopt").on(&c).args("SO_LINGER, 0 s"))?;
    close_client(c);
    turn(server, &[(c_fd, PollFlags::POLLHUP)])?;

    let d = socket("D")?;
    connect(&d, addr)?;
    let d_fd = accept_turn(server)?;
    send(&d, b"bye\n")?;
    d.shutdown(std::net::Shutdown::Write)
        .told(|| client("shutdown").on(&d).args("SHUT_WR"))?;
    turn(server, &[(d_fd, IN)])?;
    turn(server, &[(d_fd, IN)])?;
    recv(&d)?;
    recv(&d)?;
    close_client(d);
    Ok(())
}

/// A client that sends many lines and reads none: the replies fill the
/// kernel's buffers, `send` fails with `EAGAIN`, and the rest waits in the
/// connection's own buffer until `poll` reports `POLLOUT`.
fn full_buffer(server: &mut Server) -> Result<(), Failure> {
    const LINES: usize = 24;
    section(format_args!("a client that sends {LINES} lines and reads none"));
    let e = socket("E")?;
    // Small buffers on both sides, so the replies overflow them soon.
    SockRef::from(&e)
        .set_recv_buffer_size(4096)
        .told(|| client("setsockopt").on(&e).args("SO_RCVBUF, 4096"))?;
    connect(&e, server.local)?;
    let e_fd = accept_turn(server)?;
    let Some(conn) = server.conns.get(e_fd).map(|c| &c.stream) else {
        return Err(Failure::new("demo", "E was not accepted"));
    };
    SockRef::from(conn).set_send_buffer_size(4096).told(|| {
        transcript::server("setsockopt").on(conn).args("SO_SNDBUF, 4096")
    })?;
    server_note(
        "(the demo shrinks the server's buffer for E, as a slow network would)",
    );

    let requests: Vec<u8> = (0..LINES)
        .flat_map(|n| format!("{n:02} {}\n", "e".repeat(996)).into_bytes())
        .collect();
    send(&e, &requests)?;
    // A busy stretch, summed up below instead of shown call by call: how
    // the bytes split over recv and send calls depends on the kernel.
    hushed(|| read_everything(server, &e, e_fd))?;
    let waiting = server.conns.get(e_fd).is_some_and(|c| !c.out.is_empty());
    if waiting {
        server_note(format_args!(
            "the server has read all {LINES} lines; \
             send took what fit, then failed with EAGAIN"
        ));
        server_note(format_args!(
            "the other replies wait in fd {e_fd}'s output buffer, \
             and poll is asked for POLLOUT"
        ));
    } else {
        server_note("NOT what this part shows: the kernel took every reply");
    }
    send(&e, b"last\n")?;
    turn(server, &[(e_fd, IN)])?;

    let expected: Vec<u8> = [&requests[..], b"last\n"].concat();
    let replies = hushed(|| read_replies(server, &e, e_fd, expected.len()))?;
    client_note(format_args!(
        "E reads: {} replies, {}",
        replies.iter().filter(|&&b| b == b'\n').count(),
        if replies == expected { "all in order" } else { "NOT what was sent" }
    ));
    server_note(format_args!(
        "fd {e_fd}: each POLLOUT let the server send more, until nothing waited"
    ));
    close_client(e);
    turn(server, &[(e_fd, IN)])
}

/// Turns of the server until it has read every byte E sent: nothing is
/// left unread on its side, nor unacknowledged on E's.
fn read_everything(
    server: &mut Server,
    e: &TcpStream,
    e_fd: RawFd,
) -> Result<(), Failure> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    loop {
        let conn = server.conns.get(e_fd).map(|c| &c.stream);
        let unread = conn.map_or(Ok(0), |c| queued(c, libc::FIONREAD));
        let unacked = queued(e, libc::TIOCOUTQ);
        match (unread.or_fail("ioctl FIONREAD")?, unacked.or_fail("ioctl")?) {
            (0, 0) => return Ok(()),
            (0, _) if Instant::now() > deadline => {
                return Err(Failure::new("demo", "E's lines never arrived"));
            }
            (0, _) => std::thread::sleep(Duration::from_millis(1)),
            _ => turn(server, &[(e_fd, IN)])?,
        }
    }
}

/// E reads all it has; whenever replies still wait and the server's
/// socket has room (`POLLOUT`), the server gets a turn.
fn read_replies(
    server: &mut Server,
    e: &TcpStream,
    e_fd: RawFd,
    expected: usize,
) -> Result<Vec<u8>, Failure> {
    let mut replies = Vec::new();
    e.set_nonblocking(true).or_fail("set_nonblocking")?;
    let deadline = Instant::now() + SETTLE_LIMIT;
    while replies.len() < expected {
        let mut buf = [0u8; RECV_SIZE];
        match (&*e).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => replies.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let waiting =
                    server.conns.get(e_fd).is_some_and(|c| !c.out.is_empty());
                if waiting
                    && server_fd(server, e_fd).is_some_and(|fd| {
                        peek(fd, PollFlags::POLLOUT)
                            .contains(PollFlags::POLLOUT)
                    })
                {
                    server.turn()?;
                } else if Instant::now() > deadline {
                    return Err(Failure::new(
                        "demo",
                        "E's replies stopped coming",
                    ));
                } else {
                    wait_readable(e, Duration::from_millis(10)).ok();
                }
            }
            Err(err) => return Err(Failure::new("recv", err)),
        }
    }
    e.set_nonblocking(false).or_fail("set_nonblocking")?;
    Ok(replies)
}

/// Non-blocking is more than a flag: `BufReader` hides bytes from `poll`,
/// and `write_all` loses track of what it sent.
fn more_than_a_flag() -> Result<(), Failure> {
    section("non-blocking is more than a flag");
    // A client with a small receive buffer, so that what it does not read
    // soon fills it.
    let (client, near) = pair(Some(4096))?;
    send(&client, b"one\ntwo\n")?;
    wait_readable(&near, SETTLE_LIMIT)?;
    let mut reader = BufReader::new(&near);
    let mut line = String::new();
    server_note("BufReader::read_line() makes one recv, into an 8 KiB buffer:");
    let got = reader.read_line(&mut line);
    let kept = reader.buffer().to_vec();
    let all = [line.as_bytes(), &kept].concat();
    // What the one recv returned: the line and what stayed behind.
    let took = match &got {
        Ok(_) => Ok(all.len()),
        Err(err) => Err(io::Error::new(err.kind(), err.to_string())),
    };
    tell(|| {
        let recv = server("recv").on(&near).args(8192).returned(&took);
        recv.detail(bytes(&all))
    });
    got.or_fail("read_line")?;
    server_note(format_args!(
        "read_line returns {}; {} stays in the BufReader",
        bytes(line.as_bytes()),
        bytes(&kept)
    ));
    let mut asked = [PollFd::new(near.as_fd(), IN)];
    let ready = poll(&mut asked, PollTimeout::ZERO);
    tell(|| {
        server("poll")
            .args(format_args!("[fd {} POLLIN], 1, 0", near.as_raw_fd()))
            .returned(&ready.map(i64::from))
    });
    server_note(
        "poll looks at the kernel's buffer, which is empty: \
         a loop that waits for POLLIN",
    );
    server_note(
        "before it reads again never gets to the second line. \
         Empty the BufReader first.",
    );

    SockRef::from(&near)
        .set_send_buffer_size(4096)
        .told(|| server("setsockopt").on(&near).args("SO_SNDBUF, 4096"))?;
    let big = vec![b'w'; 100_000];
    let wrote = (&near).write_all(&big);
    server_note(format_args!(
        "write_all(100000 bytes) = {}: several sends, then EAGAIN",
        match &wrote {
            Ok(()) => "Ok".to_string(),
            Err(err) => format!("Err({:?})", err.kind()),
        }
    ));
    shutdown::close(near);
    let mut arrived = Vec::new();
    client
        .set_read_timeout(Some(SETTLE_LIMIT))
        .or_fail("setsockopt SO_RCVTIMEO")?;
    (&client).read_to_end(&mut arrived).or_fail("recv")?;
    let part = !arrived.is_empty() && arrived.len() < big.len();
    client_note(format_args!(
        "the client reads to the end: {} of the 100000 bytes",
        if part { "some, not all," } else { "NOT part" }
    ));
    server_note(
        "write_all sent part, then failed without saying how much: \
         the caller cannot",
    );
    server_note(
        "resume. A non-blocking server keeps its own buffer \
         and resumes on POLLOUT.",
    );
    close_client(client);
    Ok(())
}

/// `read_exact` on a non-blocking socket: the bytes it read before
/// `WouldBlock` are taken from the kernel, and the error does not say how
/// many there were.
fn read_exact_loses() -> Result<(), Failure> {
    section("read_exact on a non-blocking socket");
    let (client, near) = pair(None)?;
    // A 10-byte frame, of which 6 bytes have come so far. One small send
    // on loopback arrives whole, so once the socket is readable all 6 are.
    send(&client, b"012345")?;
    wait_readable(&near, SETTLE_LIMIT)?;
    let before = queued(&near, libc::FIONREAD);
    tell(|| unread_call(&near, &before));
    let before = before.or_fail("ioctl FIONREAD")?;
    let mut frame = [0u8; 10];
    server_note(
        "read_exact(10 bytes) calls recv until it has 10 or an error comes:",
    );
    let got = (&near).read_exact(&mut frame).map(|()| frame.len());
    let after = queued(&near, libc::FIONREAD);
    // Its calls cannot be seen from here, only what they took from the
    // kernel's buffer: one recv for what was there, then one that failed.
    let took =
        before.saturating_sub(*after.as_ref().unwrap_or(&0)).min(frame.len());
    tell(|| {
        server("recv")
            .on(&near)
            .args(frame.len())
            .gave(&took)
            .detail(bytes(&frame[..took]))
    });
    tell(|| server("recv").on(&near).args(frame.len() - took).returned(&got));
    tell(|| unread_call(&near, &after));
    after.or_fail("ioctl FIONREAD")?;
    server_note(format_args!(
        "read_exact returns {}: it does not say how many bytes it took",
        match &got {
            Ok(_) => "NOT an error".to_string(),
            Err(err) => format!("Err({:?})", err.kind()),
        }
    ));
    send(&client, b"6789")?;
    wait_readable(&near, SETTLE_LIMIT)?;
    let mut buf = [0u8; 16];
    let n = (&near)
        .read(&mut buf)
        .told(|| server("recv").on(&near).args(16).data(&buf))?;
    server_note(if n == 4 {
        "only the last 4 bytes are left: \
         read_exact took the first 6, and its caller was not told"
    } else {
        "NOT what this part shows: the first bytes are still there"
    });
    shutdown::close(near);
    close_client(client);
    Ok(())
}

/// Ctrl-C while F's request is in flight: the signal's byte and F's
/// request arrive together; F is answered, then the loop ends.
fn ctrl_c(mut server: Server) -> Result<(), Failure> {
    section("Ctrl-C: a byte through the self-pipe");
    let f = socket("F")?;
    connect(&f, server.local)?;
    let f_fd = accept_turn(&mut server)?;
    send(&f, b"in flight\n")?;
    // To this process, as Ctrl-C does; the handler runs before kill returns.
    kill(Pid::this(), Signal::SIGINT).or_fail("kill SIGINT")?;
    client_note(format_args!(
        "the demo sends itself SIGINT; the handler writes a byte to fd {}",
        server.signals.writer()
    ));
    let wake_fd = server.signals.as_fd().as_raw_fd();
    turn(&mut server, &[(wake_fd, IN), (f_fd, IN)])?;
    recv(&f)?;
    recv(&f)?;
    client_note("F's request, sent before the signal, was answered");
    close_client(f);
    while !server.finished() {
        turn(&mut server, &[(f_fd, IN)])?;
    }
    server_note("no connection left: the loop ends");
    server.stop();
    Ok(())
}

/// One narrated turn of the event loop, once every event in `expected`
/// has arrived.
fn turn(
    server: &mut Server,
    expected: &[(RawFd, PollFlags)],
) -> Result<(), Failure> {
    settle(expected, |fd| server_fd(server, fd))?;
    server.turn()
}

/// A turn that accepts a client: its descriptor on the server's side.
fn accept_turn(server: &mut Server) -> Result<RawFd, Failure> {
    let listener = server.listener.as_ref().map_or(-1, |l| l.as_raw_fd());
    let before: Vec<RawFd> = server.conns.iter().map(|(fd, _)| fd).collect();
    turn(server, &[(listener, IN)])?;
    let mut now = server.conns.iter().map(|(fd, _)| fd);
    now.find(|fd| !before.contains(fd))
        .ok_or(Failure::new("demo", "no connection was accepted"))
}

/// The server's descriptor numbered `fd`, lent for a look.
fn server_fd(server: &Server, fd: RawFd) -> Option<BorrowedFd<'_>> {
    let listener = server.listener.as_ref().filter(|l| l.as_raw_fd() == fd);
    if let Some(listener) = listener {
        Some(listener.as_fd())
    } else if server.signals.as_fd().as_raw_fd() == fd {
        Some(server.signals.as_fd())
    } else {
        server.conns.get(fd).map(|c| c.stream.as_fd())
    }
}

/// The transcript line of the server's `poll`: what it asked for on each
/// descriptor, and what came back. `≤N`: the timeout, the time left to the
/// nearest idle deadline, at most the idle limit.
pub fn polled(
    watched: &[PollFd],
    result: &nix::Result<i32>,
    timeout: PollTimeout,
    idle: Duration,
) -> Call {
    let asked: Vec<String> = (watched.iter())
        .map(|p| format!("fd {} {}", p.as_fd().as_raw_fd(), flags(p.events())))
        .collect();
    let got: Vec<String> = (watched.iter())
        .filter_map(|p| Some((p.as_fd().as_raw_fd(), p.revents()?)))
        .filter(|(_, revents)| !revents.is_empty())
        .map(|(fd, revents)| format!("fd {fd}: {}", flags(revents)))
        .collect();
    let timeout = match timeout {
        PollTimeout::NONE => "-1".to_string(),
        _ => format!("≤{}", idle.as_millis()),
    };
    let list = asked.join(", ");
    let shown = server("poll")
        .args(format_args!("[{list}], {}, {timeout}", asked.len()))
        .returned(&result.map(i64::from));
    if got.is_empty() { shown } else { shown.detail(got.join("; ")) }
}

/// `POLLIN|POLLOUT`, as strace prints them.
fn flags(events: PollFlags) -> String {
    let names = [
        (PollFlags::POLLIN, "POLLIN"),
        (PollFlags::POLLPRI, "POLLPRI"),
        (PollFlags::POLLOUT, "POLLOUT"),
        (PollFlags::POLLERR, "POLLERR"),
        (PollFlags::POLLHUP, "POLLHUP"),
        (PollFlags::POLLNVAL, "POLLNVAL"),
    ];
    let set: Vec<&str> = (names.iter())
        .filter(|(f, _)| events.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() { "0".to_string() } else { set.join("|") }
}

/// A connected pair made as in lesson 3, the server's end non-blocking;
/// `rcvbuf` shrinks the client's receive buffer.
fn pair(rcvbuf: Option<usize>) -> Result<(TcpStream, TcpStream), Failure> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let client =
        Socket::new(Domain::IPV4, Type::STREAM, None).or_fail("socket")?;
    if let Some(size) = rcvbuf {
        client.set_recv_buffer_size(size).or_fail("setsockopt SO_RCVBUF")?;
    }
    client.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
    let client = TcpStream::from(client);
    let (near, _) = listener.accept().or_fail("accept")?;
    near.set_nonblocking(true).or_fail("set_nonblocking")?;
    server_note(format_args!(
        "a connected pair, made as in lesson 3: \
         client fd {}, and fd {} here, non-blocking",
        client.as_raw_fd(),
        near.as_raw_fd()
    ));
    Ok((client, near))
}

/// How many bytes wait in `stream`'s receive queue (`FIONREAD`; `man 7
/// tcp` calls it SIOCINQ), or in its send queue, not yet acknowledged
/// (`TIOCOUTQ`, SIOCOUTQ).
fn queued(stream: &TcpStream, request: libc::Ioctl) -> io::Result<usize> {
    let mut count: libc::c_int = 0;
    // SAFETY: both requests write one int, which `count` is.
    if unsafe { libc::ioctl(stream.as_raw_fd(), request, &mut count) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(count).unwrap_or(0))
}

/// The transcript line for a `FIONREAD` call.
fn unread_call(stream: &TcpStream, count: &io::Result<usize>) -> Call {
    let shown = server("ioctl").on(stream).args("FIONREAD");
    match count {
        Ok(n) => shown.gave(&()).detail(format_args!("{n} bytes unread")),
        Err(err) => shown.failed(err),
    }
}

/// Waits, at most `limit`, until `stream` has something to read.
fn wait_readable(stream: &TcpStream, limit: Duration) -> Result<(), Failure> {
    let mut asked = [PollFd::new(stream.as_fd(), IN)];
    let limit = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    match poll(&mut asked, limit) {
        Ok(1) => Ok(()),
        _ => Err(Failure::new("demo", "the bytes never arrived")),
    }
}

/// The descriptor number the demo gives `select` to watch: the first one
/// an `fd_set` has no bit for.
const ABOVE_THE_WALL: RawFd = 1024;

/// `select` watches a listener and finds a client waiting; then the same
/// listener, given the number 1024, is refused by `select` and watched by
/// `poll`.
fn select_wall() -> Result<(), Failure> {
    section("select, and the wall poll removed");
    let listener = TcpListener::bind(("127.0.0.1", 0)).or_fail("bind")?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    server_note(format_args!(
        "TcpListener::bind(\"127.0.0.1:0\") = fd {}: a blocking listener",
        listener.as_raw_fd()
    ));
    let a = socket("A")?;
    connect(&a, addr)?;
    let ready = select::readable(&[listener.as_fd()])?;
    if ready != [listener.as_raw_fd()] {
        return Err(Failure::new("demo", "select did not find fd 3 readable"));
    }
    server_note("select left fd 3's bit set: a connection is queued");
    accept_and_close(&listener)?;
    close_client(a);

    let high = renumbered(&listener)?;
    let b = socket("B")?;
    connect(&b, addr)?;
    match select::readable(&[high.as_fd()]) {
        Err(refused) => server_note(format_args!(
            "{refused}: an fd_set has no bit for it; select is not called"
        )),
        Ok(_) => return Err(Failure::new("demo", "select took fd 1024")),
    }
    let mut fds = [PollFd::new(high.as_fd(), IN)];
    poll(&mut fds, PollTimeout::NONE).map(i64::from).told(|| {
        server("poll").args(format_args!("[fd {ABOVE_THE_WALL} POLLIN], 1, -1"))
    })?;
    server_note("poll takes an array of descriptors: any number, any count");
    accept_and_close(&high)?;
    close_client(b);
    let fd = high.as_raw_fd();
    drop(high);
    tell(|| server("close").on_fd(fd).gave(&()));
    let fd = listener.as_raw_fd();
    drop(listener);
    tell(|| server("close").on_fd(fd).gave(&()));
    Ok(())
}

/// The listener again, as descriptor 1024 (`F_DUPFD_CLOEXEC` gives the
/// lowest free number at or above it): a server with a thousand clients
/// gets such numbers from `accept`. The soft limit on open descriptors is
/// raised first where it is 1024 or less, as lesson 13 explains.
fn renumbered(listener: &TcpListener) -> Result<OwnedFd, Failure> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).or_fail("getrlimit")?;
    let wanted = (ABOVE_THE_WALL + 1) as u64;
    if soft < wanted {
        if hard < wanted {
            return Err(Failure::new(
                "demo",
                format!(
                    "the hard limit on descriptors ({hard}) is below {wanted}"
                ),
            ));
        }
        setrlimit(Resource::RLIMIT_NOFILE, wanted, hard)
            .or_fail("setrlimit")?;
    }
    fcntl(listener.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(ABOVE_THE_WALL))
        // fcntl returned a new descriptor, now owned here.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .told(|| {
            server("fcntl")
                .on(listener)
                .args(format_args!("F_DUPFD_CLOEXEC, {ABOVE_THE_WALL}"))
        })
}

/// Accepts the client waiting on `listener` and closes it at once: this
/// part is about watching, not serving.
fn accept_and_close(listener: &impl AsFd) -> Result<(), Failure> {
    let on = listener.as_fd().as_raw_fd();
    let (conn, _) =
        SockRef::from(listener).accept().told(|| server("accept").on_fd(on))?;
    let fd = conn.as_raw_fd();
    drop(conn);
    tell(|| server("close").on_fd(fd).gave(&()));
    Ok(())
}
