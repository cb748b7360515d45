//! The demo: a watcher on a fresh port, then TCP conversations on that
//! port, then what the watcher read, drawn as the article's sequence
//! diagram. One thread plays every part: the kernel, not the program,
//! sends the segments, and the watcher's queue keeps them in order until
//! it reads them.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, actor, bytes, note, section, tell,
};

use crate::watch::{
    self, ACK, Conversation, FIN, RST, Seen, flag_names, watcher,
};

/// How long the watcher waits for a segment it expects: the kernel queues
/// each one before the call that sent it returns, so this only bounds a
/// run that went wrong.
const WAIT: Duration = Duration::from_secs(2);

/// A call of the conversation: column 1, the server's and the client's.
fn peer(name: &'static str) -> Call {
    actor(1, name)
}

/// The timeline, then the diagrams.
pub fn run() -> Result<(), Failure> {
    let timeline = Transcript::new(&["watcher", "server and client"]);
    let (listener, addr) = listen()?;
    let sock = watch::open(&watch::port_filter(addr.port()))?;
    sock.set_read_timeout(Some(WAIT))
        .told(|| watcher("setsockopt").on(&sock).args("SO_RCVTIMEO, 2 s"))?;

    section("one conversation: handshake, data, FIN both ways");
    orderly(&listener, addr)?;
    let first = read_wire(&sock, addr.port(), true)?;

    section("SO_LINGER 0 (lesson 6): close sends RST");
    abortive(&listener, addr)?;
    let second = read_wire(&sock, addr.port(), false)?;

    close(sock, watcher);
    close(listener, peer);
    drop(timeline);
    draw("the first conversation", &first);
    draw("the second conversation", &second);
    Ok(())
}

/// The server's listening socket on a port the kernel picks.
fn listen() -> Result<(Socket, SocketAddr), Failure> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| peer("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&wanted.into())
        .told(|| peer("bind").on(&listener).args(wanted))?;
    let addr = listener
        .local_addr()
        .told(|| peer("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(5).told(|| peer("listen").on(&listener).args(5))?;
    Ok((listener, addr))
}

/// A client connects and the server accepts.
fn connect(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let client = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| peer("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    client
        .connect(&addr.into())
        .told(|| peer("connect").on(&client).args(addr))?;
    note(1, "SYN, SYN+ACK, ACK: done before connect returns");
    let (conn, _) = listener.accept().told(|| peer("accept").on(listener))?;
    Ok((client, conn))
}

// ANCHOR: orderly
/// Handshake, one message, and a FIN each way.
fn orderly(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    let (client, conn) = connect(listener, addr)?;
    let hello = b"hello\n";
    client.send(hello).told(|| peer("send").on(&client).args(bytes(hello)))?;
    let mut buf = [0u8; 64];
    (&conn)
        .read(&mut buf)
        .told(|| peer("recv").on(&conn).args(buf.len()).data(&buf))?;
    close(client, peer); // FIN from the client
    (&conn).read(&mut buf).told(|| peer("recv").on(&conn).args(buf.len()))?;
    // The kernel holds back its ACK of that FIN (a delayed ACK, 40 ms or
    // more), hoping to send it with something else: with our FIN, if we
    // close in time. TCP_QUICKACK sends it now, so the diagram shows the
    // four segments of a close on every run, however busy the machine.
    conn.set_tcp_quickack(true)
        .told(|| peer("setsockopt").on(&conn).args("TCP_QUICKACK, 1"))?;
    close(conn, peer); // FIN from the server
    Ok(())
}
// ANCHOR_END: orderly

/// The server closes with SO_LINGER 0: RST instead of FIN, and the
/// client's `recv` fails.
fn abortive(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    let (client, conn) = connect(listener, addr)?;
    conn.set_linger(Some(Duration::ZERO))
        .told(|| peer("setsockopt").on(&conn).args("SO_LINGER, {on, 0 s}"))?;
    close(conn, peer);
    let mut buf = [0u8; 64];
    match (&client)
        .read(&mut buf)
        .traced(|| peer("recv").on(&client).args(buf.len()))
    {
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {}
        other => drop(other.or_fail("recv")?),
    }
    close(client, peer);
    Ok(())
}

// ANCHOR: read_wire
/// Reads the watcher's queue until the conversation is over: both FINs
/// acknowledged, or a RST. Each segment comes twice on `lo`: the copy
/// going out is kept, the copy coming in is skipped, and shown only while
/// `show_skipped` (once is enough to see it).
fn read_wire(
    sock: &Socket,
    port: u16,
    mut show_skipped: bool,
) -> Result<Vec<Seen>, Failure> {
    let (mut conversation, mut ending) =
        (Conversation::new(port), Ending::default());
    let mut seen = Vec::new();
    let mut frame = vec![0u8; watch::FRAME];
    while !ending.over() {
        let read = || watcher("recvfrom").on(sock).args(watch::FRAME);
        let (n, pkttype) = match watch::receive(sock, &mut frame) {
            Ok(got) => got,
            Err(err) => {
                tell(|| read().failed(&err));
                return Err(err).or_fail("recvfrom on the packet socket");
            }
        };
        if pkttype != libc::PACKET_OUTGOING {
            if std::mem::take(&mut show_skipped) {
                tell(|| {
                    read()
                        .gave(&n)
                        .detail("PACKET_HOST: the copy coming in, skipped")
                });
            }
            continue;
        }
        let one = watch::parse(&frame[..n]).map(|s| conversation.see(&s));
        let what =
            one.as_ref().map_or("not TCP".into(), |s| flag_names(s.flags));
        tell(|| {
            read().gave(&n).detail(format_args!("PACKET_OUTGOING: {what}"))
        });
        if let Some(one) = one {
            ending.note(&one);
            seen.push(one);
        }
    }
    Ok(seen)
}
// ANCHOR_END: read_wire

/// How far a conversation has got towards its end.
#[derive(Default)]
struct Ending {
    /// The sequence number just past each side's FIN: client, server.
    fin_end: [Option<u32>; 2],
    /// Whether each side's FIN has been acknowledged.
    acked: [bool; 2],
    reset: bool,
}

impl Ending {
    fn note(&mut self, seen: &Seen) {
        let (me, other) = if seen.from_client { (0, 1) } else { (1, 0) };
        if seen.flags & FIN != 0 {
            self.fin_end[me] = Some(seen.seq + seen.len as u32 + 1);
        }
        if seen.flags & ACK != 0
            && let (Some(end), Some(ack)) = (self.fin_end[other], seen.ack)
            && ack >= end
        {
            self.acked[other] = true;
        }
        self.reset |= seen.flags & RST != 0;
    }

    fn over(&self) -> bool {
        self.reset || self.acked == [true, true]
    }
}

// ANCHOR: draw
/// The article's sequence diagram, drawn from the segments: the client's
/// lane on the left, the server's on the right, one arrow per segment.
fn draw(title: &str, seen: &[Seen]) {
    const WIDTH: usize = 50;
    let mut out = format!("\n{title}, as the watcher saw it:\n\n");
    out += &format!("  client{:>w$}\n", "server", w = WIDTH + 2);
    for one in seen {
        let mut label =
            format!(" {} seq {}", watch::flag_names(one.flags), one.seq);
        if let Some(ack) = one.ack {
            label += &format!(" ack {ack}");
        }
        if one.len > 0 {
            label += &format!(" len {}", one.len);
        }
        label.push(' ');
        let arrow = match one.from_client {
            true => format!("---{label:-<w$}>", w = WIDTH - 4),
            false => format!("<--{label:-<w$}-", w = WIDTH - 4),
        };
        out += &format!("     |{arrow}|\n");
    }
    // A closed stdout (`| head`) leaves nothing to show.
    let _ = io::stdout().write_all(out.as_bytes());
}
// ANCHOR_END: draw

/// Closes a socket: dropping it is `close(2)`.
fn close(socket: Socket, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
