//! One client's connection, as an event loop keeps it: its socket, where
//! it is in its life (one [`State`]) and, only while there are any, the
//! bytes that must wait: an unfinished line, replies the kernel has not
//! taken yet. It never waits: every call here is made on a non-blocking
//! socket the loop was told is ready.

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
    /// Where it is in its life.
    pub state: State,
    /// When it last read or wrote anything, for the idle limit.
    pub last_progress: Instant,
    /// Its bytes in flight, boxed, and only while there are any: an idle
    /// connection holds no buffer, not even an empty one. `None` takes 8
    /// bytes here; the two empty buffers it stands for would take 72.
    pending: Option<Box<Pending>>,
}

/// What a connection has in flight, both ways.
struct Pending {
    /// Bytes of a line not finished yet (lesson 5).
    lines: Lines,
    /// Replies the kernel has not taken yet. A short `send` leaves the
    /// rest here, to go when the socket is writable; nothing is dropped.
    out: Vec<u8>,
}

impl Pending {
    /// The box in `slot`, made now if the connection has none.
    fn made(slot: &mut Option<Box<Pending>>) -> &mut Pending {
        slot.get_or_insert_with(|| {
            Box::new(Pending { lines: Lines::new(MAX_LINE), out: Vec::new() })
        })
    }
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
    /// A second shutdown signal: no more waiting for anyone.
    Forced,
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
            Why::Forced => write!(f, "closed at once: a second signal"),
            Why::Failed(call, err) => write!(f, "{call}: {err}: closed"),
        }
    }
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr) -> Conn {
        Conn {
            stream,
            peer,
            state: State::Open,
            last_progress: Instant::now(),
            pending: None,
        }
    }

    /// How many bytes of replies wait for the kernel to take them.
    pub fn waiting(&self) -> usize {
        self.pending.as_ref().map_or(0, |pending| pending.out.len())
    }

    /// Whether it takes requests now: open, and not too far behind with
    /// its replies (`HIGH_WATER`).
    pub fn reads(&self) -> bool {
        matches!(self.state, State::Open) && self.waiting() < HIGH_WATER
    }

    /// Whether it is done: to close now, or to close (or linger) once its
    /// replies are out.
    pub fn finished(&self) -> bool {
        match self.state {
            State::Dead(_) => true,
            State::Ending { .. } => self.waiting() == 0,
            State::Open | State::Lingering(_) => false,
        }
    }
}

// ANCHOR: receive
impl Conn {
    /// One `recv`, and the replies to the lines it completes. `buf` is the
    /// server's one receive buffer, shared by every connection: what must
    /// outlive this call is copied out of it. Returns whether bytes came
    /// (so more may be waiting); a `shutdown` line sets `shutdown_asked`.
    pub fn receive(
        &mut self,
        buf: &mut [u8],
        shutdown_asked: &mut bool,
    ) -> bool {
        let got = (&self.stream).read(buf).traced(|| {
            server("recv").on(&self.stream).args(buf.len()).data(buf)
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
        let mut rest = &buf[..n];
        if self.pending.is_none() {
            // Nothing kept from before: the whole lines that came are
            // their own replies, sent straight from `buf`. No copy, and
            // no allocation, for the common request.
            let (whole, shutdown) = whole_lines(rest);
            *shutdown_asked |= shutdown;
            self.reply(&rest[..whole]);
            rest = &rest[whole..];
        }
        if !rest.is_empty() {
            self.keep(rest, shutdown_asked);
        }
        true
    }
}
// ANCHOR_END: receive

// ANCHOR: keep
impl Conn {
    /// Bytes that must wait for more (an unfinished line), or that come
    /// while replies wait: they go into the connection's own buffer, the
    /// box made for them, and are answered line by line from there.
    fn keep(&mut self, bytes: &[u8], shutdown_asked: &mut bool) {
        let pending = Pending::made(&mut self.pending);
        pending.lines.feed(bytes);
        let queued = pending.out.len();
        while let Some(line) = pending.lines.next_line() {
            match line {
                Ok(line) => {
                    *shutdown_asked |= is_shutdown(&line);
                    pending.out.extend_from_slice(&line);
                    pending.out.push(b'\n');
                }
                Err(TooLong) => {
                    pending.out.extend_from_slice(TOO_LONG);
                    let why = Why::LineTooLong;
                    self.state = State::Ending { why, linger: true };
                    break;
                }
            }
        }
        if pending.out.len() == queued {
            let partial = pending.lines.partial();
            server_note(format_args!(
                "{partial} bytes of an unfinished line: kept for the next recv"
            ));
        }
    }
}

/// How many leading bytes of `bytes` are whole lines, none longer than
/// `MAX_LINE` (the echo's reply to them is those same bytes), and whether
/// one of them is `shutdown`. One pass: it runs for every request.
fn whole_lines(bytes: &[u8]) -> (usize, bool) {
    let (mut whole, mut shutdown) = (0, false);
    for line in bytes.split_inclusive(|&byte| byte == b'\n') {
        // The last piece may be a line not finished yet.
        let Some(line) = line.strip_suffix(b"\n") else { break };
        if line.len() > MAX_LINE {
            break;
        }
        shutdown |= is_shutdown(line);
        whole += line.len() + 1;
    }
    (whole, shutdown)
}
// ANCHOR_END: keep

// ANCHOR: flush
impl Conn {
    /// Sends `replies` from the caller's buffer; what the kernel does not
    /// take is copied into the connection's own, to go when the socket is
    /// writable (`flush`).
    fn reply(&mut self, replies: &[u8]) {
        if replies.is_empty() {
            return;
        }
        let taken = match send(&self.stream, replies) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => 0,
            Err(err) => {
                self.state = State::Dead(Why::Failed("send", err));
                return;
            }
        };
        if taken < replies.len() {
            let out = &mut Pending::made(&mut self.pending).out;
            out.extend_from_slice(&replies[taken..]);
        }
    }

    /// Sends waiting replies until they are all out or the kernel's
    /// buffer is full (`EAGAIN`): what is left waits for the socket to be
    /// writable.
    pub fn flush(&mut self) {
        while let Some(pending) = &mut self.pending
            && !pending.out.is_empty()
            && !matches!(self.state, State::Dead(_))
        {
            match send(&self.stream, &pending.out) {
                // Only what the kernel took leaves the buffer.
                Ok(n) => drop(pending.out.drain(..n)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    self.state = State::Dead(Why::Failed("send", err));
                    return;
                }
            }
            self.last_progress = Instant::now();
            // All out, and no unfinished line: give the box back.
            if pending.out.is_empty() && pending.lines.partial() == 0 {
                self.pending = None;
            }
        }
    }
}

/// One `send`: how many bytes the kernel took.
fn send(stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut writer = stream;
    writer.write(data).traced(|| {
        server("send").on(stream).args(bytes(data)).args("MSG_NOSIGNAL")
    })
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

    /// Closes now, whatever it holds (a second shutdown signal).
    pub fn kill(&mut self) {
        if !matches!(self.state, State::Dead(_)) {
            self.state = State::Dead(Why::Forced);
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
    pub fn discard(&mut self, buf: &mut [u8]) -> bool {
        let got = (&self.stream)
            .read(buf)
            .traced(|| server("recv").on(&self.stream).args(buf.len()));
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
