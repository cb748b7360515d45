//! Exercise 8 (lesson 8): the accept queue of any listener, read from
//! outside the process the way `ss -ltn` shows it. Edit this file; `just
//! check 8` says whether it works, `just hint 8` gives a hint.

use std::fs;
use std::io;

/// How many connections wait in the accept queue of the IPv4 listener on
/// `port` (`ss -ltn`'s `Recv-Q`), or `None` when nothing listens there.
///
/// To do: as it stands it reads the table and finds nothing in it. Each
/// line after the header is one socket: find the listener's line (state
/// `0A`, LISTEN) whose local port is `port`, and return its `rx_queue`.
pub fn waiting(port: u16) -> io::Result<Option<u32>> {
    let table = fs::read_to_string("/proc/net/tcp")?;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // fields[1]: local address, fields[3]: state,
        // fields[4]: tx_queue:rx_queue
        let _ = (fields, port);
    }
    Ok(None)
}
