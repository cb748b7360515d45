//! TCP states by the kernel's numbers (`include/net/tcp_states.h`), and the
//! row of one connection in the text of `/proc/net/tcp`, the table `ss -tan`
//! and `netstat` read (see `man 5 proc`). Pure text logic: the lesson opens
//! and reads the file itself, and narrates it.

use std::net::SocketAddr;

/// The name of a TCP state number, as `tcpi_state` (lesson 9) and the `st`
/// column of /proc/net/tcp give it.
pub fn name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "unknown state",
    }
}

/// Finds the row for `local -> peer` in /proc/net/tcp's text and names its
/// state; `None` when the kernel lists no such connection (or for IPv6,
/// which is in /proc/net/tcp6). Addresses there are hex: the IPv4 address
/// as a native-endian 32-bit number, then the port, `0100007F:1F41` for
/// 127.0.0.1:8001 on x86.
pub fn find(
    table: &str,
    local: SocketAddr,
    peer: SocketAddr,
) -> Option<&'static str> {
    let hex = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        )),
        SocketAddr::V6(_) => None,
    };
    let (local, peer) = (hex(local)?, hex(peer)?);
    // The first line holds the column titles.
    let state = table.lines().skip(1).find_map(|row| {
        let fields: Vec<&str> = row.split_whitespace().collect();
        (fields.get(1) == Some(&local.as_str())
            && fields.get(2) == Some(&peer.as_str()))
        .then(|| fields.get(3).copied())
        .flatten()
    })?;
    Some(u8::from_str_radix(state, 16).map_or("unknown state", name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_have_the_kernels_names() {
        assert_eq!(name(1), "ESTABLISHED");
        assert_eq!(name(6), "TIME_WAIT");
        assert_eq!(name(10), "LISTEN");
        assert_eq!(name(12), "unknown state");
    }

    // The address column is native-endian: this table is a little-endian
    // machine's.
    #[cfg(target_endian = "little")]
    #[test]
    fn a_connection_is_found_by_its_4_tuple() {
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 0100007F:A0C8 0100007F:1F41 06 00000000:00000000 03:00001770 00000000     0        0 0 3
   2: 0100007F:1F41 0100007F:A0C8 01 00000000:00000000 00:00000000 00000000  1000        0 2 1
";
        let server: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let client: SocketAddr = "127.0.0.1:41160".parse().unwrap();
        let nobody: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert_eq!(find(table, client, server), Some("TIME_WAIT"));
        assert_eq!(find(table, server, client), Some("ESTABLISHED"));
        assert_eq!(find(table, server, nobody), Some("LISTEN"));
        assert_eq!(find(table, client, nobody), None);
        assert_eq!(find(table, "[::1]:8001".parse().unwrap(), server), None);
    }
}
