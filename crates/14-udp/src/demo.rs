//! The demo: every side played by one thread, which works because a UDP
//! `sendto` waits for nobody. On loopback, Linux queues the datagram at
//! the receiver (or drops it) within the `sendto` call; the reads block
//! where they can, and the drain after the flood, which cannot, checks
//! its count against the kernel's drop counter.
//!
//! Each call carries its line of the timeline as a suffix, `.told(|| ...)`,
//! which prints only in the demo (see the transcript crate).

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, RecvMsg, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, SockRef, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, bytes, client, client_note,
    section, server, server_note, tell,
};

use crate::client::is_timeout;

/// The receive buffer of the demo's reads: small on purpose.
const SMALL: usize = 100;
/// The datagram that does not fit in [`SMALL`].
const BIG: usize = 2000;
/// Datagrams sent at a receiver that does not read.
const SENT: usize = 500;
/// That receiver's `SO_RCVBUF`: room for a handful of datagrams.
const RCVBUF: usize = 4096;

/// Every socket of the demo binds to loopback, port 0.
fn loopback() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

/// The timeline: boundaries, truncation, senders, ICMP, loss, broadcast
/// and a retry.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    section("boundaries kept: two datagrams, two receives");
    let echo = udp(server)?;
    let to = bind(&echo, server, loopback())?;
    let a = udp(client)?;
    boundaries(&echo, &a, to)?;

    section("a datagram bigger than the buffer");
    truncation(&echo, &a, to)?;

    section("no connection: each datagram says who sent it");
    senders(&echo, &a, to)?;

    section("a connected UDP socket, and nobody there");
    refused(echo, &a, to)?;
    close(a, client);

    section("a receiver that does not read: datagrams dropped");
    loss()?;

    section("broadcast: one datagram, a copy for every socket");
    broadcast()?;

    section("request and reply: a timeout, then a retry");
    retry()
}

// ANCHOR: udp
/// A UDP socket: `SOCK_DGRAM` instead of lesson 2's `SOCK_STREAM`. It
/// becomes std's `UdpSocket`, whose calls read like the server's.
fn udp(side: fn(&'static str) -> Call) -> Result<UdpSocket, Failure> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)
        .told(|| side("socket").args("AF_INET, SOCK_DGRAM|SOCK_CLOEXEC"))?;
    Ok(socket.into())
}

/// Binds `socket` to `addr` and returns the address it got (its port).
fn bind(
    socket: &UdpSocket,
    side: fn(&'static str) -> Call,
    addr: SocketAddr,
) -> Result<SocketAddr, Failure> {
    SockRef::from(socket)
        .bind(&addr.into())
        .told(|| side("bind").on(socket).args(addr))?;
    socket.local_addr().told(|| side("getsockname").on(socket))
}
// ANCHOR_END: udp

// ANCHOR: boundaries
/// Two datagrams sent are two received, each whole: the boundaries the
/// sender made are kept, where lesson 5's TCP merged two sends into one.
fn boundaries(
    echo: &UdpSocket,
    a: &UdpSocket,
    to: SocketAddr,
) -> Result<(), Failure> {
    client_note("no bind, no connect: the first sendto picks a port");
    for word in [&b"hello"[..], b"world"] {
        a.send_to(word, to)
            .told(|| client("sendto").on(a).args(bytes(word)).args(to))?;
    }
    let mut buf = [0u8; SMALL];
    for _ in 0..2 {
        echo.recv_from(&mut buf)
            .told(|| server("recvfrom").on(echo).args(SMALL).data(&buf))?;
    }
    server_note("two sendto, two recvfrom: never one \"helloworld\"");
    Ok(())
}
// ANCHOR_END: boundaries

// ANCHOR: truncation
/// A datagram longer than the buffer is cut to the buffer, and the rest is
/// thrown away: the next read is the next datagram. `MSG_TRUNC` makes
/// `recv` return the datagram's real length.
fn truncation(
    echo: &UdpSocket,
    a: &UdpSocket,
    to: SocketAddr,
) -> Result<(), Failure> {
    let big = [b'x'; BIG];
    let sent = || client("sendto").on(a).args(format!("{BIG} bytes"));
    a.send_to(&big, to).told(|| sent().args(to))?;
    let mut buf = [0u8; SMALL];
    echo.recv_from(&mut buf)
        .told(|| server("recvfrom").on(echo).args(SMALL))?;
    server_note(format!("{SMALL} of the {BIG} bytes; the rest is gone:"));
    a.send_to(b"next", to)
        .told(|| client("sendto").on(a).args(bytes(b"next")).args(to))?;
    echo.recv_from(&mut buf)
        .told(|| server("recvfrom").on(echo).args(SMALL).data(&buf))?;

    a.send_to(&big, to).told(|| sent().args(to))?;
    let mut raw = [MaybeUninit::<u8>::uninit(); SMALL];
    SockRef::from(echo)
        .recv_with_flags(&mut raw, libc::MSG_TRUNC)
        .told(|| server("recv").on(echo).args(SMALL).args("MSG_TRUNC"))?;
    server_note(format!("{BIG}: its real length, {SMALL} bytes copied"));
    Ok(())
}
// ANCHOR_END: truncation

// ANCHOR: senders
/// One socket hears from anyone: each `recvfrom` says who sent the
/// datagram, and a reply is a datagram sent to that address.
fn senders(
    echo: &UdpSocket,
    a: &UdpSocket,
    to: SocketAddr,
) -> Result<(), Failure> {
    let b = udp(client)?;
    b.send_to(b"from b", to)
        .told(|| client("sendto").on(&b).args(bytes(b"from b")).args(to))?;
    a.send_to(b"from a", to)
        .told(|| client("sendto").on(a).args(bytes(b"from a")).args(to))?;
    let a_is = a.local_addr().told(|| client("getsockname").on(a))?;
    let b_is = b.local_addr().told(|| client("getsockname").on(&b))?;
    client_note("0.0.0.0: sendto bound them to every local address");

    let mut buf = [0u8; SMALL];
    let recv = || server("recvfrom").on(echo).args(SMALL);
    let (_, first) = echo.recv_from(&mut buf).told(|| recv().data(&buf))?;
    let (_, second) = echo.recv_from(&mut buf).told(|| recv().data(&buf))?;
    // By port: the datagrams come from 127.0.0.1, the sockets are bound
    // to 0.0.0.0.
    if (first.port(), second.port()) == (b_is.port(), a_is.port()) {
        server_note(format!(
            "one socket, two senders: fd {}'s port, then fd {}'s",
            b.as_raw_fd(),
            a.as_raw_fd()
        ));
    }
    // The reply goes where the datagram came from.
    echo.send_to(b"hi b", first)
        .told(|| server("sendto").on(echo).args(bytes(b"hi b")).args(first))?;
    b.recv_from(&mut buf)
        .told(|| client("recvfrom").on(&b).args(SMALL).data(&buf))?;
    close(b, client);
    Ok(())
}
// ANCHOR_END: senders

// ANCHOR: refused
/// `connect` on a UDP socket sends nothing: it records a peer. Then the
/// ICMP "port unreachable" that answers a datagram to a closed port comes
/// back as `ECONNREFUSED`, on the next call. An unconnected socket is not
/// told.
fn refused(
    echo: UdpSocket,
    a: &UdpSocket,
    to: SocketAddr,
) -> Result<(), Failure> {
    let c = udp(client)?;
    c.connect(to).told(|| client("connect").on(&c).args(to))?;
    client_note("nothing sent: the kernel only records the peer");
    c.set_read_timeout(Some(Duration::from_secs(1)))
        .told(|| client("setsockopt").on(&c).args("SO_RCVTIMEO, 1 s"))?;
    close(echo, server);
    server_note("the server has gone: nobody receives on its port");

    c.send(b"anyone?")
        .told(|| client("send").on(&c).args(bytes(b"anyone?")))?;
    let mut buf = [0u8; SMALL];
    match c.recv(&mut buf).traced(|| client("recv").on(&c).args(SMALL)) {
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            client_note("ICMP port unreachable, reported on the next call")
        }
        other => drop(other.or_fail("recv")?),
    }
    a.send_to(b"anyone?", to)
        .told(|| client("sendto").on(a).args(bytes(b"anyone?")).args(to))?;
    let mut raw = [MaybeUninit::<u8>::uninit(); SMALL];
    let peek = || client("recv").on(a).args(SMALL).args("MSG_DONTWAIT");
    match SockRef::from(a)
        .recv_with_flags(&mut raw, libc::MSG_DONTWAIT)
        .traced(peek)
    {
        Err(err) if is_timeout(&err) => {
            client_note("EAGAIN: an unconnected socket is not told")
        }
        other => drop(other.or_fail("recv")?),
    }
    close(c, client);
    Ok(())
}
// ANCHOR_END: refused

// ANCHOR: loss
/// A receiver with a small buffer that does not read while [`SENT`]
/// datagrams arrive. Each `sendto` succeeds; the datagrams that do not fit
/// are dropped, and only the receiver's drop counter knows.
fn loss() -> Result<(), Failure> {
    let inbox = udp(server)?;
    SockRef::from(&inbox).set_recv_buffer_size(RCVBUF).told(|| {
        server("setsockopt").on(&inbox).args("SO_RCVBUF").args(RCVBUF)
    })?;
    // Ask the kernel to attach its count of this socket's dropped
    // datagrams to each one received (`man 7 socket`).
    setsockopt(&inbox, sockopt::RxqOvfl, &1)
        .told(|| server("setsockopt").on(&inbox).args("SO_RXQ_OVFL, 1"))?;
    let to = bind(&inbox, server, loopback())?;

    let sender = udp(client)?;
    flood(&sender, to)?;
    let arrived = drain(&inbox)?;
    let ask = b"how many?";
    sender
        .send_to(ask, to)
        .told(|| client("sendto").on(&sender).args(bytes(ask)).args(to))?;
    let dropped = drop_count(&inbox)?;
    if arrived + dropped == SENT && dropped > 0 {
        server_note(format!("arrived N + dropped D = {SENT} sent, D > 0"));
    } else {
        server_note(format!("arrived {arrived}, dropped {dropped}?"));
    }
    close(sender, client);
    close(inbox, server);
    Ok(())
}
// ANCHOR_END: loss

// ANCHOR: flood
/// Sends [`SENT`] datagrams of 64 bytes; the first is narrated. None
/// waits for room at the receiver, and none fails.
fn flood(sender: &UdpSocket, to: SocketAddr) -> Result<(), Failure> {
    let datagram = [b'.'; 64];
    sender
        .send_to(&datagram, to)
        .told(|| client("sendto").on(sender).args("64 bytes").args(to))?;
    for _ in 1..SENT {
        sender.send_to(&datagram, to).or_fail("sendto")?;
    }
    client_note(format!("{} more like it, each = 64: no error", SENT - 1));
    Ok(())
}
// ANCHOR_END: flood

// ANCHOR: drain
/// Reads what is waiting without waiting for more (`MSG_DONTWAIT`), and
/// returns how many datagrams that was.
fn drain(inbox: &UdpSocket) -> Result<usize, Failure> {
    let mut raw = [MaybeUninit::<u8>::uninit(); SMALL];
    let mut arrived = 0;
    loop {
        match SockRef::from(inbox).recv_with_flags(&mut raw, libc::MSG_DONTWAIT)
        {
            Ok(_) => arrived += 1,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err).or_fail("recv"),
        }
    }
    // How many fit depends on the kernel's accounting: the note says N.
    server_note("recv, MSG_DONTWAIT: N datagrams, then EAGAIN");
    Ok(arrived)
}
// ANCHOR_END: drain

// ANCHOR: drop_count
/// Receives one datagram with `recvmsg` and reads the drop counter the
/// kernel attached to it: how many datagrams this socket has dropped.
fn drop_count(inbox: &UdpSocket) -> Result<usize, Failure> {
    let mut buf = [0u8; SMALL];
    let mut space = nix::cmsg_space!(u32);
    let mut dropped = 0;
    let fd = inbox.as_raw_fd();
    recvmsg::<()>(
        fd,
        &mut [IoSliceMut::new(&mut buf)],
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map(|msg| {
        dropped = dropped_in(&msg);
        msg.bytes
    })
    .told(|| {
        server("recvmsg").on(inbox).args(SMALL).data(&buf).detail("D dropped")
    })?;
    Ok(dropped)
}
// ANCHOR_END: drop_count

/// The `SO_RXQ_OVFL` count in a received message's control data; the
/// kernel sends none while it is 0.
fn dropped_in<S>(msg: &RecvMsg<'_, '_, S>) -> usize {
    let Ok(mut cmsgs) = msg.cmsgs() else { return 0 };
    cmsgs
        .find_map(|c| match c {
            ControlMessageOwned::RxqOvfl(n) => usize::try_from(n).ok(),
            _ => None,
        })
        .unwrap_or(0)
}

// ANCHOR: broadcast
/// 127.255.255.255 is loopback's broadcast address (`ip route show table
/// local`). Sending to it needs `SO_BROADCAST`; then every socket bound to
/// it and the port gets a copy.
fn broadcast() -> Result<(), Failure> {
    let everyone: SocketAddr = ([127, 255, 255, 255], 0).into();
    let first = udp(server)?;
    shared(&first)?;
    let to = bind(&first, server, everyone)?;
    let second = udp(server)?;
    shared(&second)?;
    bind(&second, server, to)?;

    let sender = udp(client)?;
    let send = || client("sendto").on(&sender).args(bytes(b"all")).args(to);
    match sender.send_to(b"all", to).traced(send) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            client_note("EACCES: a broadcast address needs SO_BROADCAST")
        }
        other => drop(other.or_fail("sendto")?),
    }
    sender
        .set_broadcast(true)
        .told(|| client("setsockopt").on(&sender).args("SO_BROADCAST, 1"))?;
    sender.send_to(b"all", to).told(send)?;
    let mut buf = [0u8; SMALL];
    for inbox in [&first, &second] {
        inbox
            .recv_from(&mut buf)
            .told(|| server("recvfrom").on(inbox).args(SMALL).data(&buf))?;
    }
    close(sender, client);
    close(second, server);
    close(first, server);
    Ok(())
}
// ANCHOR_END: broadcast

/// Lets a second socket bind the same address and port (`SO_REUSEADDR`).
fn shared(socket: &UdpSocket) -> Result<(), Failure> {
    SockRef::from(socket)
        .set_reuse_address(true)
        .told(|| server("setsockopt").on(socket).args("SO_REUSEADDR, 1"))
}

// ANCHOR: retry
/// What `client.rs` does when a datagram is lost, played step by step:
/// the demo's server drops the first request, the client's `recv` times
/// out, and the client sends again.
fn retry() -> Result<(), Failure> {
    let echo = udp(server)?;
    let to = bind(&echo, server, loopback())?;
    let c = udp(client)?;
    c.connect(to).told(|| client("connect").on(&c).args(to))?;
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .told(|| client("setsockopt").on(&c).args("SO_RCVTIMEO, 100 ms"))?;

    let ping = b"ping\n";
    let send = || client("send").on(&c).args(bytes(ping));
    c.send(ping).told(send)?;
    let mut buf = [0u8; SMALL];
    let recv = || server("recvfrom").on(&echo).args(SMALL);
    echo.recv_from(&mut buf).told(|| recv().data(&buf))?;
    server_note("dropped, as a busy network would: no reply");
    let mut reply = [0u8; SMALL];
    let wait = || client("recv").on(&c).args(SMALL);
    match c.recv(&mut reply).traced(wait) {
        Err(err) if is_timeout(&err) => {
            client_note("no reply within 100 ms: send again (try 2 of 3)")
        }
        other => drop(other.or_fail("recv")?),
    }
    c.send(ping).told(send)?;
    let (n, peer) = echo.recv_from(&mut buf).told(|| recv().data(&buf))?;
    echo.send_to(&buf[..n], peer).told(|| {
        server("sendto").on(&echo).args(bytes(&buf[..n])).args(peer)
    })?;
    c.recv(&mut reply).told(|| wait().data(&reply))?;
    client_note("TCP resent lost bytes for you; over UDP, the client does");
    close(c, client);
    close(echo, server);
    Ok(())
}
// ANCHOR_END: retry

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: impl AsRawFd, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
