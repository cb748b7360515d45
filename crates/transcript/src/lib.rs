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

pub mod args;
pub mod calendar;
pub mod check;
pub mod child;
pub mod cli;
pub mod demo;
mod fail;
pub mod lines;
pub mod process;
mod show;
pub mod tcp_state;

use std::cell::RefCell;
use std::fmt::{self, Display, Write as _};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

pub use fail::{Failure, OrFail, run};
pub use show::{OptionValue, OsError, Outcome, bytes, duration};

/// Environment variable naming the file that receives the recorded events.
pub const EVENTS_ENV: &str = "TRANSCRIPT_EVENTS";

/// Environment variable naming a descriptor the demo reads one byte from
/// after each line it prints (lesson 18's `beside`): the reader of the
/// transcript decides when the demo goes on, so it can read the packets
/// each call sent before the next call sends more.
pub const PACED_ENV: &str = "TRANSCRIPT_PACED_BY";

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
    /// The other arguments, as the transcript prints them (`127.0.0.1:0`,
    /// `SO_RCVTIMEO, 10 s`): [`check`] compares each with the kernel's.
    pub args: String,
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
        // Narrated bytes are escaped (`\t`), so a tab separates fields.
        let args = self.args.replace('\t', "\\t");
        format!("{}\t{fd}\t{ret}\t{args}", self.call)
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
        let args = parts.next().unwrap_or_default().to_string();
        Some(Event { call, fd, ret, args })
    }
}

/// A system call being narrated: built with [`call`], finished with
/// [`Call::returned`] or [`Call::gave`], then handed to a [`Transcript`].
#[must_use = "a call is only printed when given to a Transcript"]
#[derive(Debug, Clone)]
pub struct Call {
    name: &'static str,
    column: usize,
    fd: Option<RawFd>,
    args: String,
    ret: Option<Ret>,
    shown: Option<String>,
    detail: String,
    /// The buffer a `recv` filled, until [`Call::gave`] knows how much of
    /// it the call returned.
    data: Option<Vec<u8>>,
}

/// Starts narrating the system call `name` (use the POSIX name: `accept`,
/// `send`, `recv`).
pub fn call(name: &'static str) -> Call {
    actor(0, name)
}

/// A call the server makes (column 0): `server("bind")`.
pub fn server(name: &'static str) -> Call {
    actor(0, name)
}

/// A call the client makes (column 1): `client("connect")`.
pub fn client(name: &'static str) -> Call {
    actor(1, name)
}

/// A call made by the actor in column `column`.
pub fn actor(column: usize, name: &'static str) -> Call {
    Call {
        name,
        column,
        fd: None,
        args: String::new(),
        ret: None,
        shown: None,
        detail: String::new(),
        data: None,
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

    /// The call succeeded with `value`. Words given with [`Call::detail`]
    /// before (in a `.told(|| ...)` closure) follow the value's own.
    pub fn gave<T: Outcome + ?Sized>(mut self, value: &T) -> Call {
        self.ret = Some(value.ret());
        let earlier = std::mem::replace(&mut self.detail, value.detail());
        if !earlier.is_empty() {
            self = self.detail(earlier);
        }
        if let (Some(data), Ret::Value(n)) = (self.data.take(), value.ret())
            && n > 0
        {
            let n = (n as usize).min(data.len());
            self = self.detail(bytes(&data[..n]));
        }
        self
    }

    /// The buffer a `recv` read into: the line shows the bytes the call
    /// returned, `recv(fd 5, 4096) = 6  ("hello\n")`, and nothing after an
    /// error or at the end of the stream.
    pub fn data(mut self, buf: &[u8]) -> Call {
        self.data = Some(buf.to_vec());
        self
    }

    /// The failure a program reports when this call fails, named by the
    /// call and its arguments: `bind 127.0.0.1:8001`.
    fn what(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }

    /// The call failed with `err`.
    pub fn failed<E: OsError>(mut self, err: &E) -> Call {
        self.ret = Some(Ret::Errno(err.errno_name()));
        self.detail = err.detail();
        self.data = None;
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
            args: self.args.clone(),
        })
    }
}

/// The numbered timeline a demo prints. Each line goes to stdout as soon as
/// it is narrated, so the order on screen is the order of the calls.
///
/// There is one timeline per process, held here rather than passed around:
/// while a `Transcript` is alive, [`Told::told`], [`Told::traced`],
/// [`tell`] and the note functions print into it from any thread (unless
/// that thread [`redirect`]s its narration); when none is alive they print
/// nothing and cost one atomic load. So the same lesson code runs narrated
/// in the demo and silent as the interactive server.
pub struct Transcript {
    _private: (),
}

/// The timeline's state, shared by every thread of the process.
struct Timeline {
    columns: Vec<&'static str>,
    step: u32,
    events: Vec<Event>,
}

/// Whether a [`Transcript`] is alive: checked before any narration is built.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static TIMELINE: Mutex<Option<Timeline>> = Mutex::new(None);

thread_local! {
    /// Where this thread's narration goes instead of the timeline.
    static OUTLET: RefCell<Option<Sender<Said>>> = const { RefCell::new(None) };
    /// Whether this thread waits until each piece of its narration has
    /// been shown: a [`narrated`] body, under `beside`.
    static PACED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Whether this thread runs [`hushed`]: the bodies it starts are not
    /// paced, as nobody shows what they say.
    static HUSHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long a paced thread waits for its narration to be shown at most: a
/// demo that never shows a piece slows down, but does not hang.
const PACED_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One piece of narration a thread handed over instead of printing it (see
/// [`redirect`]): the receiving thread prints it with [`Said::show`] when
/// the order of the conversation makes it certain.
#[derive(Debug)]
pub enum Said {
    /// A system call and what it returned.
    Call(Call),
    /// A line of commentary, in column `.0`.
    Note(usize, String),
    /// Under lesson 18's `beside` ([`PACED_ENV`]): narration whose thread
    /// (or forked child) waits until it has been shown, or dropped, before
    /// its next call, so the segments that call sends come after this line.
    Paced(Box<Said>, Shown),
}

/// Tells a paced thread or child that its narration has been shown (or
/// will never be: dropped), so it may make its next call.
pub struct Shown(Option<Box<dyn FnOnce() + Send>>);

impl Shown {
    pub(crate) fn new(then: impl FnOnce() + Send + 'static) -> Shown {
        Shown(Some(Box::new(then)))
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shown")
    }
}

impl Drop for Shown {
    fn drop(&mut self) {
        if let Some(then) = self.0.take() {
            then();
        }
    }
}

/// Whether the demo runs paced ([`PACED_ENV`]), beside a packet socket.
pub(crate) fn pacing() -> bool {
    static PACING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PACING.get_or_init(|| std::env::var_os(PACED_ENV).is_some())
}

impl Said {
    /// Prints this piece of narration into the timeline now.
    pub fn show(self) {
        match self {
            Said::Call(call) => print_call(call),
            Said::Note(column, text) => print_note(column, &text),
            // Shown, then the thread that said it goes on.
            Said::Paced(said, shown) => {
                said.show();
                drop(shown);
            }
        }
    }
}

/// From now on, narration made on this thread is sent to `outlet` instead
/// of being printed, so a demo with several threads can print it in an
/// order that does not depend on how the kernel schedules them. Does
/// nothing when no transcript is alive (the interactive programs).
pub fn redirect(outlet: Sender<Said>) {
    if narrating() {
        OUTLET.with(|o| *o.borrow_mut() = Some(outlet));
    }
}

/// Runs `f` with this thread's narration dropped, neither printed nor
/// recorded: for a busy stretch whose calls depend on the kernel's buffer
/// sizes, which a demo sums up in a note instead of showing one by one.
pub fn hushed<R>(f: impl FnOnce() -> R) -> R {
    // An outlet whose receiver is gone: what is sent to it is dropped.
    let (outlet, _) = std::sync::mpsc::channel();
    let before = OUTLET.with(|o| o.replace(Some(outlet)));
    let was = HUSHED.with(|h| h.replace(true));
    let result = f();
    HUSHED.with(|h| h.set(was));
    OUTLET.with(|o| *o.borrow_mut() = before);
    result
}

/// Where [`narrated`] hands the narration of each new thread or job: the
/// demo's end of it is [`threads`].
static THREADS: Mutex<Option<Sender<Receiver<Said>>>> = Mutex::new(None);

/// The body of a new thread (or a job for a pool) whose narration the demo
/// must order: `thread::spawn(narrated(move || serve(conn)))`. While a
/// transcript is alive, the body's narration goes to a channel of its own,
/// made now, on the spawning thread, so the demo receives the channels
/// from [`threads`] in the order the spawning threads made them. Otherwise
/// the body runs as it is.
pub fn narrated<T>(
    body: impl FnOnce() -> T + Send,
) -> impl FnOnce() -> T + Send {
    let paced = pacing() && !HUSHED.with(|h| h.get());
    let outlet = THREADS.lock().ok().and_then(|threads| {
        let threads = threads.as_ref().filter(|_| narrating())?;
        let (outlet, said) = channel();
        threads.send(said).ok()?;
        Some(outlet)
    });
    move || {
        if let Some(outlet) = outlet {
            redirect(outlet);
            // Under `beside`, one call at a time: the packets of this
            // thread's next call must not overtake the line of its last.
            PACED.with(|p| p.set(paced));
        }
        body()
    }
}

/// The demo's end of [`narrated`]: one channel of narration per body made
/// from now on, in order. A second call replaces the first.
pub fn threads() -> Receiver<Receiver<Said>> {
    let (tx, rx) = channel();
    if let Ok(mut threads) = THREADS.lock() {
        *threads = Some(tx);
    }
    rx
}

/// Whether a transcript is alive, so narration would be shown.
pub fn narrating() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn timeline() -> std::sync::MutexGuard<'static, Option<Timeline>> {
    // A thread that panicked while printing leaves the lines as they were.
    TIMELINE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Hands `said` to this thread's outlet; gives it back if there is none.
fn redirected(said: Said) -> Option<Said> {
    // In a forked child (beside lesson 10), narration goes to the parent.
    let said = child::sent_home(said)?;
    OUTLET.with(|o| match &*o.borrow() {
        Some(outlet) if PACED.with(|p| p.get()) => {
            let (done, shown) = std::sync::mpsc::sync_channel(1);
            let said = Said::Paced(
                Box::new(said),
                Shown::new(move || {
                    let _ = done.send(());
                }),
            );
            // Sent back unshown (the demo stopped listening): no wait.
            if outlet.send(said).is_ok() {
                let _ = shown.recv_timeout(PACED_WAIT);
            }
            None
        }
        Some(outlet) => {
            // The receiver gone means the demo stopped listening: drop it.
            let _ = outlet.send(said);
            None
        }
        None => Some(said),
    })
}

fn print_call(call: Call) {
    let Some(Said::Call(call)) = redirected(Said::Call(call)) else {
        return;
    };
    let mut timeline = timeline();
    let Some(t) = timeline.as_mut() else { return };
    t.step += 1;
    let line = format!("{:>4}  {}", t.step, t.pad(call.column, &call.text()));
    emit(line.trim_end());
    if let Some(event) = call.event() {
        t.events.push(event);
    }
}

fn print_note(column: usize, text: &str) {
    let Some(Said::Note(column, text)) =
        redirected(Said::Note(column, text.to_string()))
    else {
        return;
    };
    let timeline = timeline();
    let Some(t) = timeline.as_ref() else { return };
    let line = format!("      {}", t.pad(column, &format!("# {text}")));
    emit(line.trim_end());
}

fn emit(line: &str) {
    // A demo that cannot print has nothing left to show: stop quietly
    // (for example when piped into `head`).
    if writeln!(io::stdout(), "{line}").is_err() {
        std::process::exit(0);
    }
    paced();
}

/// Waits for the go-ahead byte when [`PACED_ENV`] names a descriptor; does
/// nothing otherwise (one look at a cached value).
fn paced() {
    use std::io::Read as _;
    use std::os::fd::FromRawFd as _;
    static PACER: std::sync::OnceLock<Option<std::fs::File>> =
        std::sync::OnceLock::new();
    let pacer = PACER.get_or_init(|| {
        let fd: RawFd = std::env::var(PACED_ENV).ok()?.parse().ok()?;
        // SAFETY: the parent that set the variable handed down this
        // descriptor for this use only; nothing else here owns it.
        Some(unsafe { std::fs::File::from_raw_fd(fd) })
    });
    if let Some(mut pacer) = pacer.as_ref() {
        let _ = io::stdout().flush();
        // End of file (the reader gone) means: go on unpaced.
        let _ = pacer.read(&mut [0u8]);
    }
}

impl Timeline {
    fn pad(&self, column: usize, text: &str) -> String {
        let indent = " ".repeat(COLUMN * column);
        if column + 1 < self.columns.len() {
            format!("{indent}{text:<COLUMN$}")
        } else {
            format!("{indent}{text}")
        }
    }
}

/// Narrates a system call that has already returned: built only when a
/// transcript is alive. For a call with no `Result` to attach it to, such
/// as the `close` that dropping a socket makes:
/// `drop(conn); tell(|| server("close").on_fd(fd).gave(&()));`
pub fn tell(call: impl FnOnce() -> Call) {
    if narrating() {
        print_call(call());
    }
}

/// A line of commentary in the server's column (column 0).
pub fn server_note(text: impl Display) {
    note(0, text);
}

/// A line of commentary in the client's column (column 1).
pub fn client_note(text: impl Display) {
    note(1, text);
}

/// A line of commentary in column `column`: not a system call.
pub fn note(column: usize, text: impl Display) {
    if narrating() {
        print_note(column, &text.to_string());
    }
}

/// A heading that spans the whole width, between parts of a demo.
pub fn section(title: impl Display) {
    if narrating() {
        let _timeline = timeline();
        emit("");
        emit(&format!("-- {title} --"));
    }
}

/// `log!("Connected with {peer}")`: a line of the interactive server's log,
/// written like `println!`, but a closed stdout (`server | head -3`) does
/// not stop the server, and while a transcript is alive (the demo, which
/// shows system calls instead) it prints nothing. See [`log()`].
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::log(format_args!($($arg)*)) };
}

/// A line of the interactive server's log. The demo shows system calls
/// instead, so while a transcript is alive this prints nothing.
pub fn log(line: impl Display) {
    if !narrating() {
        process::log(format_args!("{line}"));
    }
}

/// Something worth a line in the server's log and a note in the demo.
pub fn event(line: impl Display) {
    if narrating() {
        server_note(line);
    } else {
        process::log(format_args!("{line}"));
    }
}

/// Narration attached to a system call's result, so the call, its line in
/// the transcript and its error handling read as one statement:
///
/// ```ignore
/// listener.listen(5).told(|| server("listen").on(&listener).args(5))?;
/// ```
///
/// The closure runs only while a transcript is alive (and, for `told`,
/// when the call failed, to name it), so the interactive server pays for
/// nothing it does not print.
pub trait Told<T, E> {
    /// Narrates the call, then turns an error into a [`Failure`] named by
    /// the call and its arguments (`bind 127.0.0.1:8001: Address already in
    /// use (os error 98)`), for `?`.
    fn told(self, call: impl FnOnce() -> Call) -> Result<T, Failure>;

    /// Narrates the call and returns its result unchanged, for a caller
    /// that matches on the error (`WouldBlock`, `EINTR`).
    fn traced(self, call: impl FnOnce() -> Call) -> Result<T, E>;
}

impl<T: Outcome, E: OsError + Into<io::Error>> Told<T, E> for Result<T, E> {
    fn told(self, call: impl FnOnce() -> Call) -> Result<T, Failure> {
        if narrating() {
            let call = call();
            let what = call.what();
            print_call(call.returned(&self));
            self.map_err(|err| Failure::new(what, err.into()))
        } else {
            self.map_err(|err| Failure::new(call().what(), err.into()))
        }
    }

    fn traced(self, call: impl FnOnce() -> Call) -> Result<T, E> {
        if narrating() {
            print_call(call().returned(&self));
        }
        self
    }
}

impl Transcript {
    /// Starts the process's timeline with one column per actor, e.g.
    /// `&["server", "client"]`, and prints its header. One at a time: a
    /// second one replaces the first.
    pub fn new(columns: &[&'static str]) -> Transcript {
        let mut header = String::from("step  ");
        for (i, name) in columns.iter().enumerate() {
            if i + 1 < columns.len() {
                header.push_str(&format!("{name:<COLUMN$}"));
            } else {
                header.push_str(name);
            }
        }
        let mut timeline = timeline();
        *timeline = Some(Timeline {
            columns: columns.to_vec(),
            step: 0,
            events: Vec::new(),
        });
        ACTIVE.store(true, Ordering::Relaxed);
        emit(&header);
        Transcript { _private: () }
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
    pub fn at(&mut self, column: usize, mut call: Call) {
        call.column = column;
        print_call(call);
    }

    /// A line of commentary in the server's column: not a system call.
    pub fn server_note(&mut self, text: impl Display) {
        note(0, text);
    }

    /// A line of commentary in the client's column: not a system call.
    pub fn client_note(&mut self, text: impl Display) {
        note(1, text);
    }

    /// A line of commentary in column `column`: not a system call.
    pub fn note_at(&mut self, column: usize, text: impl Display) {
        note(column, text);
    }

    /// A heading that spans the whole width, between parts of a demo.
    pub fn section(&mut self, title: impl Display) {
        section(title);
    }

    /// The events narrated so far.
    pub fn events(&self) -> Vec<Event> {
        timeline().as_ref().map(|t| t.events.clone()).unwrap_or_default()
    }
}

impl Drop for Transcript {
    fn drop(&mut self) {
        ACTIVE.store(false, Ordering::Relaxed);
        let Some(timeline) = timeline().take() else { return };
        let Some(path) = std::env::var_os(EVENTS_ENV) else {
            return;
        };
        let text: String =
            timeline.events.iter().map(|e| e.to_line() + "\n").collect();
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
                ret: Ret::Value(6144),
                args: "1048576 bytes".into(),
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

    #[test]
    fn a_paced_thread_goes_on_once_its_narration_is_shown_or_dropped() {
        let (done, shown) = std::sync::mpsc::channel();
        let paced = |done: Sender<&'static str>, what| {
            let said = Box::new(Said::Note(0, "x".into()));
            Said::Paced(said, Shown::new(move || done.send(what).unwrap()))
        };
        // No transcript is alive here: showing prints nothing.
        paced(done.clone(), "shown").show();
        drop(paced(done, "dropped"));
        assert_eq!(shown.try_iter().collect::<Vec<_>>(), ["shown", "dropped"]);
    }
}
