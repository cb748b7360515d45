//! A solution of exercise 14: a UDP server that does a retried request
//! once, and answers it again.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};

// ANCHOR: serve
/// Serves `socket`, already bound, for ever: `ID AMOUNT` adds AMOUNT to
/// the total once per client and ID, and is answered `ID TOTAL`.
pub fn serve(socket: UdpSocket) -> io::Result<()> {
    let mut total: u64 = 0;
    // Per client: its last request's number and the reply it got. Its
    // earlier requests were answered, or it would not have gone on.
    let mut last: HashMap<SocketAddr, (u64, Vec<u8>)> = HashMap::new();
    let mut buf = [0u8; 512];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        let text = String::from_utf8_lossy(&buf[..n]);
        let Some((id, amount)) = parse(&text) else {
            socket.send_to(b"error", from)?;
            continue;
        };
        let reply = match last.get(&from) {
            // Its reply was lost, or is late: the same reply again.
            Some((done, reply)) if *done == id => reply.clone(),
            _ => {
                total += amount;
                let reply = format!("{id} {total}").into_bytes();
                last.insert(from, (id, reply.clone()));
                reply
            }
        };
        socket.send_to(&reply, from)?;
    }
}
// ANCHOR_END: serve

/// `ID AMOUNT`, both numbers, or `None`.
fn parse(text: &str) -> Option<(u64, u64)> {
    let (id, amount) = text.trim().split_once(' ')?;
    Some((id.parse().ok()?, amount.parse().ok()?))
}
