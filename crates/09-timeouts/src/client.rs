//! Lesson 2's client with every wait bounded: the connect, each send and
//! each reply, and the size of a reply too.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail};

use crate::server::is_timeout;
use crate::{MAX_LINE, RECV_SIZE};

// ANCHOR: client
/// Connects within `timeout`, then sends each line typed and prints the
/// reply, giving up on a server that takes longer than `timeout`.
pub fn run(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    let socket = connect(addr, timeout)?;
    socket.set_read_timeout(Some(timeout)).or_fail("setsockopt SO_RCVTIMEO")?;
    socket
        .set_write_timeout(Some(timeout))
        .or_fail("setsockopt SO_SNDTIMEO")?;
    say(&format!("Connected to {addr}\n"))?;

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    loop {
        say("Please input data: ")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            say("\n")?;
            break;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        (&socket).write_all(&line).or_fail(format!("send {addr}"))?;
        let Some(reply) = reply(&socket, addr, timeout)? else {
            say("The server closed the connection\n")?;
            break;
        };
        let reply = String::from_utf8_lossy(&reply);
        say(&format!("Reply: {}\n", reply.trim_end()))?;
    }
    Ok(())
}
// ANCHOR_END: client

// ANCHOR: connect
/// A `connect` that gives up after `timeout`: the socket is nonblocking
/// for the handshake only, so that `poll` can bound it (lesson 8).
fn connect(addr: SocketAddr, timeout: Duration) -> Result<Socket, Failure> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), None)
        .or_fail("socket")?;
    let failed = |why: String| Failure::new(format!("connect {addr}"), why);
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {
            // poll counts in milliseconds up to about 24 days.
            let wait =
                PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
            if poll(&mut fds, wait).or_fail("poll")? == 0 {
                return Err(failed(format!("no answer within {timeout:?}")));
            }
            // The handshake ended; SO_ERROR says how.
            if let Some(err) =
                socket.take_error().or_fail("getsockopt SO_ERROR")?
            {
                return Err(failed(err.to_string()));
            }
        }
        Err(err) => return Err(failed(err.to_string())),
    }
    socket.set_nonblocking(false).or_fail("fcntl O_NONBLOCK")?;
    Ok(socket)
}
// ANCHOR_END: connect

// ANCHOR: reply
/// Reads one reply, up to its newline; `None` if the server closed first.
/// Each `recv` is bounded by SO_RCVTIMEO, but a server that streams bytes
/// without a newline never lets it fire: bound the reply's size too.
fn reply(
    socket: &Socket,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, Failure> {
    let failed = |why: String| Failure::new(format!("recv {addr}"), why);
    let mut reply = Vec::new();
    let mut buf = [0u8; RECV_SIZE];
    while !reply.ends_with(b"\n") {
        // The server echoes lines of at most MAX_LINE bytes.
        if reply.len() >= MAX_LINE {
            return Err(failed(format!(
                "no newline in the first {MAX_LINE} bytes of the reply"
            )));
        }
        match (&*socket).read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) if is_timeout(&err) => {
                return Err(failed(format!("no reply within {timeout:?}")));
            }
            Err(err) => return Err(failed(err.to_string())),
        }
    }
    Ok(Some(reply))
}
// ANCHOR_END: reply

/// Prints to the terminal, at once (the prompt has no newline). A closed
/// stdout ends the client with an error instead of a panic.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
