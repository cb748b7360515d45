//! The check of exercise 18: a packet socket on `lo` filtered to one port,
//! one conversation on that port (6 bytes each way, then both close), and
//! `count` on what the socket received. Needs root or CAP_NET_RAW.
//!
//! In the check's process, in a thread: `count` is a function over a
//! packet socket it is given, which must be open before the conversation
//! starts, so the process that converses opens it.

use std::io::{self, Read, Write};
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, SockAddr, SockAddrStorage, SockFilter, Socket, Type};

use crate::harness::{Counts, PATIENCE, start};

type Count = fn(&Socket, Duration) -> io::Result<Counts>;

/// How long `count` waits for one more frame before it calls it the end.
const IDLE: Duration = Duration::from_millis(100);

/// Runs the conversation, then `count`.
pub fn check(count: Count) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    let sock = open(addr.port())?;
    converse(&listener, addr).map_err(failed)?;
    let got = start("count", move || count(&sock, IDLE))
        .wait(PATIENCE)?
        .map_err(|err| format!("count failed: {err}"))?;
    let twice = "on lo the packet socket gets each segment twice, the copy \
                 going out and the copy coming in";
    let wanted = [
        (got.syns, 2, "SYN", "the client's SYN and the server's SYN+ACK"),
        (got.fins, 2, "FIN", "one from each side"),
        (got.bytes, 12, "byte of data", "\"hello\\n\" and \"HELLO\\n\""),
    ];
    for (found, wanted, what, which) in wanted {
        if found != wanted {
            let hint = if found == 2 * wanted {
                format!(": {twice}")
            } else {
                String::new()
            };
            return Err(format!(
                "the conversation had {wanted} {what}s ({which}); count \
                 found {found}{hint}"
            ));
        }
    }
    // SYN, SYN+ACK, ACK, two data segments, two FINs and the last ACK at
    // least; at most one ACK more per data segment and FIN.
    if !(8..=12).contains(&got.segments) {
        return Err(format!(
            "the conversation had 8 to 12 segments; count found {}",
            got.segments
        ));
    }
    Ok(())
}

/// Lesson 2's conversation, both ends here: 6 bytes each way, then the
/// client closes, and the server once it has read the end.
fn converse(listener: &TcpListener, addr: SocketAddr) -> io::Result<()> {
    let mut client = TcpStream::connect(addr)?;
    let (mut server, _) = listener.accept()?;
    client.write_all(b"hello\n")?;
    let mut buf = [0u8; 6];
    server.read_exact(&mut buf)?;
    server.write_all(b"HELLO\n")?;
    client.read_exact(&mut buf)?;
    drop(client);
    server.set_read_timeout(Some(PATIENCE))?;
    let mut rest = Vec::new();
    server.read_to_end(&mut rest)?;
    Ok(())
}

/// Lesson 18's `open` (Listing 18-1), without the narration: a packet
/// socket on `lo` that sees the TCP segments to or from `port`.
fn open(port: u16) -> Result<Socket, String> {
    let failed = |err: io::Error| format!("the check's packet socket: {err}");
    let sock = match Socket::new(Domain::PACKET, Type::RAW, None) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            return Err("the check opens a packet socket, which needs root \
                        or CAP_NET_RAW: run it as root (`sudo just check \
                        18`)"
                .into());
        }
        other => other.map_err(failed)?,
    };
    sock.attach_filter(&port_filter(port)).map_err(failed)?;
    // SAFETY: a NUL-terminated name; the call returns 0 or an index.
    let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    if lo == 0 {
        return Err(failed(io::Error::last_os_error()));
    }
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll fits in the storage, which is zeroed.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    ll.sll_ifindex = lo as i32;
    let len = size_of::<libc::sockaddr_ll>() as socket2::socklen_t;
    // SAFETY: the family and the length say sockaddr_ll, which it is.
    let addr = unsafe { SockAddr::new(storage, len) };
    sock.bind(&addr).map_err(failed)?;
    Ok(sock)
}

/// Lesson 18's filter (Listing 18-2): TCP over IPv4, to or from `port`.
fn port_filter(port: u16) -> [SockFilter; 11] {
    let (port, ip, tcp) = (u32::from(port), libc::ETH_P_IP as u32, 6);
    [
        SockFilter::new(0x28, 0, 0, 12),
        SockFilter::new(0x15, 0, 8, ip),
        SockFilter::new(0x30, 0, 0, 23),
        SockFilter::new(0x15, 0, 6, tcp),
        SockFilter::new(0xb1, 0, 0, 14),
        SockFilter::new(0x48, 0, 0, 14),
        SockFilter::new(0x15, 2, 0, port),
        SockFilter::new(0x48, 0, 0, 16),
        SockFilter::new(0x15, 0, 1, port),
        SockFilter::new(0x06, 0, 0, u32::MAX),
        SockFilter::new(0x06, 0, 0, 0),
    ]
}
