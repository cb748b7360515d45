//! The demo: a socket file and what outlives its server, the abstract
//! namespace, `socketpair` and `SOCK_SEQPACKET`, and a connection handed
//! to a worker with `SCM_RIGHTS`, all in one process.
//!
//! Every part is played by one thread, except the `socketpair` part, whose
//! second thread runs while this one waits for it to end: the order on
//! screen never depends on how the kernel schedules them.

use std::io::{IoSlice, IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::thread;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, RecvMsg, recvmsg, sendmsg,
};
use nix::sys::stat::{fstat, lstat};
use nix::unistd::unlink;
use socket2::{Domain, SockAddr, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Outcome, Ret, Told, Transcript, bytes, client,
    client_note, section, server, server_note, tell,
};

use crate::server::{Kind, claim, who};

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// What the demo prints when a step did not show what the lesson says.
const NOT_SHOWN: &str = "NOT what the lesson expects";

/// The timeline, part by part.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let _dir = PrivateDir::enter()?;
    let path = Path::new("demo.sock");
    server_note("in a new directory of our own under the system temp dir");

    section("a socket file: who is calling");
    let listener = claim(path, 0o600)?;
    let kind =
        lstat(path).map(Kind).told(|| server("lstat").args(quoted(path)))?;
    expect(kind.is_socket(), "a socket file (S_IFSOCK) is in the directory");
    converse(&listener, path)?;

    section("a second server on the same path");
    second_server(&listener, path)?;
    let listener = after_a_crash(listener, path)?;

    section("the abstract namespace (Linux): a name, no file");
    abstract_name()?;

    section("socketpair: two connected sockets, no name at all");
    server_note("left: this thread; right: a second thread");
    pair(Type::STREAM, "SOCK_STREAM|SOCK_CLOEXEC")?;
    pair(Type::SEQPACKET, "SOCK_SEQPACKET|SOCK_CLOEXEC")?;

    section("SCM_RIGHTS: the server hands a connection to a worker");
    hand_over(&listener, path)?;

    section("SCM_RIGHTS to a worker at its descriptor limit");
    at_the_limit(&listener)?;

    section("a clean exit removes the file");
    close(listener, server);
    unlink(path).told(|| server("unlink").args(quoted(path)))?;
    Ok(())
}

// ANCHOR: converse
/// A client connects to the file; the server asks the kernel who it is,
/// and one line goes there and back.
fn converse(listener: &Socket, path: &Path) -> Result<(), Failure> {
    let sock = connect(path)?;
    let (conn, _) = listener.accept().told(|| server("accept").on(listener))?;
    who(&conn)?;
    server_note("the client is this very process, and the kernel says so");

    let line = b"hello over a file\n";
    sock.send(line).told(|| client("send").on(&sock).args(bytes(line)))?;
    let mut buf = [0u8; RECV_SIZE];
    let n = (&conn)
        .read(&mut buf)
        .told(|| server("recv").on(&conn).args(RECV_SIZE).data(&buf))?;
    let echo = &buf[..n];
    conn.send(echo).told(|| server("send").on(&conn).args(bytes(echo)))?;
    (&sock)
        .read(&mut buf)
        .told(|| client("recv").on(&sock).args(RECV_SIZE).data(&buf))?;
    close(sock, client);
    close(conn, server);
    Ok(())
}
// ANCHOR_END: converse

// ANCHOR: second_server
/// A second server starts while the first listens: its bind fails, its
/// probe is answered, and it leaves the file alone.
fn second_server(listener: &Socket, path: &Path) -> Result<(), Failure> {
    match claim(path, 0o600) {
        Err(refused) => server_note(format!("refused: {refused}")),
        Ok(_) => server_note(format!("{NOT_SHOWN}: the path was taken")),
    }
    // The probe's connection waits in the first server's queue.
    let (probe, _) =
        listener.accept().told(|| server("accept").on(listener))?;
    let mut buf = [0u8; RECV_SIZE];
    (&probe)
        .read(&mut buf)
        .told(|| server("recv").on(&probe).args(RECV_SIZE))?;
    server_note("0 bytes: a probe, already gone; the first server goes on");
    close(probe, server);
    Ok(())
}
// ANCHOR_END: second_server

// ANCHOR: after_a_crash
/// The first server ends without removing its file, as a crash would. The
/// next one finds a socket nobody answers on, removes it and binds.
fn after_a_crash(listener: Socket, path: &Path) -> Result<Socket, Failure> {
    close(listener, server);
    let kind =
        lstat(path).map(Kind).told(|| server("lstat").args(quoted(path)))?;
    expect(kind.is_socket(), "the file outlives its server");
    server_note("the server is gone, its file is not: a new bind fails");
    claim(path, 0o600)
}
// ANCHOR_END: after_a_crash

// ANCHOR: abstract_name
/// A name in the abstract namespace starts with a 0 byte: no file is
/// made, so nothing is left to remove, and no mode guards it.
fn abstract_name() -> Result<(), Failure> {
    // Unique to this process: two demos at once must not collide.
    let name = format!("\0lesson-15-{}", std::process::id());
    let addr = SockAddr::unix(&name).or_fail("abstract name")?;
    let shown = format!("@{}...", bytes(b"lesson-15-"));
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None)
        .told(|| server("socket").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC"))?;
    listener.bind(&addr).told(|| server("bind").on(&listener).args(&shown))?;
    listener.listen(5).told(|| server("listen").on(&listener).args(5))?;
    server_note("@ stands for the 0 byte; the rest is our pid");

    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)
        .told(|| client("socket").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC"))?;
    sock.connect(&addr).told(|| client("connect").on(&sock).args(&shown))?;
    let (conn, _) =
        listener.accept().told(|| server("accept").on(&listener))?;
    server_note("any process in this network namespace may connect:");
    server_note("check SO_PEERCRED instead of a file's mode");
    close(sock, client);
    close(conn, server);
    close(listener, server);
    server_note("the name is gone with its socket: nothing to clean up");
    Ok(())
}
// ANCHOR_END: abstract_name

// ANCHOR: pair
/// A connected pair: the second thread sends two messages and ends; then
/// this thread reads. A stream joins them, SOCK_SEQPACKET keeps them apart.
fn pair(kind: Type, shown: &'static str) -> Result<(), Failure> {
    let (here, there) = Socket::pair(Domain::UNIX, kind, None)
        .told(|| server("socketpair").args(format!("AF_UNIX, {shown}")))?;
    let worker = thread::spawn(move || -> Result<(), Failure> {
        for message in [b"one\n", b"two\n"] {
            there
                .send(message)
                .told(|| client("send").on(&there).args(bytes(message)))?;
        }
        close(there, client);
        Ok(())
    });
    worker.join().map_err(|_| Failure::new("worker", "panicked"))??;

    let mut buf = [0u8; RECV_SIZE];
    loop {
        let n = (&here)
            .read(&mut buf)
            .told(|| server("recv").on(&here).args(RECV_SIZE).data(&buf))?;
        if n == 0 {
            break;
        }
    }
    close(here, server);
    Ok(())
}
// ANCHOR_END: pair

// ANCHOR: hand_over
/// The server accepts a client and passes the connection down a
/// socketpair; the worker gets another number for the same open socket
/// and answers the client, who never knows.
fn hand_over(listener: &Socket, path: &Path) -> Result<(), Failure> {
    let (to_worker, from_server) =
        Socket::pair(Domain::UNIX, Type::STREAM, None).told(|| {
            server("socketpair").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC")
        })?;
    let sock = connect(path)?;
    let (conn, _) = listener.accept().told(|| server("accept").on(listener))?;
    let before = fstat(&conn).map(Kind).told(|| server("fstat").on(&conn))?;
    send_fd(&to_worker, &conn)?;

    server_note("the worker's end of the pair:");
    let passed = receive_fd(&from_server)?;
    let after =
        fstat(&passed).map(Kind).told(|| server("fstat").on(&passed))?;
    let same = before.0.st_ino == after.0.st_ino;
    expect(same, "another number, the same inode: the same open socket");
    close(conn, server);
    server_note("the server's number is closed; the connection is not");

    let line = b"who answers?\n";
    sock.send(line).told(|| client("send").on(&sock).args(bytes(line)))?;
    let conn = Socket::from(passed);
    let mut buf = [0u8; RECV_SIZE];
    let n = (&conn)
        .read(&mut buf)
        .told(|| server("recv").on(&conn).args(RECV_SIZE).data(&buf))?;
    let echo = &buf[..n];
    conn.send(echo).told(|| server("send").on(&conn).args(bytes(echo)))?;
    (&sock)
        .read(&mut buf)
        .told(|| client("recv").on(&sock).args(RECV_SIZE).data(&buf))?;
    client_note("the same connection, served by the worker");
    close(sock, client);
    close(conn, server);
    close(to_worker, server);
    close(from_server, server);
    Ok(())
}
// ANCHOR_END: hand_over

// ANCHOR: at_the_limit
/// The server hands its listening socket to a worker that is at its
/// descriptor limit: the message arrives, the descriptor does not.
fn at_the_limit(listener: &Socket) -> Result<(), Failure> {
    let (to_worker, from_server) =
        Socket::pair(Domain::UNIX, Type::STREAM, None).told(|| {
            server("socketpair").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC")
        })?;
    send_fd(&to_worker, listener)?;

    // The lowest free number: a duplicate gets it, and gives it back.
    let free = to_worker.try_clone().or_fail("dup")?.as_raw_fd() as u64;
    let nofile = Resource::RLIMIT_NOFILE;
    let (soft, hard) = getrlimit(nofile).or_fail("getrlimit")?;
    setrlimit(nofile, free, hard)
        .told(|| server("setrlimit").args(format!("RLIMIT_NOFILE, {free}")))?;
    server_note("the worker may not open another descriptor now:");
    match receive_fd(&from_server) {
        Err(lost) => server_note(format!("{lost}, closed by the kernel")),
        Ok(_) => server_note(format!("{NOT_SHOWN}: a descriptor came")),
    }
    setrlimit(nofile, soft, hard)
        .told(|| server("setrlimit").args("RLIMIT_NOFILE, as before"))?;
    close(to_worker, server);
    close(from_server, server);
    Ok(())
}
// ANCHOR_END: at_the_limit

// ANCHOR: send_fd
/// Sends one byte with `fd` attached: the kernel puts a reference to the
/// open file in the message, as `dup` would, for the receiver to install.
fn send_fd(end: &Socket, fd: &impl AsRawFd) -> Result<(), Failure> {
    let fds = [fd.as_raw_fd()];
    let data = [IoSlice::new(b"x")];
    let rights = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(end.as_raw_fd(), &data, &rights, MsgFlags::empty(), None)
        .told(|| {
            let shown = format!("{}, SCM_RIGHTS [fd {}]", bytes(b"x"), fds[0]);
            server("sendmsg").on(end).args(shown)
        })?;
    Ok(())
}
// ANCHOR_END: send_fd

// ANCHOR: receive_fd
/// Receives a message and the descriptor it carries: the lowest number
/// free in this process, close-on-exec like every other here.
fn receive_fd(end: &Socket) -> Result<OwnedFd, Failure> {
    let mut buf = [0u8; 16];
    let mut data = [IoSliceMut::new(&mut buf)];
    // Room for one descriptor. If more came, the kernel closes the rest
    // and sets MSG_CTRUNC, as it does when we are at our descriptor limit.
    let mut room = nix::cmsg_space!(RawFd);
    let flags = MsgFlags::MSG_CMSG_CLOEXEC;
    let got = recvmsg::<()>(end.as_raw_fd(), &mut data, Some(&mut room), flags)
        .map(Passed::from)
        .told(|| server("recvmsg").on(end).args("16, MSG_CMSG_CLOEXEC"))?;
    if got.truncated {
        return Err(Failure::new("recvmsg", "MSG_CTRUNC: descriptors lost"));
    }
    got.fds.into_iter().next().ok_or(Failure::new("recvmsg", "no descriptor"))
}
// ANCHOR_END: receive_fd

/// What one `recvmsg` brought: bytes and descriptors.
struct Passed {
    bytes: usize,
    fds: Vec<OwnedFd>,
    truncated: bool,
}

impl From<RecvMsg<'_, '_, ()>> for Passed {
    fn from(msg: RecvMsg<'_, '_, ()>) -> Passed {
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().into_iter().flatten() {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel has just installed these descriptors
                // in this process for us, and nothing else owns them.
                fds.extend(
                    raw.iter().map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
        Passed { bytes: msg.bytes, fds, truncated }
    }
}

impl Outcome for Passed {
    fn ret(&self) -> Ret {
        Ret::Value(self.bytes as i64)
    }
    fn detail(&self) -> String {
        let fds: Vec<String> = self
            .fds
            .iter()
            .map(|fd| format!("fd {}", fd.as_raw_fd()))
            .collect();
        let cut = if self.truncated { ", MSG_CTRUNC" } else { "" };
        if fds.is_empty() {
            format!("no descriptor{cut}")
        } else {
            format!("SCM_RIGHTS [{}]{cut}", fds.join(", "))
        }
    }
}

/// A client's socket, connected to the file at `path`.
fn connect(path: &Path) -> Result<Socket, Failure> {
    let addr = SockAddr::unix(path).or_fail("socket path")?;
    let sock = Socket::new(Domain::UNIX, Type::STREAM, None)
        .told(|| client("socket").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC"))?;
    sock.connect(&addr)
        .told(|| client("connect").on(&sock).args(quoted(path)))?;
    Ok(sock)
}

/// A path as the transcript and strace show it: quoted bytes.
fn quoted(path: &Path) -> String {
    bytes(path.as_os_str().as_encoded_bytes())
}

/// A note saying what was shown, or that it was not.
fn expect(shown: bool, what: &str) {
    if shown {
        server_note(what);
    } else {
        server_note(format!("{NOT_SHOWN}: {what}"));
    }
}

/// Which column a call is narrated in.
type Side = fn(&'static str) -> Call;

/// Closes a descriptor, `side`'s: dropping it is `close(2)`.
fn close(fd: impl Into<OwnedFd>, side: Side) {
    let fd: OwnedFd = fd.into();
    let number = fd.as_raw_fd();
    drop(fd);
    tell(|| side("close").on_fd(number).gave(&()));
}

/// A directory of the demo's own, made with mkdtemp (mode 0700) and made
/// the current one, so the socket's path is short and the same on every
/// run; removed with what is left in it when the demo ends.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn enter() -> Result<PrivateDir, Failure> {
        let template = std::env::temp_dir().join("lesson-15-demo-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).or_fail("mkdtemp")?;
        std::env::set_current_dir(&dir).or_fail("chdir")?;
        Ok(PrivateDir(dir))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
