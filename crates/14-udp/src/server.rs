//! A UDP echo server: one socket, no `listen`, no `accept`, no connection.
//! Each datagram comes with its sender's address, and the reply goes back
//! to that address.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use transcript::{Failure, OrFail, bytes, log};

use crate::MAX_DATAGRAM;

// ANCHOR: server
/// Receives datagrams on `addr` and sends each one back to its sender,
/// for ever.
pub fn run(addr: SocketAddr) -> Result<(), Failure> {
    // socket(AF_INET, SOCK_DGRAM) and bind, in one call. A port in use
    // ends the program with one line and exit status 1, as in lesson 2.
    let socket = UdpSocket::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = socket.local_addr().or_fail("getsockname")?;
    log!("Listening on {local} for datagrams");

    // Room for the largest datagram there is: a smaller buffer would cut
    // longer datagrams short, and the rest would be lost (MSG_TRUNC).
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        // One recv_from, one whole datagram, and who sent it.
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            // Stopped with Ctrl-Z and continued: nothing is wrong.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Any other error concerns one datagram, not the server.
            Err(err) => {
                log!("recvfrom: {err}");
                continue;
            }
        };
        let datagram = &buf[..n];
        log!("Received {n} bytes from {peer}: {}", bytes(datagram));
        // The reply is a datagram of its own, addressed to the sender. If
        // it is lost, nobody here knows: the client must ask again.
        if let Err(err) = socket.send_to(datagram, peer) {
            log!("sendto {peer}: {err}");
        }
    }
}
// ANCHOR_END: server
