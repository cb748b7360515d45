//! `lesson-18 beside N`: lesson N's demo, with the segments each of its
//! calls sent printed just before the line that narrates the call (TCP
//! over IPv4 and IPv6; UDP datagrams and ICMP errors over IPv4).
//!
//! Three things make the view exact rather than roughly right:
//! - the demo runs in a network namespace of its own (`unshare -n`): a
//!   loopback interface no other program uses, so every TCP segment on it
//!   is the demo's, whatever its ports;
//! - on loopback the kernel hands the packet socket its copy of a segment
//!   while the call that sent it is still running, so once a call has
//!   returned, its segments are in the watcher's queue;
//! - the demo waits after each line it prints until this program has read
//!   that queue (`TRANSCRIPT_PACED_BY`), so no later call's segment is read
//!   before the line; and a server thread or forked child whose lines the
//!   demo prints for it (lessons 10 and 11) waits after each call until
//!   its line has been printed, so it cannot run ahead of its lines.
//!
//! What stays timing-dependent is what the kernel sends on a timer: a
//! delayed ACK, a window update. `--steady` hides those pure ACKs (the
//! snapshots and the book use it), but keeps the handshake's ACK, the last
//! ACK of a close, and probes (keepalive, zero window).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use socket2::{SockFilter, Socket};
use transcript::{Failure, OrFail};

use crate::watch::{self, ACK, FIN, RST, SYN, Segment, flag_names};

/// The descriptor the demo reads its go-ahead from: high, so that it does
/// not shift the descriptor numbers the demo's transcript shows.
const PACER_FD: i32 = 100;

/// How much of each frame the watcher keeps: the Ethernet header and the
/// largest IPv4 and TCP headers (60 bytes each). The data is not printed.
const SNAP: u32 = 14 + 60 + 60;

/// Runs lesson `lesson`'s demo beside its segments.
pub fn run(lesson: u32, steady: bool) -> Result<(), Failure> {
    let demo = demo_path(lesson)?;
    isolate()?;
    let sock = watch::open(&tcp_filter())?;
    // A bulk transfer (lesson 4) queues thousands of frames between two
    // lines: room for them all, which root may ask for (SO_RCVBUFFORCE).
    force_receive_buffer(&sock, 64 << 20)?;
    let (go_read, go_write) = pipe()?;
    let mut command = Command::new(&demo);
    command.env(transcript::PACED_ENV, PACER_FD.to_string());
    let go_read_fd = go_read.as_raw_fd();
    // SAFETY: dup2 is async-signal-safe; the child's copy of the pipe
    // loses its close-on-exec flag at the fixed number, the original
    // keeps it.
    unsafe {
        command.pre_exec(move || match libc::dup2(go_read_fd, PACER_FD) {
            -1 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .or_fail(format!("run {}", demo.display()))?;
    drop(go_read);
    let lines = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut go = std::fs::File::from(go_write);
    let mut wire = Wire::new(steady);
    let mut out = io::stdout().lock();
    for line in lines.lines() {
        let line = line.or_fail("read the demo's output")?;
        for shown in wire.read(&sock)? {
            let _ = writeln!(out, "{shown}");
        }
        let _ = writeln!(out, "{line}");
        // The demo goes on to its next call only now.
        let _ = go.write_all(b".");
    }
    for shown in wire.read(&sock)? {
        let _ = writeln!(out, "{shown}");
    }
    let status = child.wait().or_fail("wait for the demo")?;
    match status.success() {
        true => Ok(()),
        false => Err(Failure::new(format!("lesson {lesson}"), status)),
    }
}

/// `target/<profile>/lesson-NN`, beside this program.
fn demo_path(lesson: u32) -> Result<PathBuf, Failure> {
    let me = std::env::current_exe().or_fail("find this program")?;
    let path = me.with_file_name(format!("lesson-{lesson:02}"));
    match path.exists() {
        true => Ok(path),
        false => Err(Failure::new(
            format!("lesson {lesson}"),
            format!("no {} (build it first)", path.display()),
        )),
    }
}

/// Moves this process into a new network namespace and brings its
/// loopback interface up (it starts down, with 127.0.0.1 on it).
fn isolate() -> Result<(), Failure> {
    // SAFETY: no pointer; the call fails or moves this process.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let err = io::Error::last_os_error();
        return Err(Failure::new(
            "unshare CLONE_NEWNET",
            format!("{err}: a network namespace of its own needs root"),
        ));
    }
    // Interface flags are read and set through any socket's ioctl.
    let sock = Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
        .or_fail("socket AF_INET, SOCK_DGRAM")?;
    // SAFETY: an all-zero ifreq is valid; the name fits with its NUL.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in ifr.ifr_name.iter_mut().zip(b"lo") {
        *to = *from as libc::c_char;
    }
    let fd = sock.as_raw_fd();
    // SAFETY: SIOCGIFFLAGS and SIOCSIFFLAGS read and write an ifreq.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            return Err(io::Error::last_os_error()).or_fail("SIOCGIFFLAGS lo");
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) != 0 {
            return Err(io::Error::last_os_error()).or_fail("SIOCSIFFLAGS lo");
        }
    }
    Ok(())
}

/// TCP over IPv4 or IPv6, and UDP and ICMP over IPv4 (lesson 14), any
/// port: in a namespace of its own, every such packet is the demo's.
/// Keeps the headers of each frame, not the data.
fn tcp_filter() -> [SockFilter; 11] {
    use watch::bpf::{JEQ, LDB, LDH, RET};
    let (ip, ipv6) = (libc::ETH_P_IP as u32, libc::ETH_P_IPV6 as u32);
    let (tcp, udp, icmp) = (6, 17, 1);
    [
        SockFilter::new(LDH, 0, 0, 12), // 0: the EtherType
        SockFilter::new(JEQ, 0, 4, ip), // 1: not IPv4: to 6
        SockFilter::new(LDB, 0, 0, 23), // 2: the IPv4 protocol
        SockFilter::new(JEQ, 5, 0, tcp), // 3: TCP: to 9
        SockFilter::new(JEQ, 4, 0, udp), // 4: UDP: to 9
        SockFilter::new(JEQ, 3, 4, icmp), // 5: ICMP: to 9, else 10
        SockFilter::new(JEQ, 0, 3, ipv6), // 6: not IPv6 either: to 10
        SockFilter::new(LDB, 0, 0, 20), // 7: the IPv6 next header
        SockFilter::new(JEQ, 0, 1, tcp), // 8: not TCP: to 10
        SockFilter::new(RET, 0, 0, SNAP), // 9: keep the headers
        SockFilter::new(RET, 0, 0, 0),  // 10: drop it
    ]
}

/// A UDP datagram, or the ICMP "port unreachable" that answers one (and
/// quotes its ports).
enum Datagram {
    Udp { source: u16, destination: u16, len: usize },
    Unreachable { source: u16, destination: u16 },
}

/// The UDP datagram or ICMP port unreachable in an IPv4 frame.
fn parse_datagram(frame: &[u8]) -> Option<Datagram> {
    let u16_at = |i: usize| {
        Some(u16::from_be_bytes([*frame.get(i)?, *frame.get(i + 1)?]))
    };
    let header = |at: usize| Some(usize::from(*frame.get(at)? & 0x0f) * 4);
    if u16_at(12)? != libc::ETH_P_IP as u16 {
        return None;
    }
    let next = 14 + header(14)?;
    match *frame.get(14 + 9)? {
        17 => Some(Datagram::Udp {
            source: u16_at(next)?,
            destination: u16_at(next + 2)?,
            len: usize::from(u16_at(next + 4)?).checked_sub(8)?,
        }),
        // Type 3, code 3; then the IP header and first 8 bytes (the UDP
        // header) of the datagram that found no socket.
        1 if u16_at(next)? == 0x0303 => {
            let udp = next + 8 + header(next + 8)?;
            Some(Datagram::Unreachable {
                source: u16_at(udp)?,
                destination: u16_at(udp + 2)?,
            })
        }
        _ => None,
    }
}

/// The TCP segment in a frame of IPv4 ([`watch::parse`]) or of IPv6,
/// whose header is 40 bytes (loopback adds no extension headers) and
/// gives the length of what follows it.
fn parse(frame: &[u8]) -> Option<Segment> {
    let u16_at = |i: usize| {
        Some(u16::from_be_bytes([*frame.get(i)?, *frame.get(i + 1)?]))
    };
    if u16_at(12)? != libc::ETH_P_IPV6 as u16 {
        return watch::parse(frame);
    }
    let (ip, tcp) = (14, 14 + 40);
    if *frame.get(ip + 6)? != 6 {
        return None;
    }
    let tcp_header = usize::from(*frame.get(tcp + 12)? >> 4) * 4;
    let u32_at = |i: usize| {
        Some(u32::from(u16_at(i)?) << 16 | u32::from(u16_at(i + 2)?))
    };
    Some(Segment {
        source: u16_at(tcp)?,
        destination: u16_at(tcp + 2)?,
        seq: u32_at(tcp + 4)?,
        ack: u32_at(tcp + 8)?,
        flags: *frame.get(tcp + 13)?,
        window: u16_at(tcp + 14)?,
        len: usize::from(u16_at(ip + 4)?).checked_sub(tcp_header)?,
    })
}

fn force_receive_buffer(sock: &Socket, bytes: i32) -> Result<(), Failure> {
    // SAFETY: the option's value is an int, passed with its size.
    let got = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    match got {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()).or_fail("SO_RCVBUFFORCE"),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Failure> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills in two descriptors, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).or_fail("pipe2");
    }
    // SAFETY: both were just opened and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// One connection, numbered in the order its first SYN was seen.
struct Connection {
    number: usize,
    client_port: u16,
    isn: [u32; 2],
    /// Just past each side's FIN, once sent: client, server.
    fin_end: [Option<u32>; 2],
    /// The sequence number each side will send next (relative).
    next: [u32; 2],
}

/// The segments seen so far, connection by connection.
struct Wire {
    steady: bool,
    /// Connections and UDP flows so far: the next one's number less 1.
    count: usize,
    connections: HashMap<(u16, u16), Connection>,
    /// Each UDP flow's number and the port of its first sender.
    flows: HashMap<(u16, u16), (usize, u16)>,
    frame: Vec<u8>,
    /// The last line of this read, so that `--steady` shows a run of
    /// equal lines between two lines of the demo once (500 datagrams,
    /// probes repeated on a timer).
    last: Option<String>,
}

impl Wire {
    fn new(steady: bool) -> Wire {
        Wire {
            steady,
            count: 0,
            connections: HashMap::new(),
            flows: HashMap::new(),
            frame: vec![0; watch::FRAME],
            last: None,
        }
    }

    /// The lines for every segment queued now, without waiting.
    fn read(&mut self, sock: &Socket) -> Result<Vec<String>, Failure> {
        sock.set_nonblocking(true).or_fail("set O_NONBLOCK")?;
        let mut shown = Vec::new();
        self.last = None;
        loop {
            let (n, pkttype) = match watch::receive(sock, &mut self.frame) {
                Ok(got) => got,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    continue;
                }
                Err(err) => return Err(err).or_fail("recvfrom"),
            };
            if pkttype != libc::PACKET_OUTGOING {
                continue; // the same segment, coming in
            }
            let n = n.min(self.frame.len());
            let frame = &self.frame[..n];
            let line = match (parse(frame), parse_datagram(frame)) {
                (Some(segment), _) => self.see(&segment),
                (None, Some(datagram)) => Some(self.see_datagram(&datagram)),
                (None, None) => None,
            };
            if let Some(line) = line {
                if !(self.steady && self.last.as_ref() == Some(&line)) {
                    shown.push(line.clone());
                }
                self.last = Some(line);
            }
        }
        Ok(shown)
    }

    /// The line for a UDP datagram or the ICMP error that answers one. The
    /// first to send in a flow is its client.
    fn see_datagram(&mut self, d: &Datagram) -> String {
        let (source, destination, what) = match d {
            Datagram::Udp { source, destination, len } => {
                (*source, *destination, format!("UDP      len {len}"))
            }
            Datagram::Unreachable { source, destination } => {
                // It goes back to the datagram's sender.
                (*destination, *source, "ICMP     port unreachable".into())
            }
        };
        let key = (source.min(destination), source.max(destination));
        let count = &mut self.count;
        let (number, client) = *self.flows.entry(key).or_insert_with(|| {
            *count += 1;
            (*count, source)
        });
        let way = match source == client {
            true => "client > server",
            false => "server > client",
        };
        format!("      wire #{number} {way}  {what}")
    }

    /// The line for one segment, or None when `--steady` hides it.
    fn see(&mut self, s: &Segment) -> Option<String> {
        let key = (s.source.min(s.destination), s.source.max(s.destination));
        if s.flags & (SYN | ACK) == SYN && !self.connections.contains_key(&key)
        {
            self.count += 1;
            self.connections.entry(key).or_insert(Connection {
                number: self.count,
                client_port: s.source,
                isn: [s.seq, 0],
                fin_end: [None, None],
                next: [0, 0],
            });
        }
        let conn = self.connections.get_mut(&key)?;
        let from_client = s.source == conn.client_port;
        let (me, other) = if from_client { (0, 1) } else { (1, 0) };
        if s.flags & SYN != 0 {
            conn.isn[me] = s.seq;
        }
        let seq = s.seq.wrapping_sub(conn.isn[me]);
        let ack = s.ack.wrapping_sub(conn.isn[other]);
        if s.flags & FIN != 0 {
            conn.fin_end[me] = Some(seq + s.len as u32 + 1);
        }
        // A probe (keepalive, or of a zero window) repeats the last byte
        // already acknowledged: its sequence number is one behind.
        let probe = s.flags == ACK
            && s.len == 0
            && seq.wrapping_add(1) == conn.next[me];
        let end = seq + s.len as u32 + u32::from(s.flags & (SYN | FIN) != 0);
        conn.next[me] = conn.next[me].max(end);
        let pure_ack = s.flags == ACK && s.len == 0 && s.window != 0 && !probe;
        // Kept by --steady: the handshake's ACK, and the last ACK of a
        // close (of the FIN that came second: no timer delays it); probes
        // are not counted as pure ACKs.
        let handshake = seq == 1 && ack == 1 && from_client;
        let last =
            conn.fin_end[me].is_some() && Some(ack) == conn.fin_end[other];
        if self.steady && pure_ack && !handshake && !last {
            return None;
        }
        let way = match from_client {
            true => "client > server",
            false => "server > client",
        };
        let mut line = format!(
            "      wire #{} {way}  {:<8} seq {seq}",
            conn.number,
            flag_names(s.flags)
        );
        if s.flags & ACK != 0 {
            line += &format!("  ack {ack}");
        }
        if s.len > 0 {
            line += &format!("  len {}", s.len);
        }
        // A zero window says "stop sending"; on a RST it means nothing.
        if s.window == 0 && s.flags & (ACK | RST) == ACK {
            line += "  win 0";
        }
        if probe {
            line += "  (a probe: seq one behind)";
        }
        Some(line)
    }
}
