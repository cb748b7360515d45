//! One client's connection, as an event loop keeps it: its socket, the
//! unfinished line, the replies the kernel has not taken yet, and where it
//! is in its life (one [`State`]). It never waits: every call here is made
//! on a non-blocking socket the loop was told is ready.

use std::fmt::{self, Display};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use transcript::lines::{Lines, MAX_LINE, TOO_LONG, TooLong, is_shutdown};
use transcript::{Told, bytes, duration, server, server_note};

/// How much one `recv` may return.
pub const RECV_SIZE: usize = 4096;

/// Replies a connection may have waiting before the server stops reading
/// its requests: a client that sends and never reads would otherwise make
/// the server hold every reply it cannot send.
pub const HIGH_WATER: usize = 64 * 1024;

// ANCHOR: conn
/// One client's connection.
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Bytes of a line not finished yet (lesson 5).
    lines: Lines,
    /// Replies the kernel has not taken yet. A short `send` leaves the
    /// rest here, to go when the socket is writable; nothing is dropped.
    pub out: Vec<u8>,
    /// Where it is in its life.
    pub state: State,
    /// When it last read or wrote anything, for the idle limit.
    pub last_progress: Instant,
}
// ANCHOR_END: conn

// ANCHOR: state
/// Where a connection is in its life. It only moves down this list.
pub enum State {
    /// Reading requests and answering them.
    Open,
    /// Reads no more requests; closes once its replies are out. With
    /// `linger`, the client may still be sending (a line too long, the
    /// server's shutdown), so the close is a lingering one.
    Ending { why: Why, linger: bool },
    /// FIN sent after the replies; what still comes is read and dropped
    /// until the client closes its side, or the idle limit passes.
    Lingering(Why),
    /// To be closed now, whatever it still holds.
    Dead(Why),
}
// ANCHOR_END: state

/// Why a connection ends: the server's log says it when it closes.
pub enum Why {
    ClosedByClient,
    LineTooLong,
    Shutdown,
    Idle(Duration),
    /// A call failed: its name and error.
    Failed(&'static str, io::Error),
}

impl Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::ClosedByClient => write!(f, "closed by the client"),
            Why::LineTooLong => {
                write!(f, "a line longer than {MAX_LINE} bytes: closed")
            }
            Why::Shutdown => write!(f, "input ended for the shutdown: closed"),
            Why::Idle(limit) => {
                write!(f, "idle for {}: closed", duration(*limit))
            }
            Why::Failed(call, err) => write!(f, "{call}: {err}: closed"),
        }
    }
}

// ANCHOR: reads
impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr) -> Conn {
        Conn {
            stream,
            peer,
            lines: Lines::new(MAX_LINE),
            out: Vec::new(),
            state: State::Open,
            last_progress: Instant::now(),
        }
    }

    /// Whether it takes requests now: open, and not too far behind with
    /// its replies (`HIGH_WATER`).
    pub fn reads(&self) -> bool {
        matches!(self.state, State::Open) && self.out.len() < HIGH_WATER
    }

    /// Whether it is done: to close now, or to close (or linger) once its
    /// replies are out.
    pub fn finished(&self) -> bool {
        match self.state {
            State::Dead(_) => true,
            State::Ending { .. } => self.out.is_empty(),
            State::Open | State::Lingering(_) => false,
        }
    }
}
// ANCHOR_END: reads

// ANCHOR: receive
impl Conn {
    /// One `recv`, and the replies to the lines it completes. Returns
    /// whether bytes came (so more may be waiting); a `shutdown` line sets
    /// `shutdown_asked`.
    pub fn receive(&mut self, shutdown_asked: &mut bool) -> bool {
        let mut buf = [0u8; RECV_SIZE];
        let got = (&self.stream).read(&mut buf).traced(|| {
            server("recv").on(&self.stream).args(RECV_SIZE).data(&buf)
        });
        let n = match got {
            Ok(0) => {
                let why = Why::ClosedByClient;
                self.state = State::Ending { why, linger: false };
                return false;
            }
            Ok(n) => n,
            // Nothing after all: not an error, just nothing to do yet.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return false;
            }
            Err(err) => {
                self.state = State::Dead(Why::Failed("recv", err));
                return false;
            }
        };
        self.last_progress = Instant::now();
        self.lines.feed(&buf[..n]);
        let queued = self.out.len();
        while let Some(line) = self.lines.next_line() {
            match line {
                Ok(line) => {
                    *shutdown_asked |= is_shutdown(&line);
                    self.out.extend_from_slice(&line);
                    self.out.push(b'\n');
                }
                Err(TooLong) => {
                    self.out.extend_from_slice(TOO_LONG);
                    let why = Why::LineTooLong;
                    self.state = State::Ending { why, linger: true };
                    break;
                }
            }
        }
        if self.out.len() == queued {
            let partial = self.lines.partial();
            server_note(format_args!(
                "{partial} bytes of an unfinished line: kept for the next recv"
            ));
        }
        true
    }
}
// ANCHOR_END: receive

// ANCHOR: flush
impl Conn {
    /// Sends waiting replies until they are all out or the kernel's
    /// buffer is full (`EAGAIN`): what is left waits for the socket to be
    /// writable.
    pub fn flush(&mut self) {
        while !self.out.is_empty() && !matches!(self.state, State::Dead(_)) {
            let sent = (&self.stream).write(&self.out).traced(|| {
                server("send")
                    .on(&self.stream)
                    .args(bytes(&self.out))
                    .args("MSG_NOSIGNAL")
            });
            match sent {
                // All out. The buffer stays for the next reply, so a
                // request costs no allocation; what a burst grew it to
                // beyond RECV_SIZE goes back.
                Ok(n) if n == self.out.len() => {
                    self.out.clear();
                    self.out.shrink_to(RECV_SIZE);
                }
                // Only what the kernel took leaves the buffer.
                Ok(n) => drop(self.out.drain(..n)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    self.state = State::Dead(Why::Failed("send", err));
                    return;
                }
            }
            self.last_progress = Instant::now();
        }
    }
}
// ANCHOR_END: flush

impl Conn {
    /// Reads no more requests, for the server's shutdown: what has been
    /// read is answered, and the close lingers, as the client may still be
    /// sending.
    pub fn end_input(&mut self) {
        if matches!(self.state, State::Open) {
            self.state = State::Ending { why: Why::Shutdown, linger: true };
        }
    }

    /// Marks it dead if it made no progress for `idle`; a lingering
    /// connection ends as it was going to. Returns its deadline otherwise.
    pub fn expire(&mut self, now: Instant, idle: Duration) -> Option<Instant> {
        let deadline = self.last_progress + idle;
        if matches!(self.state, State::Dead(_)) {
            return None;
        }
        if now < deadline {
            return Some(deadline);
        }
        let state = std::mem::replace(&mut self.state, State::Open);
        self.state = State::Dead(match state {
            State::Lingering(why) => why,
            _ => Why::Idle(idle),
        });
        None
    }

    /// Why it ends, for the log line when it closes.
    pub fn why(&self) -> Option<&Why> {
        match &self.state {
            State::Open => None,
            State::Ending { why, .. } | State::Lingering(why) => Some(why),
            State::Dead(why) => Some(why),
        }
    }
}

// ANCHOR: linger
impl Conn {
    /// A lingering close, for a connection whose client may still be
    /// sending. Closing a socket with unread bytes makes the kernel send
    /// RST and throw away the replies it has not sent yet (lesson 6): a
    /// client slow to read would lose them. So: FIN after the replies,
    /// then read and drop what still comes until the client closes its
    /// side, or the idle limit passes (the dropped bytes are not progress).
    pub fn start_lingering(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Open);
        let State::Ending { why, linger: true } = state else {
            self.state = state;
            return;
        };
        let done = (self.stream.shutdown(Shutdown::Write))
            .traced(|| server("shutdown").on(&self.stream).args("SHUT_WR"));
        self.state = match done {
            Ok(()) => State::Lingering(why),
            Err(err) => State::Dead(Why::Failed("shutdown", err)),
        };
        self.last_progress = Instant::now();
    }

    /// One `recv` while lingering; what it brings is dropped. The end of
    /// the stream (or an error) finishes the close. Returns whether bytes
    /// came (so more may be waiting).
    pub fn discard(&mut self) -> bool {
        let mut buf = [0u8; RECV_SIZE];
        let got = (&self.stream)
            .read(&mut buf)
            .traced(|| server("recv").on(&self.stream).args(RECV_SIZE));
        match got {
            Ok(n) if n > 0 => return true,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            // The client closed its side (or reset): nothing is left unread.
            _ => {
                let state = std::mem::replace(&mut self.state, State::Open);
                self.state = State::Dead(match state {
                    State::Lingering(why) => why,
                    _ => Why::ClosedByClient,
                });
            }
        }
        false
    }
}
// ANCHOR_END: linger
