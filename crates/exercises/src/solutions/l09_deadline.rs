//! A solution of exercise 9: a deadline for the whole exchange, each wait
//! bounded by the time left.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

// ANCHOR: fetch
/// Connects, sends `request` and reads the answer until the server closes,
/// all within `limit`: every wait is bounded by the time left.
pub fn fetch(
    addr: SocketAddr,
    request: &[u8],
    limit: Duration,
) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut stream = TcpStream::connect_timeout(&addr, left(deadline)?)?;
    stream.set_write_timeout(Some(left(deadline)?))?;
    stream.write_all(request)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        stream.set_read_timeout(Some(left(deadline)?))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(answer),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            // Linux reports a read timeout as WouldBlock (EAGAIN).
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
// ANCHOR_END: fetch

// ANCHOR: left
/// The time left until `deadline`, or `TimedOut` when there is none: a
/// zero timeout would mean "wait for ever" to the kernel, and std refuses
/// it anyway.
fn left(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        let why = "the deadline passed before the answer was complete";
        return Err(io::Error::new(io::ErrorKind::TimedOut, why));
    }
    Ok(left)
}
// ANCHOR_END: left
