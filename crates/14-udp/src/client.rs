//! A request/reply client over UDP: each line typed is one datagram; the
//! client waits a bounded time for the echo and sends again a bounded
//! number of times. TCP did both for lessons 2 to 13.

use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail};

use crate::MAX_DATAGRAM;

// ANCHOR: client
/// Sends each line typed to `addr` and prints the reply, giving each send
/// `timeout` to be answered and each line `tries` sends.
pub fn run(
    addr: SocketAddr,
    timeout: Duration,
    tries: usize,
) -> Result<(), Failure> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::DGRAM, None).or_fail("socket")?;
    // A connected UDP socket: no packet is sent. The kernel records the
    // peer, and binds the socket to a free port on the address its route
    // to the peer leaves from (127.0.0.1 for loopback), not to 0.0.0.0.
    // Then recv takes only that peer's datagrams, and an ICMP "port
    // unreachable" comes back as ECONNREFUSED (an unconnected socket is
    // not told).
    socket.connect(&addr.into()).or_fail(format!("connect {addr}"))?;
    let socket = UdpSocket::from(socket);
    say(&format!("Sending to {addr}\n"))?;

    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut reply = vec![0u8; MAX_DATAGRAM];
    loop {
        say("Please input data: ")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if read == 0 || line == b"\n" {
            say("\n")?;
            return Ok(());
        }
        let n = ask(&socket, &line, &mut reply, timeout, tries)?;
        let text = String::from_utf8_lossy(&reply[..n]);
        say(&format!("Reply: {}\n", text.trim_end()))?;
    }
}
// ANCHOR_END: client

// ANCHOR: ask
/// Sends `request` until its echo comes back, at most `tries` times,
/// waiting at most `timeout` after each send; returns the reply's length.
fn ask(
    socket: &UdpSocket,
    request: &[u8],
    reply: &mut [u8],
    timeout: Duration,
    tries: usize,
) -> Result<usize, Failure> {
    for attempt in 1..=tries {
        socket.send(request).or_fail("send")?;
        let deadline = Instant::now() + timeout;
        // Until the deadline: a reply that is not our echo is a late
        // answer to an earlier line, and waiting goes on.
        while let Some(left) = until(deadline) {
            socket.set_read_timeout(Some(left)).or_fail("SO_RCVTIMEO")?;
            match socket.recv(reply) {
                Ok(n) if reply[..n] == *request => return Ok(n),
                Ok(_) => continue,
                Err(err) if is_timeout(&err) => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // ECONNREFUSED: ICMP said nobody receives on that port.
                Err(err) => return Err(Failure::new("recv", err)),
            }
        }
        if attempt < tries {
            say(&format!("No reply within {timeout:?}: sending again\n"))?;
        }
    }
    Err(Failure::new("no reply", format!("{tries} tries, {timeout:?} each")))
}
// ANCHOR_END: ask

/// The time left before `deadline`, or `None` once it has passed (a zero
/// read timeout would mean "wait for ever" to the kernel).
fn until(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// A read timeout is `WouldBlock` (EAGAIN) on Linux, `TimedOut` elsewhere.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// Prints to the terminal at once (the prompt has no newline).
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
