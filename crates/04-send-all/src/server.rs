//! The server: it sends each client a block of bytes with a write-all loop,
//! on a nonblocking socket, so that every short send can be seen.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::SockRef;
use transcript::{Failure, OrFail, log};

use crate::pattern;

// ANCHOR: server
/// Listens on `addr` and sends each client `size` bytes, one client after
/// the other, for ever.
pub fn run(
    addr: SocketAddr,
    size: usize,
    sndbuf: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {local}");
    let data = pattern(size);
    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                log!("accept: {err}");
                continue;
            }
        };
        log!("Connected with {peer}");
        serve_one(&conn, peer, &data, sndbuf, timeout);
        // Dropping the stream closes it: after the last byte, a FIN.
    }
}
// ANCHOR_END: server

// ANCHOR: serve_one
/// Sends `data` to one client through a send buffer of `sndbuf` bytes, and
/// says how it went.
fn serve_one(
    conn: &TcpStream,
    peer: SocketAddr,
    data: &[u8],
    sndbuf: usize,
    timeout: Duration,
) {
    let sock = SockRef::from(conn);
    if let Err(err) = sock.set_send_buffer_size(sndbuf) {
        log!("setsockopt SO_SNDBUF for {peer}: {err}; closing");
        return;
    }
    match sock.send_buffer_size() {
        Ok(got) => log!("SO_SNDBUF: asked for {sndbuf}, the kernel set {got}"),
        Err(err) => log!("getsockopt SO_SNDBUF for {peer}: {err}"),
    }
    // Nonblocking: a send that finds no room returns EAGAIN at once
    // instead of waiting, so every short count is visible.
    if let Err(err) = conn.set_nonblocking(true) {
        log!("set_nonblocking for {peer}: {err}; closing");
        return;
    }
    match send_all(conn, data, timeout) {
        Ok(Tally { sent, sends, short, waits }) => log!(
            "Sent {sent} bytes to {peer} in {sends} sends \
             ({short} short, {waits} waits for room)"
        ),
        Err(Stalled { err, .. }) if err.kind() == io::ErrorKind::TimedOut => {
            log!("no room for {timeout:?}: {peer} stopped reading; closing")
        }
        Err(Stalled { sent, err }) => {
            log!("send to {peer}: {err} after {sent} bytes; closing")
        }
    }
}
// ANCHOR_END: serve_one

// ANCHOR: send_all
/// The write-all loop: offer what is left, advance by what the kernel took,
/// until it has taken every byte. On a nonblocking socket a send that finds
/// no room at all fails with `EAGAIN`: then wait for room, and go on.
fn send_all(
    conn: &TcpStream,
    data: &[u8],
    timeout: Duration,
) -> Result<Tally, Stalled> {
    let mut tally = Tally::default();
    while tally.sent < data.len() {
        let rest = &data[tally.sent..];
        match (&*conn).write(rest) {
            // On a stream socket the kernel never takes 0 bytes of a
            // non-empty buffer: stop rather than spin.
            Ok(0) => {
                let err = io::ErrorKind::WriteZero.into();
                return Err(Stalled { sent: tally.sent, err });
            }
            Ok(n) => {
                if n < rest.len() {
                    let asked = rest.len();
                    log!(
                        "send: asked to take {asked} bytes, the kernel took {n}"
                    );
                    tally.short += 1;
                }
                tally.sends += 1;
                tally.sent += n;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let (sent, total) = (tally.sent, data.len());
                log!("send would block after {sent} of {total}: poll for room");
                tally.waits += 1;
                if let Err(err) = wait_for_room(conn, timeout) {
                    return Err(Stalled { sent, err });
                }
            }
            // A signal came before any byte was taken: nothing happened.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // Unlike write_all, the loop can say how far it got.
            Err(err) => return Err(Stalled { sent: tally.sent, err }),
        }
    }
    Ok(tally)
}
// ANCHOR_END: send_all

// ANCHOR: wait_for_room
/// Sleeps in `poll` until the socket has room to send (the peer's ACKs
/// free some), at most `timeout`: a peer that stops reading gets an error
/// of kind `TimedOut` instead of holding the server for ever.
fn wait_for_room(conn: &TcpStream, timeout: Duration) -> io::Result<()> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, timeout) {
        Ok(0) => Err(io::ErrorKind::TimedOut.into()),
        // Room, or a signal (Ctrl-Z, then fg): the loop sends again.
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
// ANCHOR_END: wait_for_room

/// What the loop did: how many bytes in how many sends, how many of those
/// were short, and how often it waited for room.
#[derive(Default)]
struct Tally {
    sent: usize,
    sends: usize,
    short: usize,
    waits: usize,
}

/// Why the loop stopped before the end, and how many bytes it had sent.
struct Stalled {
    sent: usize,
    err: io::Error,
}
