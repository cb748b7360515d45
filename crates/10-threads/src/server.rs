//! The server hardened: a thread per connection, as in `plain.rs`, speaking
//! the line protocol of lessons 10 to 13, with a time limit each way, a
//! lingering close after a refusal, and an accept loop that survives a
//! thread or a descriptor it cannot have.
//!
//! Each socket call carries its line of the demo's timeline as a suffix
//! (`.traced(|| ...)`), printed only in the demo; a thread started for a
//! connection is `narrated`, so that the demo can print what it does in
//! the order of the conversation (see the transcript crate).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use transcript::lines::{Lines, MAX_LINE, TOO_LONG, TooLong, reply};
use transcript::{
    Failure, OrFail, Told, bytes, duration, event, log, narrated, server,
    server_note, tell,
};

use crate::RECV_SIZE;

// ANCHOR: run
/// Listens on `addr` and serves each client on a thread of its own, for
/// ever.
pub fn run(addr: SocketAddr, idle: Duration) -> Result<(), Failure> {
    // socket, SO_REUSEADDR, bind and listen (lesson 3).
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {local}");
    loop {
        accept_one(&listener, idle);
    }
}
// ANCHOR_END: run

// ANCHOR: accept_one
/// Accepts one connection and starts a thread to serve it; returns the
/// thread, if one could be started.
pub fn accept_one(
    listener: &TcpListener,
    idle: Duration,
) -> Option<JoinHandle<()>> {
    let (conn, peer) =
        match listener.accept().traced(|| server("accept").on(listener)) {
            Ok(accepted) => accepted,
            Err(err) => {
                // One connection failed (reset while queued, or no descriptor
                // left for it): not a reason to stop serving.
                event(format_args!("accept: {err}"));
                pause_if_out_of_descriptors(&err);
                return None;
            }
        };
    log!("Connected with {peer}");
    let fd = conn.as_raw_fd();
    // The new thread owns the connection; this one goes back to accept at
    // once. A thread that cannot be created (the process is at its thread
    // limit) drops the connection with the closure: a close.
    let serving = narrated(move || serve(conn, peer, idle));
    match thread::Builder::new().spawn(serving) {
        Ok(thread) => {
            server_note(format_args!(
                "thread::spawn: a new thread serves fd {fd}"
            ));
            Some(thread)
        }
        Err(err) => {
            event(format_args!("{peer}: no thread for it ({err}): closed"));
            None
        }
    }
}
// ANCHOR_END: accept_one

// ANCHOR: serve
/// The whole life of one connection: answer every complete line until the
/// client closes, goes idle, misbehaves or fails; then close.
pub fn serve(conn: TcpStream, peer: SocketAddr, idle: Duration) {
    let why = match time_limits(&conn, idle) {
        Ok(()) => answer_lines(&conn, idle),
        Err(failure) => format!("{failure}: closed"),
    };
    // The log names the client; in the demo its column does.
    log!("{peer}: {why}");
    server_note(&why);
    let fd = conn.as_raw_fd();
    drop(conn);
    tell(|| server("close").on_fd(fd).gave(&()));
}
// ANCHOR_END: serve

// ANCHOR: time_limits
/// A client that goes quiet, or stops reading its replies, would hold its
/// thread for ever: both directions get a time limit (lesson 9).
fn time_limits(conn: &TcpStream, idle: Duration) -> Result<(), Failure> {
    let limit = duration(idle);
    conn.set_read_timeout(Some(idle)).told(|| {
        server("setsockopt").on(conn).args(format_args!("SO_RCVTIMEO, {limit}"))
    })?;
    conn.set_write_timeout(Some(idle)).told(|| {
        server("setsockopt").on(conn).args(format_args!("SO_SNDTIMEO, {limit}"))
    })
}
// ANCHOR_END: time_limits

// ANCHOR: answer_lines
/// Reads and answers lines until the conversation ends; returns why it did.
fn answer_lines(conn: &TcpStream, idle: Duration) -> String {
    let mut lines = Lines::new(MAX_LINE);
    let mut buf = [0u8; RECV_SIZE];
    loop {
        // Blocks this thread only: the other clients have threads of their own.
        let got = (&*conn)
            .read(&mut buf)
            .traced(|| server("recv").on(conn).args(RECV_SIZE).data(&buf));
        let n = match got {
            Ok(0) => return "closed by the client".to_string(),
            Ok(n) => n,
            // After a stop (Ctrl-Z) and continue, a recv with a timeout
            // fails with EINTR (man 7 signal): not the client's doing.
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) => {
                return format!("idle for {}: closed", duration(idle));
            }
            Err(err) => return format!("recv: {err}: closed"),
        };
        // One recv may hold half a line or several lines (lesson 5).
        lines.feed(&buf[..n]);
        let (replies, too_long) = answers(&mut lines);
        if replies.is_empty() {
            let partial = lines.partial();
            server_note(format_args!(
                "{partial} bytes of an unfinished line: recv again"
            ));
            continue;
        }
        if let Err(err) = send_all(conn, &replies) {
            return format!("send: {err}: closed");
        }
        if too_long {
            // The client may still be sending the rest of that line.
            linger(conn, idle);
            return format!("a line longer than {MAX_LINE} bytes: closed");
        }
    }
}
// ANCHOR_END: answer_lines

// ANCHOR: answers
/// The replies to every complete line received so far, and whether one
/// was too long: then the last reply is the refusal, and nothing after it
/// is read as a line.
fn answers(lines: &mut Lines) -> (Vec<u8>, bool) {
    let mut replies = Vec::new();
    while let Some(line) = lines.next_line() {
        match line {
            Ok(line) => replies.extend_from_slice(&reply(&line)),
            Err(TooLong) => {
                replies.extend_from_slice(TOO_LONG);
                return (replies, true);
            }
        }
    }
    (replies, false)
}
// ANCHOR_END: answers

// ANCHOR: linger
/// A lingering close, for a connection the server ends while the client
/// may still be sending. Closing a socket with unread bytes makes the
/// kernel send RST and throw away the replies it has not sent yet (lesson
/// 6): a client slow to read would lose them, and the refusal with them.
/// So: FIN after the replies, then read and drop whatever still comes until
/// the client closes its side, or `limit` has passed; only then close.
fn linger(conn: &TcpStream, limit: Duration) {
    let done = conn
        .shutdown(Shutdown::Write)
        .traced(|| server("shutdown").on(conn).args("SHUT_WR"));
    let until = Instant::now() + limit;
    let mut buf = [0u8; RECV_SIZE];
    // Each recv also ends at SO_RCVTIMEO (the idle limit).
    while done.is_ok() && Instant::now() < until {
        let got = (&*conn)
            .read(&mut buf)
            .traced(|| server("recv").on(conn).args(RECV_SIZE));
        match got {
            Ok(n) if n > 0 => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
}
// ANCHOR_END: linger

/// `send` until every byte is taken: one call may take fewer (lesson 4).
fn send_all(conn: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // std's write is send(..., MSG_NOSIGNAL): a closed peer is an
        // error, not a SIGPIPE that kills the whole server (lesson 6).
        let sent = (&*conn).write(data).traced(|| {
            server("send").on(conn).args(bytes(data)).args("MSG_NOSIGNAL")
        });
        match sent {
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

// ANCHOR: pause_if_out_of_descriptors
/// Out of file descriptors, `accept` fails at once for as long as the
/// condition lasts; retrying at once would spin on the CPU. Pausing stops
/// accepting for a moment (lesson 13 shows other ways).
fn pause_if_out_of_descriptors(err: &io::Error) {
    if matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
        thread::sleep(Duration::from_millis(100));
    }
}
// ANCHOR_END: pause_if_out_of_descriptors

/// A read or write timeout is `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems (lesson 9).
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
