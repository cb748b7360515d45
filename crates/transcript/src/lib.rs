//! Printing plumbing shared by every lesson. It never makes a socket call.
//!
//! It also holds the other plumbing several lessons share, none of which
//! makes a socket call either: [`lines`], the line framing of the
//! multi-client servers of lessons 10 to 13 (pure buffer logic); [`cli`],
//! checks of command-line values; [`process`], a server's open descriptors
//! and log lines; [`tcp_state`], TCP state names and the /proc/net/tcp table.
//!
//! A lesson's demo narrates each system call it makes as one numbered line of
//! a timeline, in the server's column or the client's:
//!
//! ```text
//! step  server                                      client
//!    1  socket(AF_INET, SOCK_STREAM) = fd 3
//!    2  bind(fd 3, 127.0.0.1:0) = 0
//!    3                                              connect(fd 4, 127.0.0.1:41000) = 0
//!       # a line like this one is commentary, not a system call
//! ```
//!
//! Every narrated call is also recorded as a structured [`Event`] (call, fd,
//! result). When the environment variable `TRANSCRIPT_EVENTS` names a file,
//! the events are written there when the transcript is dropped, so a test can
//! compare them with what `strace` saw the kernel do (see [`check`]). Lines
//! that are not system calls (notes, headings, values a program computed) are
//! printed without a step number and recorded as nothing.

pub mod check;
pub mod cli;
mod fail;
pub mod lines;
pub mod process;
mod show;
pub mod tcp_state;

use std::fmt::{self, Display, Write as _};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, RawFd};

pub use fail::{Failure, OrFail, run};
pub use show::{OptionValue, OsError, Outcome, bytes, duration};

/// Environment variable naming the file that receives the recorded events.
pub const EVENTS_ENV: &str = "TRANSCRIPT_EVENTS";

/// Width of a column: the client column starts this far right of the server's.
const COLUMN: usize = 46;

/// What a narrated system call returned, in the terms `strace` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// A new file descriptor (`socket`, `accept`, `open`, `dup`...).
    Fd(RawFd),
    /// A plain non-negative return value: 0 for success, or a byte count.
    Value(i64),
    /// The call failed with this errno, by name (`ECONNREFUSED`).
    Errno(String),
}

impl Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ret::Fd(fd) => write!(f, "fd {fd}"),
            Ret::Value(v) => write!(f, "{v}"),
            Ret::Errno(name) => write!(f, "-1 {name}"),
        }
    }
}

/// One narrated system call, as the kernel check compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The POSIX name the lesson uses (`accept`, `send`); [`check`] knows
    /// which kernel entry points each name may appear as (`accept4`, `sendto`).
    pub call: String,
    /// The descriptor the call acted on, if any (`socket()` has none).
    pub fd: Option<RawFd>,
    /// What it returned.
    pub ret: Ret,
}

impl Event {
    /// The one-line, tab-separated form written to the events file.
    pub fn to_line(&self) -> String {
        let fd = self.fd.map_or("-".to_string(), |fd| fd.to_string());
        let ret = match &self.ret {
            Ret::Fd(fd) => format!("fd:{fd}"),
            Ret::Value(v) => v.to_string(),
            Ret::Errno(name) => name.clone(),
        };
        format!("{}\t{fd}\t{ret}", self.call)
    }

    /// Parses a line written by [`Event::to_line`].
    pub fn from_line(line: &str) -> Option<Event> {
        let mut parts = line.split('\t');
        let call = parts.next()?.to_string();
        let fd = match parts.next()? {
            "-" => None,
            n => Some(n.parse().ok()?),
        };
        let ret = parts.next()?;
        let ret = if let Some(fd) = ret.strip_prefix("fd:") {
            Ret::Fd(fd.parse().ok()?)
        } else if let Ok(v) = ret.parse() {
            Ret::Value(v)
        } else {
            Ret::Errno(ret.to_string())
        };
        Some(Event { call, fd, ret })
    }
}

/// A system call being narrated: built with [`call`], finished with
/// [`Call::returned`] or [`Call::gave`], then handed to a [`Transcript`].
#[must_use = "a call is only printed when given to a Transcript"]
#[derive(Debug, Clone)]
pub struct Call {
    name: &'static str,
    fd: Option<RawFd>,
    args: String,
    ret: Option<Ret>,
    shown: Option<String>,
    detail: String,
}

/// Starts narrating the system call `name` (use the POSIX name: `accept`,
/// `send`, `recv`).
pub fn call(name: &'static str) -> Call {
    Call {
        name,
        fd: None,
        args: String::new(),
        ret: None,
        shown: None,
        detail: String::new(),
    }
}

/// A `recv` line that also shows the bytes it returned, when there are any:
/// `recv(fd 5, 4096) = 6  ("hello\n")`. `data` is the part of the buffer the
/// call filled (empty after an error or at the end of the stream).
pub fn received(call: Call, data: &[u8]) -> Call {
    if data.is_empty() { call } else { call.detail(bytes(data)) }
}

impl Call {
    /// The descriptor the call acts on: its first argument.
    pub fn on(self, fd: &impl AsRawFd) -> Call {
        self.on_fd(fd.as_raw_fd())
    }

    /// Like [`Call::on`], for a descriptor known only by its number (for
    /// example one that has just been closed).
    pub fn on_fd(mut self, fd: RawFd) -> Call {
        self.fd = Some(fd);
        self
    }

    /// The remaining arguments, as the reader should see them.
    pub fn args(mut self, args: impl Display) -> Call {
        if !self.args.is_empty() {
            self.args.push_str(", ");
        }
        let _ = write!(self.args, "{args}");
        self
    }

    /// What the call returned: a value or an error.
    pub fn returned<T: Outcome, E: OsError>(
        self,
        result: &Result<T, E>,
    ) -> Call {
        match result {
            Ok(value) => self.gave(value),
            Err(err) => self.failed(err),
        }
    }

    /// The call succeeded with `value`.
    pub fn gave<T: Outcome + ?Sized>(mut self, value: &T) -> Call {
        self.ret = Some(value.ret());
        self.detail = value.detail();
        self
    }

    /// The call failed with `err`.
    pub fn failed<E: OsError>(mut self, err: &E) -> Call {
        self.ret = Some(Ret::Errno(err.errno_name()));
        self.detail = err.detail();
        self
    }

    /// What the line shows in place of the returned value, for a value that
    /// differs from machine to machine (a byte count that depends on the
    /// kernel's buffer sizes): `N` instead of `6144`. The recorded event
    /// keeps the real value, so the kernel check still compares it.
    pub fn shown(mut self, text: impl Display) -> Call {
        self.shown = Some(text.to_string());
        self
    }

    /// Extra words printed after the result (`peer 127.0.0.1:41000`).
    pub fn detail(mut self, detail: impl Display) -> Call {
        if !self.detail.is_empty() {
            self.detail.push_str(", ");
        }
        let _ = write!(self.detail, "{detail}");
        self
    }

    fn text(&self) -> String {
        let mut args = match self.fd {
            Some(fd) => format!("fd {fd}"),
            None => String::new(),
        };
        if !self.args.is_empty() {
            if !args.is_empty() {
                args.push_str(", ");
            }
            args.push_str(&self.args);
        }
        let mut text = format!("{}({args})", self.name);
        if let Some(shown) = &self.shown {
            let _ = write!(text, " = {shown}");
        } else if let Some(ret) = &self.ret {
            let _ = write!(text, " = {ret}");
        }
        if !self.detail.is_empty() {
            let _ = write!(text, "  ({})", self.detail);
        }
        text
    }

    fn event(&self) -> Option<Event> {
        Some(Event {
            call: self.name.to_string(),
            fd: self.fd,
            ret: self.ret.clone()?,
        })
    }
}

/// The numbered timeline a demo prints. Each line goes to stdout as soon as
/// it is narrated, so the order on screen is the order of the calls.
pub struct Transcript {
    columns: Vec<&'static str>,
    step: u32,
    events: Vec<Event>,
}

impl Transcript {
    /// A timeline with one column per actor, e.g. `&["server", "client"]`.
    pub fn new(columns: &[&'static str]) -> Transcript {
        let t = Transcript {
            columns: columns.to_vec(),
            step: 0,
            events: Vec::new(),
        };
        let mut header = String::from("step  ");
        for (i, name) in columns.iter().enumerate() {
            if i + 1 < columns.len() {
                header.push_str(&format!("{name:<COLUMN$}"));
            } else {
                header.push_str(name);
            }
        }
        t.emit(&header);
        t
    }

    /// Narrates a call made by the actor in column 0 (the server, or the
    /// only actor).
    pub fn server(&mut self, call: Call) {
        self.at(0, call);
    }

    /// Narrates a call made by the actor in column 1 (the client).
    pub fn client(&mut self, call: Call) {
        self.at(1, call);
    }

    /// Narrates a call made by the actor in column `column`.
    pub fn at(&mut self, column: usize, call: Call) {
        self.step += 1;
        let line =
            format!("{:>4}  {}", self.step, self.pad(column, &call.text()));
        self.emit(line.trim_end());
        if let Some(event) = call.event() {
            self.events.push(event);
        }
    }

    /// A line of commentary in the server's column: not a system call.
    pub fn server_note(&mut self, text: impl Display) {
        self.note_at(0, text);
    }

    /// A line of commentary in the client's column: not a system call.
    pub fn client_note(&mut self, text: impl Display) {
        self.note_at(1, text);
    }

    /// A line of commentary in column `column`: not a system call.
    pub fn note_at(&mut self, column: usize, text: impl Display) {
        let line = format!("      {}", self.pad(column, &format!("# {text}")));
        self.emit(line.trim_end());
    }

    /// A heading that spans the whole width, between parts of a demo.
    pub fn section(&mut self, title: impl Display) {
        self.emit("");
        self.emit(&format!("-- {title} --"));
    }

    fn pad(&self, column: usize, text: &str) -> String {
        let indent = " ".repeat(COLUMN * column);
        if column + 1 < self.columns.len() {
            format!("{indent}{text:<COLUMN$}")
        } else {
            format!("{indent}{text}")
        }
    }

    fn emit(&self, line: &str) {
        // A demo that cannot print has nothing left to show: stop quietly
        // (for example when piped into `head`).
        if writeln!(io::stdout(), "{line}").is_err() {
            std::process::exit(0);
        }
    }

    /// The events narrated so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        let Some(path) = std::env::var_os(EVENTS_ENV) else {
            return;
        };
        let text: String =
            self.events.iter().map(|e| e.to_line() + "\n").collect();
        if let Err(err) = std::fs::write(&path, text) {
            eprintln!("transcript: cannot write events to {path:?}: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_value_replaces_the_printed_result_but_not_the_recorded_one() {
        let sent = call("send")
            .on_fd(4)
            .args("1048576 bytes")
            .gave(&6144usize)
            .shown("N");
        assert_eq!(sent.text(), "send(fd 4, 1048576 bytes) = N");
        assert_eq!(
            sent.event(),
            Some(Event {
                call: "send".into(),
                fd: Some(4),
                ret: Ret::Value(6144)
            })
        );
    }

    #[test]
    fn a_received_line_shows_the_bytes_only_when_there_are_some() {
        let got = received(
            call("recv").on_fd(5).args(4096).gave(&6usize),
            b"hello\n",
        );
        assert_eq!(got.text(), "recv(fd 5, 4096) = 6  (\"hello\\n\")");
        let end = received(call("recv").on_fd(5).args(4096).gave(&0usize), b"");
        assert_eq!(end.text(), "recv(fd 5, 4096) = 0");
    }

    #[test]
    fn an_option_value_is_a_zero_return_and_the_value_after_it() {
        let got = call("getsockopt")
            .on_fd(4)
            .args("SO_SNDBUF")
            .gave(&OptionValue(8192));
        assert_eq!(got.text(), "getsockopt(fd 4, SO_SNDBUF) = 0  (value 8192)");
    }
}
