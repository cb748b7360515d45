//! A solution of exercise 18: count the segments of a conversation, each
//! once, by keeping only the copy that leaves.

use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{LinkAddr, recvfrom};
use socket2::Socket;

pub use crate::harness::Counts;

// ANCHOR: count
/// Counts the TCP segments `sock` receives until none comes for `idle`,
/// each once: on `lo` every segment passes twice, going out and coming in.
pub fn count(sock: &Socket, idle: Duration) -> io::Result<Counts> {
    sock.set_read_timeout(Some(idle))?;
    let mut counts = Counts::default();
    let mut frame = vec![0u8; 65536 + 14];
    loop {
        // recvfrom, not recv: the sender's sockaddr_ll says which way the
        // frame went, in sll_pkttype.
        let (n, from) = match recvfrom::<LinkAddr>(sock.as_raw_fd(), &mut frame)
        {
            Ok(got) => got,
            Err(errno) => match io::Error::from(errno) {
                err if matches!(
                    err.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) =>
                {
                    return Ok(counts); // quiet for `idle`: the end
                }
                err if err.kind() == ErrorKind::Interrupted => continue,
                err => return Err(err),
            },
        };
        let outgoing =
            from.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
        if outgoing && let Some((flags, len)) = parse(&frame[..n]) {
            add(&mut counts, flags, len);
        }
    }
}
// ANCHOR_END: count

/// Counts one segment with these TCP flags and this much data.
pub fn add(counts: &mut Counts, flags: u8, len: usize) {
    counts.segments += 1;
    counts.syns += usize::from(flags & 0x02 != 0);
    counts.fins += usize::from(flags & 0x01 != 0);
    counts.bytes += len;
}

/// The TCP flags and data length of the segment in an Ethernet frame
/// holding IPv4 and TCP (Listing 18-4, shorter).
pub fn parse(frame: &[u8]) -> Option<(u8, usize)> {
    let ip = frame.get(14..)?;
    let ip_header = usize::from(ip.first()? & 0x0f) * 4;
    let ip_total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let tcp = ip.get(ip_header..)?;
    let tcp_header = usize::from(tcp.get(12)? >> 4) * 4;
    Some((*tcp.get(13)?, ip_total.checked_sub(ip_header + tcp_header)?))
}
