//! Experiment 3: "first come, first served" is not what the queue does. A
//! client whose SYN was dropped waits for its kernel to send it again,
//! about a second later, and a newcomer that arrives when there is room
//! goes first.

use std::net::SocketAddr;
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};
use transcript::{
    Failure, OrFail, Told, client, client_note, section, server, server_note,
};

use super::{NONBLOCKING, STREAM, close, polled, queue};

// ANCHOR: overtakes
/// Three clients and `listen(0)`, a queue of one: A fills it, B's SYN is
/// dropped, the server accepts A, and C, which connects only now, is
/// answered at once and accepted next, while B waits for its resend.
pub fn overtakes() -> Result<(), Failure> {
    section(
        "a newcomer overtakes a client that waits for its SYN to be resent",
    );
    let (listener, addr) = listen_zero()?;
    let (a, b) = fill_then_wait(&listener, addr)?;

    // The server makes room; C arrives now and is answered at once.
    let (first, _) =
        listener.accept().told(|| server("accept").on(&listener))?;
    let c = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args(STREAM))?;
    c.connect(&addr.into()).told(|| client("connect").on(&c).args(addr))?;
    let (second, peer) =
        listener.accept().told(|| server("accept").on(&listener))?;

    // Which client was that? The peer address says.
    let c_addr = c.local_addr().ok().and_then(|a| a.as_socket());
    let from_c = peer.as_socket().is_some() && peer.as_socket() == c_addr;
    server_note(if from_c {
        "that is C: it came after B and is accepted first. \
         B gets in only when its SYN is resent"
    } else {
        "NOT what this part shows: B came first"
    });
    for socket in [second, first, listener] {
        close(socket, server);
    }
    for socket in [c, b, a] {
        close(socket, client);
    }
    Ok(())
}
// ANCHOR_END: overtakes

/// A listener with backlog 0: its queue holds one connection (backlog + 1).
fn listen_zero() -> Result<(Socket, SocketAddr), Failure> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&any_port.into())
        .told(|| server("bind").on(&listener).args(any_port))?;
    listener.listen(0).told(|| server("listen").on(&listener).args(0))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    Ok((listener, addr))
}

// ANCHOR: fill_then_wait
/// A takes the one place in the queue; B finds it full, its SYN is
/// dropped, and its kernel will send it again in about a second (RFC
/// 6298). Returns A and B, B still in its `connect`.
fn fill_then_wait(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let a = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args(STREAM))?;
    a.connect(&addr.into()).told(|| client("connect").on(&a).args(addr))?;
    queue(listener)?;

    let b = Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None)
        .told(|| client("socket").args(NONBLOCKING))?;
    // EINPROGRESS, as for any nonblocking connect: not an error.
    let _ =
        b.connect(&addr.into()).traced(|| client("connect").on(&b).args(addr));
    // A zero timeout: poll only looks, and B's handshake has not ended.
    let mut fds = [PollFd::new(b.as_fd(), PollFlags::POLLOUT)];
    poll(&mut fds, PollTimeout::ZERO)
        .map(i64::from)
        .told(|| polled(client, &fds, "0 ms"))?;
    client_note("B is still in connect(): its SYN was dropped");
    Ok((a, b))
}
// ANCHOR_END: fill_then_wait
