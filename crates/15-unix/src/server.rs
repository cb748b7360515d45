//! A line server on a socket file: it claims its path safely, lets only
//! the file's mode decide who connects, asks the kernel who each caller
//! is, and echoes each line back, one thread per client (lesson 10).

use std::fmt::{self, Display};
use std::fs::{self, Permissions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::thread;

use nix::sys::socket::{UnixCredentials, getsockopt, sockopt};
use nix::sys::stat::{FileStat, SFlag, lstat};
use nix::unistd::{getgid, getpid, getuid, unlink};
use socket2::{Domain, SockAddr, Socket, Type};
use transcript::{
    Failure, OrFail, Outcome, Ret, Told, bytes, log, server, tell,
};

use crate::MAX_LINE;

// ANCHOR: run
/// Claims `path`, lets the owner and whoever `mode` allows connect, and
/// serves every client on a thread of its own, for ever.
pub fn run(path: &Path, mode: u32) -> Result<(), Failure> {
    let listener = claim(path, mode)?;
    log!("Listening on {} (mode {mode:04o})", path.display());
    loop {
        // An accept error concerns one connection, not the server.
        let conn = match listener.accept() {
            Ok((conn, _unnamed)) => conn,
            Err(err) => {
                log!("accept: {err}");
                continue;
            }
        };
        // Asked once, at once: the kernel recorded the caller at connect.
        let peer = match who(&conn) {
            Ok(peer) => peer.to_string(),
            Err(err) => format!("a peer the kernel cannot name ({err})"),
        };
        log!("Connected: {peer}");
        thread::spawn(move || serve(&conn, &peer));
    }
}
// ANCHOR_END: run

// ANCHOR: claim
/// A listening socket bound to `path`, which only the users `mode` allows
/// may connect to. A file already there is removed only when it is a
/// socket nobody answers on: what a server that died left behind. A live
/// server's socket, or any other file, stays.
pub fn claim(path: &Path, mode: u32) -> Result<Socket, Failure> {
    let name = bytes(path.as_os_str().as_encoded_bytes());
    // sun_path holds 108 bytes: a longer path is refused here.
    let addr = SockAddr::unix(path).or_fail(format!("{}", path.display()))?;
    let listener = Socket::new(Domain::UNIX, Type::STREAM, None)
        .told(|| server("socket").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let bound = listener
        .bind(&addr)
        .traced(|| server("bind").on(&listener).args(&name));
    match bound {
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => {
            if let Err(refused) = remove_if_stale(path, &addr) {
                close(listener);
                return Err(refused);
            }
            listener
                .bind(&addr)
                .told(|| server("bind").on(&listener).args(&name))?;
        }
        other => other.or_fail(format!("bind {}", path.display()))?,
    }
    listener.listen(5).told(|| server("listen").on(&listener).args(5))?;
    // connect(2) needs write permission on the socket file (man 7 unix):
    // its mode is the server's access control. root passes regardless.
    fs::set_permissions(path, Permissions::from_mode(mode))
        .told(|| server("chmod").args(format!("{name}, {mode:04o}")))?;
    Ok(listener)
}
// ANCHOR_END: claim

// ANCHOR: remove_if_stale
/// Removes the file at `path` if it is a socket and connecting to it is
/// refused: nobody listens there any more. Between this check and the
/// next bind another server could claim the path; a lock file closes
/// that gap where two servers may start at once.
fn remove_if_stale(path: &Path, addr: &SockAddr) -> Result<(), Failure> {
    let name = bytes(path.as_os_str().as_encoded_bytes());
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)
        .told(|| server("socket").args("AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let answer =
        probe.connect(addr).traced(|| server("connect").on(&probe).args(&name));
    // The answer is all a probe is for.
    close(probe);
    match answer {
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {}
        Ok(()) => {
            let why = "another server answers on it: leaving it alone";
            return Err(Failure::new(format!("bind {}", path.display()), why));
        }
        Err(err) => {
            return Err(Failure::new(format!("{}", path.display()), err));
        }
    }
    let kind = lstat(path).map(Kind).told(|| server("lstat").args(&name))?;
    if !kind.is_socket() {
        let why = "not a socket: leaving it alone";
        return Err(Failure::new(format!("bind {}", path.display()), why));
    }
    unlink(path).told(|| server("unlink").args(&name))?;
    Ok(())
}
// ANCHOR_END: remove_if_stale

/// Closes a socket the server is done with: dropping it is `close(2)`.
fn close(sock: Socket) {
    let fd = sock.as_raw_fd();
    drop(sock);
    tell(|| server("close").on_fd(fd).gave(&()));
}

// ANCHOR: who
/// Who is on the other end of `conn`: the pid, uid and gid the kernel
/// recorded when the client called connect. No network can say this.
pub fn who(conn: &Socket) -> Result<Peer, Failure> {
    getsockopt(conn, sockopt::PeerCredentials)
        .map(Peer)
        .told(|| server("getsockopt").on(conn).args("SO_PEERCRED"))
}
// ANCHOR_END: who

// ANCHOR: serve
/// Echoes each line until the client closes, sends a line longer than
/// `MAX_LINE`, or fails.
fn serve(conn: &Socket, peer: &str) {
    let mut lines = BufReader::new(conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds the memory one client can make us hold.
        let limit = (MAX_LINE + 1) as u64;
        match (&mut lines).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => return log!("{peer} closed the connection"),
            Ok(_) if line.len() > MAX_LINE => {
                return log!("{peer}: line over {MAX_LINE} bytes: closing");
            }
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return log!("recv from {peer}: {err}; closing"),
        }
        log!("Received {} bytes from {peer}: {}", line.len(), bytes(&line));
        let mut reply = conn;
        if let Err(err) = reply.write_all(&line) {
            return log!("send to {peer}: {err}; closing");
        }
    }
}
// ANCHOR_END: serve

/// The caller's credentials, as `SO_PEERCRED` gives them.
pub struct Peer(pub UnixCredentials);

impl Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.0;
        write!(f, "pid {}, uid {}, gid {}", c.pid(), c.uid(), c.gid())
    }
}

/// In a transcript: 0, then each id compared with this process's own, so
/// the line reads the same on every run and every machine.
impl Outcome for Peer {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        let c = &self.0;
        let same = |theirs: i64, ours: i64, call: &str| {
            let relation = if theirs == ours { "=" } else { "!=" };
            format!("{relation} {call}")
        };
        format!(
            "pid {}, uid {}, gid {}",
            same(c.pid().into(), getpid().as_raw().into(), "getpid()"),
            same(c.uid().into(), getuid().as_raw().into(), "getuid()"),
            same(c.gid().into(), getgid().as_raw().into(), "getgid()"),
        )
    }
}

/// What `lstat` says a file is, and its permission bits.
pub struct Kind(pub FileStat);

impl Kind {
    pub fn is_socket(&self) -> bool {
        SFlag::from_bits_truncate(self.0.st_mode) & SFlag::S_IFMT
            == SFlag::S_IFSOCK
    }
}

impl Outcome for Kind {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        let kind = if self.is_socket() { "S_IFSOCK" } else { "not a socket" };
        format!("{kind}, mode {:04o}", self.0.st_mode & 0o777)
    }
}
