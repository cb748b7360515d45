//! One client's connection, as lesson 13's loop keeps it: its socket, the
//! bytes of requests not answered yet, the replies the kernel has not
//! taken yet, its deadline, and where it is in its life (one [`State`]).

use std::fmt::{self, Display};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Instant;

use nix::sys::epoll::EpollFlags;
use transcript::{Told, bytes, event, server};

use crate::files::{Found, resolve};
use crate::http::{self, Parsed, Request};
use crate::server::Limits;

/// How much one `recv` may return.
pub const RECV_SIZE: usize = 4096;

/// Replies a connection may have waiting before the server stops reading
/// its requests: a client that pipelines requests and never reads would
/// otherwise make the server hold every reply (lesson 13).
pub const HIGH_WATER: usize = 64 * 1024;

// ANCHOR: conn
/// One client's connection.
pub struct Conn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Received bytes not answered yet: part of a head, or whole requests
    /// sent ahead (pipelined) and waiting their turn.
    pub inbuf: Vec<u8>,
    /// Replies the kernel has not taken yet, in the order asked.
    pub out: Vec<u8>,
    pub state: State,
    /// When it must have made progress: a head started must be whole by
    /// then (else 408), a kept-alive connection must have sent its next
    /// request (else it is closed).
    pub deadline: Instant,
    /// What its `epoll` entry asks for now.
    pub registered: EpollFlags,
    /// The server is shutting down: the next reply says `close`.
    pub stopping: bool,
}
// ANCHOR_END: conn

// ANCHOR: state
/// Where a connection is in its life. It only moves down this list.
pub enum State {
    /// Reading requests and answering them.
    Open,
    /// Reads no more requests; closes once its replies are out. With
    /// `linger`, the client may still be sending, so the close lingers.
    Ending { why: Why, linger: bool },
    /// FIN sent after the replies; what still comes is read and dropped
    /// until the client closes its side, or the deadline passes.
    Lingering(Why),
    /// To be closed now, whatever it still holds.
    Dead(Why),
}
// ANCHOR_END: state

/// Why a connection ends: the server's log says it when it closes.
pub enum Why {
    ClosedByClient,
    /// The client asked (`Connection: close`, or HTTP/1.0).
    Asked,
    /// A request refused with this status, after which nothing is read.
    Refused(u16),
    /// No request began before the deadline.
    Idle,
    Shutdown,
    Forced,
    Failed(&'static str, io::Error),
}

impl Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::ClosedByClient => write!(f, "closed by the client"),
            Why::Asked => write!(f, "closed, as the client asked"),
            Why::Refused(status) => {
                write!(f, "answered {status}, then closed")
            }
            Why::Idle => write!(f, "no request in time: closed"),
            Why::Shutdown => write!(f, "closed for the shutdown"),
            Why::Forced => write!(f, "closed at once: a second signal"),
            Why::Failed(call, err) => write!(f, "{call}: {err}: closed"),
        }
    }
}

impl Conn {
    pub fn new(stream: TcpStream, peer: SocketAddr, limits: Limits) -> Conn {
        Conn {
            stream,
            peer,
            inbuf: Vec::new(),
            out: Vec::new(),
            state: State::Open,
            deadline: Instant::now() + limits.header_timeout,
            registered: EpollFlags::empty(),
            stopping: false,
        }
    }

    /// Whether it takes requests now: open, and not too far behind with
    /// its replies (`HIGH_WATER`).
    pub fn reads(&self) -> bool {
        matches!(self.state, State::Open) && self.out.len() < HIGH_WATER
    }

    /// Whether it is done: to close now, or once its replies are out.
    pub fn finished(&self) -> bool {
        match self.state {
            State::Dead(_) => true,
            State::Ending { .. } => self.out.is_empty(),
            State::Open | State::Lingering(_) => false,
        }
    }
}

// ANCHOR: receive
impl Conn {
    /// One `recv`, and the answers to the requests it completes. Returns
    /// whether bytes came. The first byte of a head starts its deadline;
    /// later bytes do not move it, so a head sent a byte at a time
    /// (slowloris) still ends at the deadline.
    pub fn receive(&mut self, root: &Path, limits: Limits) -> bool {
        let mut buf = [0u8; RECV_SIZE];
        let got = (&self.stream).read(&mut buf).traced(|| {
            server("recv").on(&self.stream).args(RECV_SIZE).data(&buf)
        });
        let n = match got {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                return false;
            }
            Err(err) => {
                self.state = State::Dead(Why::Failed("recv", err));
                return false;
            }
        };
        if n > 0 && self.inbuf.is_empty() {
            self.deadline = Instant::now() + limits.header_timeout;
        }
        self.inbuf.extend_from_slice(&buf[..n]);
        while self.answer(root, limits) {}
        if n == 0 && matches!(self.state, State::Open) {
            // The client's half-close: what it sent is answered above.
            let why = Why::ClosedByClient;
            self.state = State::Ending { why, linger: false };
        }
        n > 0
    }
}
// ANCHOR_END: receive

// ANCHOR: answer
impl Conn {
    /// Answers the first whole request in `inbuf`, if there is one and the
    /// connection takes requests: requests sent ahead are answered one at
    /// a time, in order. Returns whether it answered one.
    pub fn answer(&mut self, root: &Path, limits: Limits) -> bool {
        if !self.reads() {
            return false;
        }
        match http::parse(&self.inbuf) {
            Parsed::Partial => false,
            Parsed::Refused(status) => {
                event(format_args!("{}: refused: {status}", self.peer));
                self.out.extend(http::error(status, true, true));
                self.inbuf = Vec::new();
                let why = Why::Refused(status);
                self.state = State::Ending { why, linger: true };
                false
            }
            Parsed::Request(request, used) => {
                self.inbuf.drain(..used);
                self.respond(&request, root);
                // The next head's deadline starts with its first byte.
                let wait = match self.inbuf.is_empty() {
                    true => limits.idle,
                    false => limits.header_timeout,
                };
                self.deadline = Instant::now() + wait;
                true
            }
        }
    }
}
// ANCHOR_END: answer

// ANCHOR: respond
impl Conn {
    /// Queues the response to one request: the file, or an error status.
    /// `HEAD` gets the same head as `GET`, without the body.
    fn respond(&mut self, request: &Request, root: &Path) {
        let method = request.method.as_str();
        let close = !request.keep_alive || self.stopping;
        let body = method == "GET";
        let (status, reply) = match method {
            "GET" | "HEAD" => match resolve(root, &request.target) {
                // The client's copy is as new as the file: no body.
                Found::File(_, _, Some(modified))
                    if request.if_modified_since >= Some(modified) =>
                {
                    (304, http::not_modified(Some(modified), close))
                }
                Found::File(kind, file, modified) => {
                    let mut reply =
                        http::head(200, kind, file.len(), modified, close);
                    if body {
                        reply.extend_from_slice(&file);
                    }
                    (200, reply)
                }
                Found::Status(status) => {
                    (status, http::error(status, close, body))
                }
            },
            // A body may follow that we would read as a request: close.
            _ => (405, http::error(405, true, true)),
        };
        event(format_args!(
            "{}: {method} {} -> {status}",
            self.peer, request.target
        ));
        self.out.extend_from_slice(&reply);
        if status == 405 {
            self.state = State::Ending { why: Why::Refused(405), linger: true };
        } else if close {
            let why = if self.stopping { Why::Shutdown } else { Why::Asked };
            self.state = State::Ending { why, linger: true };
        }
    }
}
// ANCHOR_END: respond

// ANCHOR: flush
impl Conn {
    /// Sends waiting replies until they are all out or the kernel's
    /// buffer is full (`EAGAIN`): what is left waits for `EPOLLOUT`.
    pub fn flush(&mut self, limits: Limits) {
        while !self.out.is_empty() && !matches!(self.state, State::Dead(_)) {
            let sent = (&self.stream).write(&self.out).traced(|| {
                server("send")
                    .on(&self.stream)
                    .args(bytes(&self.out))
                    .args("MSG_NOSIGNAL")
            });
            match sent {
                Ok(n) if n == self.out.len() => self.out = Vec::new(),
                Ok(n) => drop(self.out.drain(..n)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) => {
                    self.state = State::Dead(Why::Failed("send", err));
                    return;
                }
            }
            // A client reading a large file slowly is making progress.
            let later = Instant::now() + limits.idle;
            if self.inbuf.is_empty() && later > self.deadline {
                self.deadline = later;
            }
        }
    }
}
// ANCHOR_END: flush

// ANCHOR: expire
impl Conn {
    /// Past its deadline: a head not finished is answered 408 (RFC 9110
    /// 15.5.9) and the connection closes; one with no request under way
    /// just closes. Returns its deadline if it is not past yet.
    pub fn expire(&mut self, now: Instant, limits: Limits) -> Option<Instant> {
        if matches!(self.state, State::Dead(_)) {
            return None;
        }
        if now < self.deadline {
            return Some(self.deadline);
        }
        let state = std::mem::replace(&mut self.state, State::Open);
        self.state = match state {
            State::Open if !self.inbuf.is_empty() => {
                event(format_args!("{}: head too slow: 408", self.peer));
                self.out.extend(http::error(408, true, true));
                self.inbuf = Vec::new();
                self.deadline = now + limits.header_timeout;
                self.flush(limits);
                State::Ending { why: Why::Refused(408), linger: true }
            }
            State::Open => State::Dead(Why::Idle),
            State::Ending { why, .. } | State::Lingering(why) => {
                State::Dead(why)
            }
            dead => dead,
        };
        None
    }
}
// ANCHOR_END: expire

// ANCHOR: linger
impl Conn {
    /// Lesson 13's lingering close: FIN after the replies, then what the
    /// client still sends is read and dropped until it closes its side,
    /// or the deadline passes. Closing with unread bytes would reset the
    /// connection and lose the replies not yet read.
    pub fn start_lingering(&mut self, limits: Limits) {
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
        self.deadline = Instant::now() + limits.header_timeout;
    }

    /// One `recv` while lingering; what it brings is dropped. The end of
    /// the stream (or an error) finishes the close.
    pub fn discard(&mut self) {
        let mut buf = [0u8; RECV_SIZE];
        let got = (&self.stream)
            .read(&mut buf)
            .traced(|| server("recv").on(&self.stream).args(RECV_SIZE));
        match got {
            Ok(n) if n > 0 => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            _ => {
                let state = std::mem::replace(&mut self.state, State::Open);
                self.state = State::Dead(match state {
                    State::Lingering(why) => why,
                    _ => Why::ClosedByClient,
                });
            }
        }
    }
}
// ANCHOR_END: linger

impl Conn {
    /// Reads no more requests, for the server's shutdown.
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

    /// Why it ends, for the log line when it closes.
    pub fn why(&self) -> Option<&Why> {
        match &self.state {
            State::Open => None,
            State::Ending { why, .. } | State::Lingering(why) => Some(why),
            State::Dead(why) => Some(why),
        }
    }
}
