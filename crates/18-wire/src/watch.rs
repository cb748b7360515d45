//! The watcher, what you take away: a packet socket on the loopback
//! interface that sees one TCP port, and just enough parsing of Ethernet,
//! IPv4 and TCP to say what each segment carries.

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::time::Duration;

use socket2::{
    Domain, SockAddr, SockAddrStorage, SockFilter, Socket, Type, socklen_t,
};
use transcript::{Call, Failure, OrFail, Told, actor, log};

/// The largest frame loopback carries: its MTU, 65536, and the 14 bytes of
/// the Ethernet header that `lo` puts in front.
pub const FRAME: usize = 65536 + 14;

/// A call the watcher makes: column 0 of the demo's timeline.
pub fn watcher(name: &'static str) -> Call {
    actor(0, name)
}

// ANCHOR: open
/// A packet socket on `lo` that sees the frames `filter` keeps (the TCP
/// segments of one port: [`port_filter`]), and nothing else. Needs root or
/// CAP_NET_RAW: it sees every process's traffic.
pub fn open(filter: &[SockFilter]) -> Result<Socket, Failure> {
    let lo = loopback_index()?;
    // Whole frames (SOCK_RAW), Ethernet header included. Protocol 0: the
    // socket receives nothing yet, so no other port's packet is queued
    // before the filter is on.
    let sock = match Socket::new(Domain::PACKET, Type::RAW, None).traced(|| {
        watcher("socket").args("AF_PACKET, SOCK_RAW|SOCK_CLOEXEC, 0")
    }) {
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
            return Err(Failure::new(
                "socket AF_PACKET",
                "not permitted: watching packets needs root or CAP_NET_RAW",
            ));
        }
        other => other.or_fail("socket AF_PACKET")?,
    };
    // The kernel runs the filter on every frame, before queueing it.
    sock.attach_filter(filter).told(|| {
        watcher("setsockopt").on(&sock).args(format_args!(
            "SO_ATTACH_FILTER, {} instructions",
            filter.len()
        ))
    })?;
    // From here on: every frame through `lo`, of every protocol, that the
    // filter keeps.
    sock.bind(&link_address(lo))
        .told(|| watcher("bind").on(&sock).args("lo, ETH_P_ALL"))?;
    Ok(sock)
}
// ANCHOR_END: open

/// The loopback interface's number, which `bind` wants instead of its name.
fn loopback_index() -> Result<u32, Failure> {
    // SAFETY: a NUL-terminated name; the call reads it and returns 0 or
    // the interface's index.
    match unsafe { libc::if_nametoindex(c"lo".as_ptr()) } {
        0 => Err(io::Error::last_os_error()).or_fail("if_nametoindex lo"),
        index => Ok(index),
    }
}

/// The address a packet socket binds to: an interface and a protocol.
fn link_address(ifindex: u32) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll fits in the storage, which is zeroed.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    // Network byte order, as on the wire: every protocol, not only IPv4.
    ll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    ll.sll_ifindex = ifindex as i32;
    let len = size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: the family and the length say sockaddr_ll, which it is.
    unsafe { SockAddr::new(storage, len) }
}

/// Classic BPF opcodes, as `tcpdump -d` names them.
pub mod bpf {
    pub const LDH: u16 = 0x28; // ldh [k]: A = the 16 bits at offset k
    pub const LDB: u16 = 0x30; // ldb [k]: A = the byte at offset k
    pub const LDXB_MSH: u16 = 0xb1; // ldxb 4*([k]&0xf): X = IP header length
    pub const LDH_X: u16 = 0x48; // ldh [x + k]
    pub const JEQ: u16 = 0x15; // jeq #k, jt, jf: if A == k skip jt, else jf
    pub const RET: u16 = 0x06; // ret #k: keep k bytes (0: drop the frame)
}
use bpf::{JEQ, LDB, LDH, LDH_X, LDXB_MSH, RET};

// ANCHOR: port_filter
/// "TCP over IPv4, to or from `port`" in classic BPF: what `tcpdump -dd
/// 'ip and tcp port 8018'` prints, less fragments (loopback has none). A
/// jump's two numbers say how many instructions to skip if A equals k, and
/// if not.
pub fn port_filter(port: u16) -> [SockFilter; 11] {
    let (port, ip, tcp) = (u32::from(port), libc::ETH_P_IP as u32, 6);
    [
        SockFilter::new(LDH, 0, 0, 12), // 0: the EtherType
        SockFilter::new(JEQ, 0, 8, ip), // 1: not IPv4: to 10
        SockFilter::new(LDB, 0, 0, 23), // 2: the IP protocol
        SockFilter::new(JEQ, 0, 6, tcp), // 3: not TCP: to 10
        SockFilter::new(LDXB_MSH, 0, 0, 14), // 4: X = IP header length
        SockFilter::new(LDH_X, 0, 0, 14), // 5: the source port
        SockFilter::new(JEQ, 2, 0, port), // 6: ours: to 9
        SockFilter::new(LDH_X, 0, 0, 16), // 7: the destination port
        SockFilter::new(JEQ, 0, 1, port), // 8: ours: to 9, else 10
        SockFilter::new(RET, 0, 0, u32::MAX), // 9: keep the whole frame
        SockFilter::new(RET, 0, 0, 0),  // 10: drop it
    ]
}
// ANCHOR_END: port_filter

// ANCHOR: receive
/// Reads one frame: its length, and whether this host sent it
/// (`PACKET_OUTGOING`) or received it (`PACKET_HOST`). On `lo` every
/// segment passes twice, once each way.
pub fn receive(sock: &Socket, frame: &mut [u8]) -> io::Result<(usize, u8)> {
    // SAFETY: recvfrom only writes bytes; initialised bytes stay so.
    let buf = unsafe { &mut *(frame as *mut [u8] as *mut [MaybeUninit<u8>]) };
    let (n, from) = sock.recv_from(buf)?;
    // The sender's address is a sockaddr_ll; sll_pkttype is the direction.
    let from = from.as_ptr().cast::<libc::sockaddr_ll>();
    // SAFETY: a packet socket's recvfrom fills in a sockaddr_ll.
    let pkttype = unsafe { (*from).sll_pkttype };
    Ok((n, pkttype))
}
// ANCHOR_END: receive

/// A TCP segment, as much of it as this lesson prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub source: u16,
    pub destination: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    /// Bytes of data after the TCP header.
    pub len: usize,
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

// ANCHOR: parse
/// The TCP segment in an Ethernet frame, if it holds one. Every field is
/// big-endian (network order) at a fixed offset, except that the IP and
/// TCP headers say their own lengths (options make them longer).
pub fn parse(frame: &[u8]) -> Option<Segment> {
    let u16_at = |i: usize| {
        Some(u16::from_be_bytes([*frame.get(i)?, *frame.get(i + 1)?]))
    };
    let u32_at = |i: usize| {
        Some(u32::from(u16_at(i)?) << 16 | u32::from(u16_at(i + 2)?))
    };
    // Ethernet: 6 + 6 bytes of addresses (zeros on lo), the EtherType.
    if u16_at(12)? != libc::ETH_P_IP as u16 || *frame.get(23)? != 6 {
        return None;
    }
    let ip = 14;
    let ip_header = usize::from(frame[ip] & 0x0f) * 4;
    let ip_total = usize::from(u16_at(ip + 2)?);
    let tcp = ip + ip_header;
    let tcp_header = usize::from(*frame.get(tcp + 12)? >> 4) * 4;
    Some(Segment {
        source: u16_at(tcp)?,
        destination: u16_at(tcp + 2)?,
        seq: u32_at(tcp + 4)?,
        ack: u32_at(tcp + 8)?,
        flags: *frame.get(tcp + 13)?,
        window: u16_at(tcp + 14)?,
        len: ip_total.checked_sub(ip_header + tcp_header)?,
    })
}
// ANCHOR_END: parse

/// A segment described relative to its connection: which way it goes,
/// and its numbers counted from each side's first sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub from_client: bool,
    pub flags: u8,
    pub seq: u32,
    /// The acknowledgement number, when the ACK flag makes it mean one.
    pub ack: Option<u32>,
    pub window: u16,
    pub len: usize,
}

// ANCHOR: conversation
/// One TCP connection to the watched port. Each side picks a random
/// initial sequence number (ISN) in its SYN; counting from it makes the
/// numbers the same on every run, as tcpdump does by default.
pub struct Conversation {
    server_port: u16,
    client_isn: u32,
    server_isn: u32,
}

impl Conversation {
    pub fn new(server_port: u16) -> Conversation {
        Conversation { server_port, client_isn: 0, server_isn: 0 }
    }

    pub fn see(&mut self, segment: &Segment) -> Seen {
        let from_client = segment.destination == self.server_port;
        let (own, other) = if from_client {
            (&mut self.client_isn, self.server_isn)
        } else {
            (&mut self.server_isn, self.client_isn)
        };
        if segment.flags & SYN != 0 {
            *own = segment.seq; // a SYN carries its sender's ISN
        }
        let own = *own;
        Seen {
            from_client,
            flags: segment.flags,
            seq: segment.seq.wrapping_sub(own),
            ack: (segment.flags & ACK != 0)
                .then(|| segment.ack.wrapping_sub(other)),
            window: segment.window,
            len: segment.len,
        }
    }
}
// ANCHOR_END: conversation

/// The flags by name, in tcpdump's order: `SYN+ACK`, `PSH+ACK`, `FIN+ACK`.
pub fn flag_names(flags: u8) -> String {
    let names = [(SYN, "SYN"), (FIN, "FIN"), (RST, "RST"), (PSH, "PSH")];
    let mut shown: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if flags & ACK != 0 {
        shown.push("ACK");
    }
    shown.join("+")
}

impl Seen {
    /// `client > server  SYN+ACK  seq 0  ack 1  len 0`, and the window
    /// when `window` is set.
    pub fn line(&self, window: bool) -> String {
        let way = match self.from_client {
            true => "client > server",
            false => "server > client",
        };
        let mut line =
            format!("{way}  {:<8} seq {}", flag_names(self.flags), self.seq);
        if let Some(ack) = self.ack {
            line += &format!("  ack {ack}");
        }
        if window {
            line += &format!("  win {}", self.window);
        }
        line + &format!("  len {}", self.len)
    }
}

// ANCHOR: run
/// `lesson-18 watch`: prints each segment to or from `port` as it passes,
/// one line per segment (the outgoing copy), until `idle` passes with
/// none.
pub fn run(port: u16, idle: Duration) -> Result<(), Failure> {
    let sock = open(&port_filter(port))?;
    sock.set_read_timeout(Some(idle)).or_fail("setsockopt SO_RCVTIMEO")?;
    log!("Watching TCP port {port} on lo");
    let mut conversation = Conversation::new(port);
    let mut frame = vec![0u8; FRAME];
    loop {
        let (n, pkttype) = match receive(&sock, &mut frame) {
            Ok(got) => got,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                log!("Nothing for {idle:?}: done");
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).or_fail("recvfrom"),
        };
        // The same segment comes back as PACKET_HOST: print it once.
        if pkttype != libc::PACKET_OUTGOING {
            continue;
        }
        if let Some(segment) = parse(&frame[..n]) {
            log!("{}", conversation.see(&segment).line(true));
        }
    }
}
// ANCHOR_END: run
