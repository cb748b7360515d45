//! The demo, in one thread, as in lesson 13: the clients act between the
//! server's turns, and each turn waits (bounded) until the events it is to
//! handle have arrived. The server serves a small directory the demo makes
//! in a temporary folder (the same files every run), so the demo does not
//! need the built book.

use std::fs;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use nix::poll::PollFlags;
use nix::sys::epoll::{EpollEvent, EpollTimeout};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use transcript::demo::{
    close_client, connect, lowest_free_descriptor, recv, send, settle, socket,
    wait_line,
};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, client, client_note, section,
    server_note,
};

use crate::server::{Limits, Server};

/// How the server prints interests, as strace does.
pub use transcript::demo::epoll_flags;

/// The demo's limits: long enough that no step comes near them.
const LIMITS: Limits = Limits {
    max_conns: 16,
    header_timeout: Duration::from_secs(10),
    idle: Duration::from_secs(10),
};

/// The served directory's files, and one outside it.
const INDEX: &str = "<!doctype html>\n<title>Lesson 17</title>\n\
    <link rel=stylesheet href=style.css>\n<h1>It works</h1>\n";
const STYLE: &str = "h1 { color: teal }\n";

/// The demo's files were last modified on 1 November 2026 at midnight
/// UTC (seconds since 1970): set, not taken from the clock, so that their
/// `Last-Modified` reads the same in every run of the transcript.
const MODIFIED: u64 = 1_793_491_200;
const SECRET: &str = "not for the web\n";

/// The timeline: a keep-alive connection, pipelining, a 404, three ways
/// out of the directory refused, `Connection: close`, then Ctrl-C.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "clients"]);
    let dir = Fixture::make()?;
    let result = timeline(&dir.site());
    drop(dir);
    result
}

fn timeline(site: &Path) -> Result<(), Failure> {
    section("GET on a kept-alive connection");
    server_note(
        "serving a directory made for the demo: index.html, style.css, and \
         escape.txt, a symlink to ../secret.txt",
    );
    let mut server = Server::start(([127, 0, 0, 1], 0).into(), site, LIMITS)?;
    let listener = listener_fd(&server);
    let a = socket("A")?;
    connect(&a, server.local)?;
    let a_fd = accepted(&mut server, listener)?;
    ask(&mut server, &a, a_fd, "GET / HTTP/1.1\r\nHost: demo\r\n\r\n")?;
    section("pipelined: two requests in one send, answered in order");
    let two = "GET /style.css HTTP/1.1\r\nHost: demo\r\n\r\n\
               HEAD /index.html HTTP/1.1\r\nHost: demo\r\n\r\n";
    ask(&mut server, &a, a_fd, two)?;
    section("a 404, and three ways out of the directory refused");
    ask(&mut server, &a, a_fd, "GET /missing.html HTTP/1.1\r\n\r\n")?;
    ask(&mut server, &a, a_fd, "GET /../secret.txt HTTP/1.1\r\n\r\n")?;
    ask(&mut server, &a, a_fd, "GET /%2e%2e/secret.txt HTTP/1.1\r\n\r\n")?;
    ask(&mut server, &a, a_fd, "GET /escape.txt HTTP/1.1\r\n\r\n")?;
    section("Connection: close");
    let last = "GET /style.css HTTP/1.1\r\nConnection: close\r\n\r\n";
    ask(&mut server, &a, a_fd, last)?;
    recv(&a)?;
    client_note("the end of the stream: the server closed its side");
    close_client(a);
    turn(&mut server, &[(a_fd, PollFlags::POLLIN)])?;
    shutdown_by_signal(server)
}

/// SIGINT with a request in flight: answered, with `Connection: close`.
fn shutdown_by_signal(mut server: Server) -> Result<(), Failure> {
    section("Ctrl-C with a request in flight");
    let b = socket("B")?;
    connect(&b, server.local)?;
    let listener = listener_fd(&server);
    let b_fd = accepted(&mut server, listener)?;
    kill(Pid::this(), Signal::SIGINT)
        .told(|| client("kill").args("getpid(), SIGINT"))?;
    send(&b, b"GET / HTTP/1.1\r\n\r\n")?;
    let signals = server.signals.as_raw_fd();
    turn(
        &mut server,
        &[(signals, PollFlags::POLLIN), (b_fd, PollFlags::POLLIN)],
    )?;
    show(&recv(&b)?);
    recv(&b)?;
    client_note("B's request, sent after the signal, was answered");
    close_client(b);
    turn(&mut server, &[(b_fd, PollFlags::POLLIN)])?;
    server_note("no connection left: the loop ends");
    server.stop();
    Ok(())
}

// ANCHOR: demo_ask
/// A client sends a request (or several), the server takes a turn, and
/// the client reads what came back, in one `recv`: the server answered
/// them all with one `send`.
fn ask(
    server: &mut Server,
    client: &TcpStream,
    fd: RawFd,
    request: &str,
) -> Result<(), Failure> {
    send(client, request.as_bytes())?;
    turn(server, &[(fd, PollFlags::POLLIN)])?;
    show(&recv(client)?);
    Ok(())
}
// ANCHOR_END: demo_ask

/// The heads of the responses in `got`, one note per line, and the size
/// of each body (none after a `HEAD`: its `Content-Length` is the GET's).
fn show(got: &[u8]) {
    let mut rest = got;
    while let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 4..];
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let no_body = rest.is_empty() || rest.starts_with(b"HTTP/1.1 ");
        let body = if no_body { 0 } else { length };
        client_note(format!("  {}", head.replace("\r\n", " | ")));
        if body > 0 {
            let text = String::from_utf8_lossy(&rest[..body.min(rest.len())]);
            let first = text.lines().next().unwrap_or("");
            client_note(format!("  and {body} bytes of body: {first} ..."));
        }
        rest = &rest[body.min(rest.len())..];
    }
}

/// The longest a connection's deadline can be away: `epoll_wait`'s
/// timeout is shown as at most this, which does not vary between runs.
fn longest(limits: Limits) -> Duration {
    limits.header_timeout.max(limits.idle)
}

/// The demo's directory, removed when dropped.
struct Fixture(PathBuf);

impl Fixture {
    /// `site/` with two files and a symlink that points out of it, and
    /// `secret.txt` beside it.
    fn make() -> Result<Fixture, Failure> {
        let name = format!("lesson-17-demo-{}", std::process::id());
        let dir = Fixture(std::env::temp_dir().join(name));
        let site = dir.site();
        let _ = fs::remove_dir_all(&dir.0);
        fs::create_dir_all(&site).or_fail("mkdir")?;
        fs::write(site.join("index.html"), INDEX).or_fail("write")?;
        fs::write(site.join("style.css"), STYLE).or_fail("write")?;
        for name in ["index.html", "style.css"] {
            fs::File::options()
                .write(true)
                .open(site.join(name))
                .and_then(|file| {
                    file.set_modified(
                        UNIX_EPOCH + Duration::from_secs(MODIFIED),
                    )
                })
                .or_fail("set the modification time")?;
        }
        fs::write(dir.0.join("secret.txt"), SECRET).or_fail("write")?;
        std::os::unix::fs::symlink("../secret.txt", site.join("escape.txt"))
            .or_fail("symlink")?;
        Ok(dir)
    }

    fn site(&self) -> PathBuf {
        self.0.join("site")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
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
        server.conns.get(&fd).map(|c| c.stream.as_fd())
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
        false => format!("≤{}", longest(server.limits).as_millis()),
    };
    let epfd = server.epoll.0.as_raw_fd();
    wait_line(epfd, events.len(), &shown, events, got)
}
