//! # Lesson 5: a byte stream, not messages
//!
//! The idea: TCP delivers bytes, in order, and nothing else. Where one
//! `send` ended and the next began is not delivered: one send can arrive as
//! several recvs, and several sends as one recv. A program that exchanges
//! messages must mark where each ends in the bytes themselves (framing),
//! keep what it has read until a frame is whole, and bound how much it will
//! keep, or one bad peer can make it buffer without end.
//!
//! What was wrong before: the article's client, like lessons 2 and 3, takes
//! one `recv(4096)` for one message. Here a split and a merge are shown
//! happening; then two framings, by newline and by length prefix, each with
//! a maximum frame size. A frame that is too long, not text, or cut off by
//! the end of the stream gets a one-line error reply and the connection is
//! closed: never a panic, never an unbounded buffer. And `recv` returning 0
//! is the end of the stream, for good, not "nothing yet".

use std::fmt::{self, Display};
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use nix::sys::socket::setsockopt;
use nix::{setsockopt_impl, sockopt_impl};
use socket2::{Domain, Socket, Type};
use transcript::cli::seconds;
use transcript::{Failure, OrFail, Transcript, bytes, call};

/// The default address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return, as in the article's `recv(4096)`.
const RECV_SIZE: usize = 4096;

/// The server's default and largest maximum frame size, in bytes.
const DEFAULT_MAX_FRAME: usize = 1024;
const LARGEST_MAX_FRAME: usize = 1 << 20;

/// The demo's maximum frame size: small, so a long line is easy to show.
const DEMO_MAX_FRAME: usize = 32;

/// The largest reply a client accepts: an echo of the largest frame a
/// server may allow, plus its `echo: ` prefix.
const MAX_REPLY: usize = LARGEST_MAX_FRAME + 16;

/// After refusing a frame, how much a server reads and discards before it
/// closes (so that close sends FIN, not RST); more than this and it stops.
const DRAIN_LIMIT: usize = 64 * 1024;

// SO_RCVLOWAT: the least a blocking recv waits for (man 7 socket). Neither
// socket2 nor nix names it, so nix's macro defines the option here.
sockopt_impl!(RcvLowat, SetOnly, libc::SOL_SOCKET, libc::SO_RCVLOWAT, usize);

/// How the end of each message is marked in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Framing {
    /// Each frame is UTF-8 text ending in a newline (`\n`), which is not
    /// part of the frame
    Line,
    /// Each frame is a 4-byte big-endian length, then that many bytes of
    /// UTF-8 text
    Length,
}

impl Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Line => "line",
            Framing::Length => "length",
        })
    }
}

#[derive(Parser)]
#[command(
    name = "lesson-05",
    bin_name = "lesson-05",
    about = "Lesson 5: a byte stream, not messages: framing by newline and by length prefix"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Serve clients one at a time: answer each frame with "echo: " and the
    /// frame; answer a bad frame with "error: " and why, then close
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How frames are marked in the byte stream
        #[arg(long, value_enum, default_value_t = Framing::Line)]
        framing: Framing,
        /// The largest frame accepted, in bytes, from 1 to 1048576 (not
        /// counting the newline or the length header); longer ones are refused
        /// without buffering them
        #[arg(long, default_value_t = DEFAULT_MAX_FRAME, value_parser = max_frame)]
        max_frame: usize,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Send each line typed on stdin as one frame and print the reply frame
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How frames are marked in the byte stream (as the server's)
        #[arg(long, value_enum, default_value_t = Framing::Line)]
        framing: Framing,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-05", || match cli.command {
        None | Some(Command::Demo) => demo(),
        Some(Command::Server { addr, framing, max_frame, timeout }) => {
            server(addr, framing, max_frame, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr, framing }) => client(addr, framing),
    })
}

// ANCHOR: frame_error
/// Why a frame was refused. The server replies `error: ` and this text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FrameError {
    /// Line framing: more than `max` bytes and still no newline.
    LineTooLong { max: usize },
    /// Length framing: the header announces more than `max` bytes.
    LengthTooLong { announced: u32, max: usize },
    /// The frame's bytes are not UTF-8 text.
    NotText,
    /// The stream ended with part of a frame unread.
    Truncated,
}

impl Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LineTooLong { max } => {
                write!(
                    f,
                    "frame too long: more than {max} bytes before a newline"
                )
            }
            FrameError::LengthTooLong { announced, max } => {
                write!(
                    f,
                    "frame too long: {announced} bytes announced, at most {max}"
                )
            }
            FrameError::NotText => f.write_str("frame is not UTF-8 text"),
            FrameError::Truncated => {
                f.write_str("connection closed in the middle of a frame")
            }
        }
    }
}
// ANCHOR_END: frame_error

// ANCHOR: next_frame
/// Takes the next whole frame off the front of `pending`, the bytes read so
/// far: `Ok(None)` if the frame is not complete yet (read more), an error if
/// it never can be. `pending` never needs to hold more than one frame of
/// `max` bytes plus its header or newline, whatever the peer sends.
fn next_frame(
    framing: Framing,
    pending: &mut Vec<u8>,
    max: usize,
) -> Result<Option<String>, FrameError> {
    let frame: Vec<u8> = match framing {
        Framing::Line => {
            // Look for the newline only as far as a frame may reach.
            let reach = pending.len().min(max + 1);
            match pending[..reach].iter().position(|&b| b == b'\n') {
                Some(end) => {
                    let mut line: Vec<u8> = pending.drain(..=end).collect();
                    line.pop(); // the newline marks the end; it is not data
                    line
                }
                None if pending.len() > max => {
                    return Err(FrameError::LineTooLong { max });
                }
                None => return Ok(None),
            }
        }
        Framing::Length => {
            let Some(header) = pending.first_chunk::<4>() else {
                return Ok(None);
            };
            let announced = u32::from_be_bytes(*header);
            // Judge the length before waiting for the bytes: a bad header
            // must not make the server wait for, or keep, 4 GB.
            let len = usize::try_from(announced).unwrap_or(usize::MAX);
            if len > max {
                return Err(FrameError::LengthTooLong { announced, max });
            }
            if pending.len() < 4 + len {
                return Ok(None);
            }
            pending.drain(..4 + len).skip(4).collect()
        }
    };
    String::from_utf8(frame).map(Some).map_err(|_| FrameError::NotText)
}
// ANCHOR_END: next_frame

// ANCHOR: encode
/// The bytes that carry `payload` as one frame.
fn encode(framing: Framing, payload: &[u8]) -> Vec<u8> {
    match framing {
        Framing::Line => [payload, b"\n"].concat(),
        Framing::Length => {
            // Every payload here is at most MAX_REPLY bytes: it fits in u32.
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            [&len.to_be_bytes()[..], payload].concat()
        }
    }
}
// ANCHOR_END: encode

/// A split, a merge, then each framing on a connection of its own.
fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["server", "client"]);

    // ANCHOR: demo_setup
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&listener),
    );
    let listener = listener.or_fail("socket")?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    let bound = listener.bind(&wanted.into());
    t.server(call("bind").on(&listener).args(wanted).returned(&bound));
    bound.or_fail(format!("bind {wanted}"))?;
    let addr = listener.local_addr().or_fail("getsockname")?;
    let addr = addr
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    t.server(call("getsockname").on(&listener).gave(&()).detail(addr));
    let listening = listener.listen(5);
    t.server(call("listen").on(&listener).args(5).returned(&listening));
    listening.or_fail("listen")?;
    let (client, conn) = connect_pair(&mut t, &listener, addr)?;
    // ANCHOR_END: demo_setup

    // ANCHOR: demo_split
    t.section("one send, three recvs");
    let message = b"one send, many recvs";
    let sent = client.send(message);
    t.client(call("send").on(&client).args(bytes(message)).returned(&sent));
    sent.or_fail("send")?;
    // The 20 bytes arrive together; a reader with an 8-byte buffer takes
    // them 8 at a time.
    let mut small = [0u8; 8];
    for _ in 0..3 {
        let got = (&conn).read(&mut small);
        let n = *got.as_ref().unwrap_or(&0);
        t.server(
            call("recv")
                .on(&conn)
                .args(small.len())
                .returned(&got)
                .detail(bytes(&small[..n])),
        );
        got.or_fail("recv")?;
    }
    t.server_note("the reader's buffer cut the pieces, not the sender");
    // ANCHOR_END: demo_split

    // ANCHOR: demo_merge
    t.section("two sends, one recv");
    // Only so that this demo cannot race: recv waits until 8 bytes are
    // in. A reader that is simply a little late sees the same.
    let set = setsockopt(&conn, RcvLowat, &8);
    t.server(
        call("setsockopt").on(&conn).args("SO_RCVLOWAT, 8").returned(&set),
    );
    set.or_fail("setsockopt SO_RCVLOWAT")?;
    for message in [b"one\n", b"two\n"] {
        let sent = client.send(message);
        t.client(call("send").on(&client).args(bytes(message)).returned(&sent));
        sent.or_fail("send")?;
    }
    let mut buf = [0u8; RECV_SIZE];
    let got = (&conn).read(&mut buf);
    let n = *got.as_ref().unwrap_or(&0);
    t.server(
        call("recv")
            .on(&conn)
            .args(RECV_SIZE)
            .returned(&got)
            .detail(bytes(&buf[..n])),
    );
    got.or_fail("recv")?;
    t.server_note("both sends in one recv: nothing says where they met,");
    t.server_note("and the article's recv(4096) takes this for one message");
    let set = setsockopt(&conn, RcvLowat, &1);
    t.server(
        call("setsockopt").on(&conn).args("SO_RCVLOWAT, 1").returned(&set),
    );
    set.or_fail("setsockopt SO_RCVLOWAT")?;
    // ANCHOR_END: demo_merge

    // ANCHOR: demo_line_pieces
    t.section(format!(
        "framing by newline, at most {DEMO_MAX_FRAME} bytes a frame"
    ));
    let pieces: [&[u8]; 3] = [
        b"hel",
        b"lo\nwor",
        b"ld\nthis frame is far longer than thirty-two bytes\n",
    ];
    // ANCHOR_END: demo_line_pieces
    framed(&mut t, Framing::Line, client, conn, &pieces)?;

    // ANCHOR: demo_length_pieces
    t.section(format!(
        "framing by length prefix, at most {DEMO_MAX_FRAME} bytes a frame"
    ));
    let (client, conn) = connect_pair(&mut t, &listener, addr)?;
    let pieces: [&[u8]; 3] = [
        b"\0\0\0\x05hel",
        b"lo\0\0\0\x05wo",
        // Not this protocol at all: an HTTP request. Its first 4 bytes,
        // read as a length, announce more than a gigabyte.
        b"rldGET / HTTP/1.1\r\n",
    ];
    // ANCHOR_END: demo_length_pieces
    framed(&mut t, Framing::Length, client, conn, &pieces)?;

    let listener_fd = listener.as_raw_fd();
    drop(listener);
    t.server(call("close").on_fd(listener_fd).gave(&()));
    Ok(())
}

/// A client connects (with Nagle off, so that each send leaves at once)
/// and the server accepts it.
fn connect_pair(
    t: &mut Transcript,
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let client = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.client(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&client),
    );
    let client = client.or_fail("socket")?;
    // Lesson 4: without this, a small send can wait for the previous one's
    // ACK, and the demo would pause for no reason worth showing.
    let set = client.set_tcp_nodelay(true);
    t.client(
        call("setsockopt").on(&client).args("TCP_NODELAY, 1").returned(&set),
    );
    set.or_fail("setsockopt TCP_NODELAY")?;
    let connected = client.connect(&addr.into());
    t.client(call("connect").on(&client).args(addr).returned(&connected));
    connected.or_fail(format!("connect {addr}"))?;
    let accepted = listener.accept();
    t.server(call("accept").on(listener).returned(&accepted));
    let (conn, _peer) = accepted.or_fail("accept")?;
    Ok((client, conn))
}

/// The client sends `pieces` one at a time; after each, the server reads
/// what arrived, answers every whole frame, and refuses a bad one.
fn framed(
    t: &mut Transcript,
    framing: Framing,
    client: Socket,
    conn: Socket,
    pieces: &[&[u8]],
) -> Result<(), Failure> {
    // ANCHOR: demo_framed
    // What the server has read but not yet framed, and the same for the
    // client's replies.
    let mut pending = Vec::new();
    let mut replies_pending = Vec::new();
    let mut buf = [0u8; RECV_SIZE];
    for piece in pieces {
        let sent = client.send(piece);
        t.client(call("send").on(&client).args(bytes(piece)).returned(&sent));
        sent.or_fail("send")?;

        // One recv takes whatever has arrived: exactly this piece, since
        // the server reads each one before the client sends the next.
        let got = (&conn).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.server(
            call("recv")
                .on(&conn)
                .args(RECV_SIZE)
                .returned(&got)
                .detail(bytes(&buf[..n])),
        );
        got.or_fail("recv")?;
        pending.extend_from_slice(&buf[..n]);

        // Every whole frame gets an answer; all answers go in one send.
        let mut answer = Vec::new();
        let refused = loop {
            match next_frame(framing, &mut pending, DEMO_MAX_FRAME) {
                Ok(Some(frame)) => {
                    t.server_note(format!("frame {frame:?}"));
                    answer.extend(encode(
                        framing,
                        format!("echo: {frame}").as_bytes(),
                    ));
                }
                Ok(None) => {
                    if !pending.is_empty() {
                        t.server_note(format!(
                            "no whole frame yet: keep {} bytes",
                            pending.len()
                        ));
                    }
                    break None;
                }
                Err(err) => {
                    t.server_note(format!("refused: {err}"));
                    answer.extend(encode(
                        framing,
                        format!("error: {err}").as_bytes(),
                    ));
                    break Some(err);
                }
            }
        };
        if answer.is_empty() {
            continue;
        }
        let sent = conn.send(&answer);
        t.server(call("send").on(&conn).args(bytes(&answer)).returned(&sent));
        if sent.or_fail("send")? != answer.len() {
            return Err(Failure::new("send", "a short send of a short reply"));
        }
        if refused.is_some() {
            // FIN after the reply: the client reads the reply, then EOF.
            let shut = conn.shutdown(Shutdown::Write);
            t.server(
                call("shutdown").on(&conn).args("SHUT_WR").returned(&shut),
            );
            shut.or_fail("shutdown")?;
        }

        let got = (&client).read(&mut buf);
        let n = *got.as_ref().unwrap_or(&0);
        t.client(
            call("recv")
                .on(&client)
                .args(RECV_SIZE)
                .returned(&got)
                .detail(bytes(&buf[..n])),
        );
        got.or_fail("recv")?;
        replies_pending.extend_from_slice(&buf[..n]);
        while let Some(reply) =
            next_frame(framing, &mut replies_pending, MAX_REPLY)
                .map_err(|err| Failure::new("reply", err))?
        {
            t.client_note(format!("reply {reply:?}"));
        }
        if refused.is_some() {
            return end_of_stream(t, client, conn);
        }
    }
    // ANCHOR_END: demo_framed
    Err(Failure::new("demo", "the last piece was not refused"))
}

/// After a refusal: the client sees the end of the stream, and the server
/// drains what is left before it closes.
fn end_of_stream(
    t: &mut Transcript,
    client: Socket,
    conn: Socket,
) -> Result<(), Failure> {
    // ANCHOR: demo_eof
    let mut buf = [0u8; RECV_SIZE];
    let got = (&client).read(&mut buf);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.client_note("0 bytes: the end of the stream");
    let got = (&client).read(&mut buf);
    t.client(call("recv").on(&client).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    t.client_note("0 again, and forever: a loop that retries on 0 spins");
    let client_fd = client.as_raw_fd();
    drop(client);
    t.client(call("close").on_fd(client_fd).gave(&()));

    // Read until the client's FIN, so that close finds nothing unread and
    // sends FIN, not RST (lesson 6).
    let got = (&conn).read(&mut buf);
    t.server(call("recv").on(&conn).args(RECV_SIZE).returned(&got));
    got.or_fail("recv")?;
    let conn_fd = conn.as_raw_fd();
    drop(conn);
    t.server(call("close").on_fd(conn_fd).gave(&()));
    // ANCHOR_END: demo_eof
    Ok(())
}

/// Serves clients one at a time with the chosen framing.
fn server(
    addr: SocketAddr,
    framing: Framing,
    max: usize,
    timeout: Duration,
) -> Result<(), Failure> {
    // ANCHOR: server
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    println!(
        "Listening on {local} ({framing} framing, frames of at most {max} bytes)"
    );
    loop {
        // An accept error concerns one connection, not the server.
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("accept: {err}");
                continue;
            }
        };
        println!("Connected with {peer}");
        serve_one(&conn, peer, framing, max, timeout);
    }
    // ANCHOR_END: server
}

/// Answers frames until the client closes, sends a bad frame, goes quiet
/// for `timeout`, or fails.
fn serve_one(
    conn: &TcpStream,
    peer: SocketAddr,
    framing: Framing,
    max: usize,
    timeout: Duration,
) {
    // ANCHOR: serve_one
    if let Err(err) = conn.set_read_timeout(Some(timeout)) {
        println!("setsockopt SO_RCVTIMEO for {peer}: {err}; closing");
        return;
    }
    // Bytes read but not yet framed: at most one unfinished frame plus
    // one recv's worth, since a frame is judged as soon as it can be.
    let mut pending = Vec::new();
    let mut buf = [0u8; RECV_SIZE];
    loop {
        let n = match (&*conn).read(&mut buf) {
            // The end of the stream: every later recv returns 0 as well.
            Ok(0) if pending.is_empty() => {
                println!("{peer} closed the connection");
                return;
            }
            Ok(0) => {
                refuse(conn, peer, framing, &FrameError::Truncated, Vec::new());
                return;
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) => {
                println!(
                    "No data from {peer} for {timeout:?}: closing this connection"
                );
                return;
            }
            Err(err) => {
                println!("recv from {peer}: {err}; closing this connection");
                return;
            }
        };
        println!("recv from {peer}: {n} bytes {}", bytes(&buf[..n]));
        pending.extend_from_slice(&buf[..n]);

        // Answer every whole frame now in `pending`, in one write.
        let mut answer = Vec::new();
        loop {
            match next_frame(framing, &mut pending, max) {
                Ok(Some(frame)) => {
                    println!("frame from {peer}: {}", bytes(frame.as_bytes()));
                    answer.extend(encode(
                        framing,
                        format!("echo: {frame}").as_bytes(),
                    ));
                }
                Ok(None) => break,
                Err(err) => {
                    // The good frames before it are answered first.
                    refuse(conn, peer, framing, &err, answer);
                    return;
                }
            }
        }
        if !answer.is_empty()
            && let Err(err) = (&*conn).write_all(&answer)
        {
            println!("send to {peer}: {err}; closing this connection");
            return;
        }
    }
    // ANCHOR_END: serve_one
}

/// Sends `answer` (the replies owed so far) and the error line for `err`,
/// then closes the connection without losing them.
fn refuse(
    conn: &TcpStream,
    peer: SocketAddr,
    framing: Framing,
    err: &FrameError,
    mut answer: Vec<u8>,
) {
    // ANCHOR: refuse
    println!("bad frame from {peer}: {err}; replying and closing");
    answer.extend(encode(framing, format!("error: {err}").as_bytes()));
    if let Err(err) = (&*conn).write_all(&answer) {
        println!("send to {peer}: {err}; closing this connection");
        return;
    }
    // FIN after the reply. Then read and discard what the client still
    // sends, up to a limit: closing with unread bytes would send RST, and
    // the client would get ECONNRESET instead of the end of the stream, or
    // on some systems lose the reply (lesson 6).
    if conn.shutdown(Shutdown::Write).is_ok() {
        let mut buf = [0u8; RECV_SIZE];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match (&*conn).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => drained += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    println!("closed the connection with {peer}");
    // ANCHOR_END: refuse
}

/// Sends each line typed on stdin as a frame and prints the reply frame,
/// however many recvs it takes to arrive.
fn client(addr: SocketAddr, framing: Framing) -> Result<(), Failure> {
    // ANCHOR: client
    let mut stream =
        TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    println!("Connected to {addr} ({framing} framing)");
    let mut stdin = io::stdin().lock();
    let mut line = Vec::new();
    let mut pending = Vec::new();
    let mut buf = [0u8; RECV_SIZE];
    loop {
        print!("Please input data: ");
        io::stdout().flush().or_fail("write stdout")?;
        line.clear();
        let read = stdin.read_until(b'\n', &mut line).or_fail("read stdin")?;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if read == 0 || line.is_empty() {
            println!();
            return Ok(());
        }
        let frame = encode(framing, &line);
        stream.write_all(&frame).or_fail(format!("send {addr}"))?;
        println!("Send Successfully ({} bytes)", frame.len());
        // Read until one whole reply is in: one recv, or several.
        let reply = loop {
            if let Some(reply) = next_frame(framing, &mut pending, MAX_REPLY)
                .map_err(|err| Failure::new("reply", err))?
            {
                break reply;
            }
            let n = match stream.read(&mut buf) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    continue;
                }
                Err(err) => {
                    return Err(Failure::new(format!("recv {addr}"), err));
                }
            };
            if n == 0 {
                println!("The server closed the connection");
                return Ok(());
            }
            pending.extend_from_slice(&buf[..n]);
        };
        println!("Reply: {reply}");
    }
    // ANCHOR_END: client
}

/// A read timeout shows up as `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems; a portable program accepts both.
fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// `--max-frame`: a whole number of bytes from 1 to LARGEST_MAX_FRAME.
fn max_frame(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=LARGEST_MAX_FRAME).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of bytes from 1 to {LARGEST_MAX_FRAME}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(
        framing: Framing,
        input: &[u8],
        max: usize,
    ) -> (Vec<String>, Option<FrameError>, usize) {
        let mut pending = input.to_vec();
        let mut out = Vec::new();
        loop {
            match next_frame(framing, &mut pending, max) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return (out, None, pending.len()),
                Err(e) => return (out, Some(e), pending.len()),
            }
        }
    }

    #[test]
    fn lines_split_and_merged() {
        assert_eq!(
            frames(Framing::Line, b"a\nbc\nd", 8),
            (vec!["a".into(), "bc".into()], None, 1)
        );
        // A line of exactly max bytes is fine; one more byte is not.
        assert_eq!(frames(Framing::Line, b"12345678\n", 8).0, vec!["12345678"]);
        assert_eq!(
            frames(Framing::Line, b"123456789", 8).1,
            Some(FrameError::LineTooLong { max: 8 })
        );
        // Not yet too long: wait for more.
        assert_eq!(frames(Framing::Line, b"12345678", 8), (vec![], None, 8));
        assert_eq!(
            frames(Framing::Line, b"ok\n\xff\n", 8).1,
            Some(FrameError::NotText)
        );
    }

    #[test]
    fn lengths_split_merged_and_refused_before_buffering() {
        let two =
            [encode(Framing::Length, b"hi"), encode(Framing::Length, b"")]
                .concat();
        assert_eq!(frames(Framing::Length, &two, 8).0, vec!["hi", ""]);
        assert_eq!(frames(Framing::Length, &two[..5], 8), (vec![], None, 5));
        assert_eq!(
            frames(Framing::Length, b"GET / HTTP/1.1", 8).1,
            Some(FrameError::LengthTooLong { announced: 0x4745_5420, max: 8 })
        );
        assert_eq!(
            frames(Framing::Length, b"\0\0\0\x01\xff", 8).1,
            Some(FrameError::NotText)
        );
    }
}
