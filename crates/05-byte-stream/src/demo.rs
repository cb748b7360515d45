//! The demo: one send read as three recvs, two sends read as one, then each
//! framing on a connection of its own, its pieces cutting frames in awkward
//! places. Each call carries its line of the timeline as a suffix,
//! `.told(|| ...)`, which prints only in the demo.

use std::io::Read;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;

use nix::sys::socket::setsockopt;
use nix::{setsockopt_impl, sockopt_impl};
use socket2::{Domain, Socket, Type};
use transcript::{
    Call, Failure, Told, Transcript, bytes, client, client_note, section,
    server, server_note, tell,
};

use crate::frame::{Framing, encode, next_frame};
use crate::{MAX_REPLY, RECV_SIZE};

/// The demo's maximum frame size: small, so a long line is easy to show.
const DEMO_MAX_FRAME: usize = 32;

// SO_RCVLOWAT: the least a blocking recv waits for (man 7 socket). Neither
// socket2 nor nix names it, so nix's macro defines the option here.
sockopt_impl!(RcvLowat, SetOnly, libc::SOL_SOCKET, libc::SO_RCVLOWAT, usize);

// ANCHOR: line_pieces
/// What the client sends by lines, one piece at a time: a frame cut in the
/// middle, the rest of it with the start of the next, and the end of that
/// one followed by a line far longer than the demo's maximum.
const LINE_PIECES: [&[u8]; 3] = [
    b"hel",
    b"lo\nwor",
    b"ld\nthis frame is far longer than thirty-two bytes\n",
];
// ANCHOR_END: line_pieces

// ANCHOR: length_pieces
/// What the client sends by length: a header with part of its text, the
/// rest of the text with the next header and part of its text, and then
/// the end of that frame followed by something else entirely.
const LENGTH_PIECES: [&[u8]; 3] = [
    b"\0\0\0\x05hel",
    b"lo\0\0\0\x05wo",
    // Not this protocol at all: an HTTP request. Its first 4 bytes, read
    // as a length, announce more than a gigabyte.
    b"rldGET / HTTP/1.1\r\n",
];
// ANCHOR_END: length_pieces

/// A split, a merge, then each framing on a connection of its own.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let (listener, addr) = listen()?;
    let (sock, conn) = connect(&listener, addr)?;

    section("one send, three recvs");
    split(&sock, &conn)?;
    section("two sends, one recv");
    merge(&sock, &conn)?;

    let max = DEMO_MAX_FRAME;
    section(format!("framing by newline, at most {max} bytes a frame"));
    framed(Framing::Line, sock, conn, &LINE_PIECES)?;
    section(format!("framing by length prefix, at most {max} bytes a frame"));
    let (sock, conn) = connect(&listener, addr)?;
    framed(Framing::Length, sock, conn, &LENGTH_PIECES)?;
    close(listener, server);
    Ok(())
}

/// A listening socket on a port the kernel picks (lesson 2).
fn listen() -> Result<(Socket, SocketAddr), Failure> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&wanted.into())
        .told(|| server("bind").on(&listener).args(wanted))?;
    let addr = listener
        .local_addr()
        .told(|| server("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(5).told(|| server("listen").on(&listener).args(5))?;
    Ok((listener, addr))
}

/// A client connects (with Nagle off, so that each send leaves at once)
/// and the server accepts it.
fn connect(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    // Lesson 4: without this, a small send can wait for the previous one's
    // ACK, and the demo would pause for no reason worth showing.
    sock.set_tcp_nodelay(true)
        .told(|| client("setsockopt").on(&sock).args("TCP_NODELAY, 1"))?;
    sock.connect(&addr.into())
        .told(|| client("connect").on(&sock).args(addr))?;
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    Ok((sock, conn))
}

// ANCHOR: split
/// One send of 20 bytes, read with an 8-byte buffer: three recvs.
fn split(sock: &Socket, conn: &Socket) -> Result<(), Failure> {
    let message = b"one send, many recvs";
    sock.send(message).told(|| client("send").on(sock).args(bytes(message)))?;
    // The 20 bytes arrive together; a reader with an 8-byte buffer takes
    // them 8 at a time.
    let mut small = [0u8; 8];
    for _ in 0..3 {
        (&*conn)
            .read(&mut small)
            .told(|| server("recv").on(conn).args(8).data(&small))?;
    }
    server_note("the reader's buffer cut the pieces, not the sender");
    Ok(())
}
// ANCHOR_END: split

// ANCHOR: merge
/// Two sends, and one recv that returns both.
fn merge(sock: &Socket, conn: &Socket) -> Result<(), Failure> {
    // Only so that this demo cannot race: recv waits until 8 bytes are
    // in. A reader that is simply a little late sees the same.
    setsockopt(conn, RcvLowat, &8)
        .told(|| server("setsockopt").on(conn).args("SO_RCVLOWAT, 8"))?;
    for message in [b"one\n", b"two\n"] {
        sock.send(message)
            .told(|| client("send").on(sock).args(bytes(message)))?;
    }
    let mut buf = [0u8; RECV_SIZE];
    (&*conn)
        .read(&mut buf)
        .told(|| server("recv").on(conn).args(RECV_SIZE).data(&buf))?;
    server_note("both sends in one recv: nothing says where they met,");
    server_note("and the article's recv(4096) takes this for one message");
    setsockopt(conn, RcvLowat, &1)
        .told(|| server("setsockopt").on(conn).args("SO_RCVLOWAT, 1"))?;
    Ok(())
}
// ANCHOR_END: merge

// ANCHOR: framed
/// The client sends `pieces` one at a time; after each, the server reads
/// what arrived, answers every whole frame, and refuses a bad one; the
/// client reads the replies.
fn framed(
    framing: Framing,
    sock: Socket,
    conn: Socket,
    pieces: &[&[u8]],
) -> Result<(), Failure> {
    // What the server has read but not yet framed, and the same for the
    // client's replies.
    let (mut pending, mut replies) = (Vec::new(), Vec::new());
    for piece in pieces {
        sock.send(piece)
            .told(|| client("send").on(&sock).args(bytes(piece)))?;
        match server_turn(framing, &conn, &mut pending)? {
            Answered::Nothing => {}
            Answered::Replies => client_turn(framing, &sock, &mut replies)?,
            Answered::Refused => {
                client_turn(framing, &sock, &mut replies)?;
                return end_of_stream(sock, conn);
            }
        }
    }
    Err(Failure::new("demo", "the last piece was not refused"))
}
// ANCHOR_END: framed

/// What the server did with the bytes it read.
enum Answered {
    /// No whole frame yet: it sent nothing.
    Nothing,
    /// It answered every whole frame.
    Replies,
    /// It answered the frames before a bad one, refused that one, and
    /// shut down its side.
    Refused,
}

// ANCHOR: server_turn
/// The server reads what has arrived: exactly the last piece, since it
/// reads each one before the client sends the next. It answers every whole
/// frame in one send, and after a bad frame shuts down its side.
fn server_turn(
    framing: Framing,
    conn: &Socket,
    pending: &mut Vec<u8>,
) -> Result<Answered, Failure> {
    let mut buf = [0u8; RECV_SIZE];
    let n = (&*conn)
        .read(&mut buf)
        .told(|| server("recv").on(conn).args(RECV_SIZE).data(&buf))?;
    pending.extend_from_slice(&buf[..n]);
    let mut answer = Vec::new();
    let refused = loop {
        match next_frame(framing, pending, DEMO_MAX_FRAME) {
            Ok(Some(frame)) => {
                server_note(format!("frame {frame:?}"));
                let echo = format!("echo: {frame}");
                answer.extend(encode(framing, echo.as_bytes()));
            }
            Ok(None) if pending.is_empty() => break false,
            Ok(None) => {
                let kept = pending.len();
                server_note(format!("no whole frame yet: keep {kept} bytes"));
                break false;
            }
            Err(err) => {
                server_note(format!("refused: {err}"));
                let error = format!("error: {err}");
                answer.extend(encode(framing, error.as_bytes()));
                break true;
            }
        }
    };
    if answer.is_empty() {
        return Ok(Answered::Nothing);
    }
    let sent = conn
        .send(&answer)
        .told(|| server("send").on(conn).args(bytes(&answer)))?;
    if sent != answer.len() {
        return Err(Failure::new("send", "a short send of a short reply"));
    }
    if !refused {
        return Ok(Answered::Replies);
    }
    // FIN after the reply: the client reads the reply, then EOF.
    conn.shutdown(Shutdown::Write)
        .told(|| server("shutdown").on(conn).args("SHUT_WR"))?;
    Ok(Answered::Refused)
}
// ANCHOR_END: server_turn

// ANCHOR: client_turn
/// The client reads what has arrived of the replies and takes each whole
/// one off, with the same framing as the server.
fn client_turn(
    framing: Framing,
    sock: &Socket,
    replies: &mut Vec<u8>,
) -> Result<(), Failure> {
    let mut buf = [0u8; RECV_SIZE];
    let n = (&*sock)
        .read(&mut buf)
        .told(|| client("recv").on(sock).args(RECV_SIZE).data(&buf))?;
    replies.extend_from_slice(&buf[..n]);
    while let Some(reply) = next_frame(framing, replies, MAX_REPLY)
        .map_err(|err| Failure::new("reply", err))?
    {
        client_note(format!("reply {reply:?}"));
    }
    Ok(())
}
// ANCHOR_END: client_turn

// ANCHOR: end_of_stream
/// After a refusal: the client sees the end of the stream, and the server
/// reads to the client's FIN before it closes.
fn end_of_stream(sock: Socket, conn: Socket) -> Result<(), Failure> {
    let mut buf = [0u8; RECV_SIZE];
    (&sock).read(&mut buf).told(|| client("recv").on(&sock).args(RECV_SIZE))?;
    client_note("0 bytes: the end of the stream");
    (&sock).read(&mut buf).told(|| client("recv").on(&sock).args(RECV_SIZE))?;
    client_note("0 again, and forever: a loop that retries on 0 spins");
    close(sock, client);

    // Read until the client's FIN, so that close finds nothing unread and
    // sends FIN, not RST (lesson 6).
    (&conn).read(&mut buf).told(|| server("recv").on(&conn).args(RECV_SIZE))?;
    close(conn, server);
    Ok(())
}
// ANCHOR_END: end_of_stream

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: Socket, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
