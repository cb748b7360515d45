//! A solution of exercise 8: the accept queue of any listener, read from
//! `/proc/net/tcp` the way `ss -ltn` shows it.

use std::fs;
use std::io;

// ANCHOR: waiting
/// How many connections wait in the accept queue of the IPv4 listener on
/// `port` (`ss -ltn`'s `Recv-Q`), or `None` when nothing listens there.
pub fn waiting(port: u16) -> io::Result<Option<u32>> {
    const LISTEN: &str = "0A"; // TCP_LISTEN, in hexadecimal
    let table = fs::read_to_string("/proc/net/tcp")?;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, _, state, queues, ..] = fields[..] else {
            continue;
        };
        // "0100007F:1F90": the address, then the port, both in hex.
        let local_port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        if state != LISTEN || local_port != Some(port) {
            continue;
        }
        // "tx_queue:rx_queue"; for a listener, rx_queue is the number of
        // connections in its accept queue.
        let rx = queues
            .split_once(':')
            .and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok());
        return match rx {
            Some(rx) => Ok(Some(rx)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/net/tcp: no queue in {line:?}"),
            )),
        };
    }
    Ok(None)
}
// ANCHOR_END: waiting
