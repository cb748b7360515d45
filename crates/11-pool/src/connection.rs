//! One connection's conversation, as a worker holds it: lesson 10's
//! `serve` and `answer_lines`, with what the pool and the shutdown add. A
//! worker is scarce, so a line must be finished within the idle limit; and
//! a connection the shutdown ends hands over every reply before its FIN.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use transcript::lines::{
    Lines, MAX_LINE, TOO_LONG, TooLong, is_shutdown, reply,
};
use transcript::{
    Failure, OptionValue, Told, bytes, duration, event, log, server,
    server_note,
};

use crate::RECV_SIZE;
use crate::server::Shared;

/// One connection, from the worker that takes it until it is done.
pub fn serve(
    conn: &TcpStream,
    peer: SocketAddr,
    idle: Duration,
    shared: &Shared,
) {
    let why = match time_limits(conn, idle) {
        Ok(()) => answer_lines(conn, idle, shared),
        Err(failure) => format!("{failure}: closed"),
    };
    // The log names the client; in the demo its column does.
    log!("{peer}: {why}");
    server_note(&why);
}

/// A client that goes quiet or stops reading holds a worker, which in a
/// pool is a scarce thing: both directions get a time limit.
fn time_limits(conn: &TcpStream, idle: Duration) -> Result<(), Failure> {
    let limit = duration(idle);
    conn.set_read_timeout(Some(idle)).told(|| {
        server("setsockopt").on(conn).args(format_args!("SO_RCVTIMEO, {limit}"))
    })?;
    conn.set_write_timeout(Some(idle)).told(|| {
        server("setsockopt").on(conn).args(format_args!("SO_SNDTIMEO, {limit}"))
    })
}

// ANCHOR: answer_lines
/// Reads and answers lines until the conversation ends; returns why it did.
fn answer_lines(conn: &TcpStream, idle: Duration, shared: &Shared) -> String {
    let mut lines = Lines::new(MAX_LINE);
    let mut buf = [0u8; RECV_SIZE];
    let mut line_began = None;
    loop {
        // Blocks this worker only: the others serve their own clients.
        let got = (&*conn)
            .read(&mut buf)
            .traced(|| server("recv").on(conn).args(RECV_SIZE).data(&buf));
        let n = match got {
            Ok(0) if shared.stop.load(Ordering::SeqCst) => {
                hand_over_replies(conn, idle);
                return "input ended for the shutdown: closed".to_string();
            }
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
        let (replies, too_long, shutdown) = answers(&mut lines);
        if too_slow(&mut line_began, &replies, &lines, idle) {
            return format!("no whole line in {}: closed", duration(idle));
        }
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
        if shutdown {
            // This connection is finished like the others, by the shutdown.
            event("shutdown requested");
            shared.begin_shutdown();
        }
    }
}
// ANCHOR_END: answer_lines

// ANCHOR: answers
/// The replies to every complete line received so far; whether one was
/// too long (then the last reply is the refusal, and nothing after it is
/// read as a line); whether one was `shutdown`.
fn answers(lines: &mut Lines) -> (Vec<u8>, bool, bool) {
    let mut replies = Vec::new();
    let mut shutdown = false;
    while let Some(line) = lines.next_line() {
        match line {
            Ok(line) => {
                shutdown |= is_shutdown(&line);
                replies.extend_from_slice(&reply(&line));
            }
            Err(TooLong) => {
                replies.extend_from_slice(TOO_LONG);
                return (replies, true, shutdown);
            }
        }
    }
    (replies, false, shutdown)
}
// ANCHOR_END: answers

// ANCHOR: too_slow
/// Whether the line being received has taken longer than `idle` since its
/// first byte. The idle limit alone bounds the wait for each byte, so a
/// client that sends one byte a second would hold a worker for ever (lesson
/// 9's slowloris); in a pool, a few such clients would hold them all.
fn too_slow(
    line_began: &mut Option<Instant>,
    replies: &[u8],
    lines: &Lines,
    idle: Duration,
) -> bool {
    if !replies.is_empty() || lines.partial() == 0 {
        // A line was completed: what is left, if anything, is a new one.
        *line_began = None;
    }
    lines.partial() > 0
        && line_began.get_or_insert_with(Instant::now).elapsed() > idle
}
// ANCHOR_END: too_slow

// ANCHOR: hand_over_replies
/// Ends a connection whose input the shutdown ended, without losing a
/// reply. The client may still be sending; once our FIN is out, Linux
/// answers any byte that arrives on a socket shut for reading with RST
/// (RFC 1122, 4.2.2.13), and a reset throws away every reply not yet
/// delivered. So wait, at most `limit`, until the client's kernel has
/// acknowledged every reply (SIOCOUTQ, `man 7 tcp`); then send FIN.
fn hand_over_replies(conn: &TcpStream, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let unsent = unacknowledged(conn)
            .traced(|| server("ioctl").on(conn).args("SIOCOUTQ"));
        if !matches!(unsent, Ok(OptionValue(n)) if n > 0)
            || Instant::now() >= until
        {
            break;
        }
        // No event says "all acknowledged": look again in a moment.
        thread::sleep(Duration::from_millis(10));
    }
    let _ = conn
        .shutdown(Shutdown::Write)
        .traced(|| server("shutdown").on(conn).args("SHUT_WR"));
}
// ANCHOR_END: hand_over_replies

/// Bytes sent on `conn` that its peer has not acknowledged yet:
/// `ioctl(SIOCOUTQ)` (`man 7 tcp`).
fn unacknowledged(conn: &TcpStream) -> io::Result<OptionValue> {
    let mut count: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int, which `count` is.
    if unsafe { libc::ioctl(conn.as_raw_fd(), libc::TIOCOUTQ, &mut count) }
        == -1
    {
        return Err(io::Error::last_os_error());
    }
    Ok(OptionValue(usize::try_from(count).unwrap_or(0)))
}

/// Lesson 10's lingering close, for a connection the server ends while the
/// client may still be sending: FIN after the replies, then read and drop
/// whatever still comes until the client closes its side, or `limit` has
/// passed; only then close (lesson 6).
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

/// `send` until every byte is taken: one call may take fewer (lesson 4).
fn send_all(conn: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
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

/// A read or write timeout is `WouldBlock` (EAGAIN) on Linux, `TimedOut`
/// on some other systems (lesson 9).
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
