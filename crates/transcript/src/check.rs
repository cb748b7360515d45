//! Checks a demo's narration against the kernel: every [`Event`] a lesson
//! narrated must be a system call `strace` saw, on the same descriptor, with
//! the same result, in the same order on that descriptor.
//!
//! The course's kernel test (`tests/course/kernel.rs`) runs each demo as
//!
//! ```text
//! strace -f -qq -o TRACE -e trace=<strace_filter()> lesson-NN
//! ```
//!
//! with `TRANSCRIPT_EVENTS` naming a second file, then calls [`parse_strace`],
//! [`narration_window`] and [`compare`]. This module only reads text: it
//! makes no system call of its own, so it can be tested with lines copied
//! from real runs.
//!
//! Why per descriptor and not the whole timeline: a demo that uses threads
//! prints its steps in an order it chooses, while the kernel interleaves
//! threads as it pleases. What must hold is the history of each descriptor
//! (and the order of calls that name no descriptor, such as `socket`), and
//! that is what is compared.

use std::collections::HashMap;
use std::fmt::{self, Display, Write as _};
use std::os::fd::RawFd;

use crate::args::{self, Atom};
use crate::{Event, Ret};

/// Where a kernel entry point's first argument names a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstArg {
    /// A descriptor: `close(3)`.
    Fd,
    /// A directory descriptor, `AT_FDCWD` when the call names a path:
    /// `openat(AT_FDCWD, "/etc/passwd")`, but `newfstatat(3, "")`.
    DirFd,
    /// Not a descriptor: `socket(AF_INET, ...)`, `poll([...], ...)`.
    NotFd,
}

/// One kernel entry point: its name as strace prints it, what its first
/// argument is, and whether a successful call returns a new descriptor
/// (which then begins that descriptor's history).
struct Kernel {
    name: &'static str,
    first: FirstArg,
    returns_fd: bool,
}

const fn k(name: &'static str, first: FirstArg, returns_fd: bool) -> Kernel {
    Kernel { name, first, returns_fd }
}

/// Every kernel entry point a narrated name may appear as. Names that do not
/// exist on every architecture (`open`, `recv`, `poll`, `epoll_wait`) are
/// listed anyway: [`strace_filter`] marks each name optional.
const KERNEL: &[Kernel] = &[
    k("accept", FirstArg::Fd, true),
    k("accept4", FirstArg::Fd, true),
    k("bind", FirstArg::Fd, false),
    k("chmod", FirstArg::NotFd, false),
    k("close", FirstArg::Fd, false),
    // Beside lesson 10: fork is clone (or clone3) on Linux; its result is
    // the child's pid, not a descriptor.
    k("clone", FirstArg::NotFd, false),
    k("clone3", FirstArg::NotFd, false),
    k("connect", FirstArg::Fd, false),
    k("epoll_create", FirstArg::NotFd, true),
    k("epoll_create1", FirstArg::NotFd, true),
    k("epoll_ctl", FirstArg::Fd, false),
    k("epoll_pwait", FirstArg::Fd, false),
    k("epoll_pwait2", FirstArg::Fd, false),
    k("epoll_wait", FirstArg::Fd, false),
    k("fchmodat", FirstArg::DirFd, false),
    k("fchmodat2", FirstArg::DirFd, false),
    k("fork", FirstArg::NotFd, false),
    // Beside lesson 12: fcntl(fd, F_DUPFD_CLOEXEC, 1024) returns a new
    // descriptor, but most fcntl commands return flags, not descriptors.
    k("fcntl", FirstArg::Fd, false),
    k("fcntl64", FirstArg::Fd, false),
    k("fstat", FirstArg::Fd, false),
    k("getpeername", FirstArg::Fd, false),
    k("getsockname", FirstArg::Fd, false),
    k("getrlimit", FirstArg::NotFd, false),
    k("getsockopt", FirstArg::Fd, false),
    k("ioctl", FirstArg::Fd, false),
    k("kill", FirstArg::NotFd, false),
    k("listen", FirstArg::Fd, false),
    k("lseek", FirstArg::Fd, false),
    k("lstat", FirstArg::NotFd, false),
    k("newfstatat", FirstArg::DirFd, false),
    k("open", FirstArg::NotFd, true),
    k("openat", FirstArg::DirFd, true),
    k("poll", FirstArg::NotFd, false),
    k("ppoll", FirstArg::NotFd, false),
    // getrlimit and setrlimit are prlimit64(0, resource, ...) in glibc.
    k("prlimit64", FirstArg::NotFd, false),
    // Beside lesson 12: select's first argument is nfds, not a descriptor.
    k("pselect6", FirstArg::NotFd, false),
    k("read", FirstArg::Fd, false),
    k("readlink", FirstArg::NotFd, false),
    k("readlinkat", FirstArg::DirFd, false),
    k("readv", FirstArg::Fd, false),
    k("recv", FirstArg::Fd, false),
    k("recvfrom", FirstArg::Fd, false),
    k("recvmsg", FirstArg::Fd, false),
    k("rt_sigaction", FirstArg::NotFd, false),
    k("rt_sigprocmask", FirstArg::NotFd, false),
    k("select", FirstArg::NotFd, false),
    k("send", FirstArg::Fd, false),
    k("sendmsg", FirstArg::Fd, false),
    k("sendto", FirstArg::Fd, false),
    k("setrlimit", FirstArg::NotFd, false),
    k("setsockopt", FirstArg::Fd, false),
    k("shutdown", FirstArg::Fd, false),
    // Its first argument is -1 for a new signalfd, not a descriptor to act on.
    k("signalfd", FirstArg::NotFd, true),
    k("signalfd4", FirstArg::NotFd, true),
    k("socket", FirstArg::NotFd, true),
    // Its two new descriptors come back in an array, not as the result.
    k("socketpair", FirstArg::NotFd, false),
    k("statx", FirstArg::DirFd, false),
    k("unlink", FirstArg::NotFd, false),
    k("unlinkat", FirstArg::DirFd, false),
    k("wait4", FirstArg::NotFd, false),
    k("waitid", FirstArg::NotFd, false),
    k("write", FirstArg::Fd, false),
    k("writev", FirstArg::Fd, false),
];

/// From the POSIX name a lesson narrates to the kernel entry points the C
/// library or Rust's std may turn it into on Linux. glibc's `recv` is the
/// `recvfrom` system call on x86-64, `fstat` is `newfstatat(fd, "",
/// AT_EMPTY_PATH)` since glibc 2.33, Rust's std uses `statx` and `accept4`,
/// and `open`/`readlink` become their `*at` forms on newer architectures.
const ALIASES: &[(&str, &[&str])] = &[
    ("accept", &["accept", "accept4"]),
    ("bind", &["bind"]),
    // Lesson 15: glibc's chmod, lstat and unlink may be the *at forms.
    ("chmod", &["chmod", "fchmodat", "fchmodat2"]),
    ("close", &["close"]),
    ("connect", &["connect"]),
    // Beyond the brief: epoll_create(size) is epoll_create1(0) in modern
    // glibc and absent on arm64, and epoll_wait is epoll_pwait there; a
    // lesson narrating the classic names must still match.
    ("epoll_create", &["epoll_create", "epoll_create1"]),
    ("epoll_create1", &["epoll_create1"]),
    ("epoll_ctl", &["epoll_ctl"]),
    ("epoll_wait", &["epoll_wait", "epoll_pwait", "epoll_pwait2"]),
    // Beside lesson 12.
    ("fcntl", &["fcntl", "fcntl64"]),
    // Beside lesson 10: glibc's fork is the clone system call, and std's
    // thread spawn clone3; strace shows no "fork".
    ("fork", &["fork", "clone", "clone3"]),
    ("fstat", &["fstat", "newfstatat", "statx"]),
    ("getpeername", &["getpeername"]),
    ("getrlimit", &["getrlimit", "prlimit64"]),
    ("getsockname", &["getsockname"]),
    ("getsockopt", &["getsockopt"]),
    ("ioctl", &["ioctl"]),
    ("kill", &["kill"]),
    ("listen", &["listen"]),
    ("lseek", &["lseek"]),
    ("lstat", &["lstat", "newfstatat", "statx"]),
    ("open", &["open", "openat"]),
    ("poll", &["poll", "ppoll"]),
    ("read", &["read", "readv"]),
    ("readlink", &["readlink", "readlinkat"]),
    ("recv", &["recv", "recvfrom", "recvmsg"]),
    ("recvfrom", &["recvfrom"]),
    ("recvmsg", &["recvmsg"]),
    ("send", &["send", "sendto", "sendmsg"]),
    ("sendmsg", &["sendmsg"]),
    ("sendto", &["sendto"]),
    // Beside lesson 12: glibc may make select a pselect6 system call.
    ("select", &["select", "pselect6"]),
    ("setrlimit", &["setrlimit", "prlimit64"]),
    ("setsockopt", &["setsockopt"]),
    // Beside lesson 10: setting SIGCHLD's disposition.
    ("sigaction", &["rt_sigaction"]),
    ("shutdown", &["shutdown"]),
    ("sigprocmask", &["rt_sigprocmask"]),
    ("signalfd", &["signalfd", "signalfd4"]),
    ("socket", &["socket"]),
    ("socketpair", &["socketpair"]),
    ("unlink", &["unlink", "unlinkat"]),
    // Beside lesson 10: glibc's waitpid is wait4.
    ("waitpid", &["wait4", "waitid"]),
    ("write", &["write", "writev"]),
];

/// The kernel entry points a narrated call may appear as; empty for a name
/// this module does not know (which then never matches: add it to the table).
pub fn kernel_names(narrated: &str) -> &'static [&'static str] {
    ALIASES
        .iter()
        .find(|(name, _)| *name == narrated)
        .map_or(&[], |(_, kernel)| kernel)
}

/// The value for strace's `-e` option: every entry point the aliases cover,
/// each marked `?` so that a name this architecture lacks is not an error.
pub fn strace_filter() -> String {
    let names: Vec<String> =
        KERNEL.iter().map(|k| format!("?{}", k.name)).collect();
    format!("trace={}", names.join(","))
}

fn kernel(name: &str) -> Option<&'static Kernel> {
    KERNEL.iter().find(|k| k.name == name)
}

/// What a traced call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracedRet {
    /// A non-negative result: a descriptor, a byte count, 0.
    Value(i64),
    /// `-1` and this errno name.
    Errno(String),
    /// strace printed `?` (the task exited, or the call was interrupted).
    Unknown,
}

impl Display for TracedRet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TracedRet::Value(v) => write!(f, "{v}"),
            TracedRet::Errno(name) => write!(f, "-1 {name}"),
            TracedRet::Unknown => write!(f, "?"),
        }
    }
}

/// One system call as strace recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traced {
    /// Line of the trace file where the call finished (its `resumed` line
    /// when another thread's calls came in between), counting from 1.
    pub line: usize,
    /// Line where it began: its `<unfinished ...>` line if it was split,
    /// else the same as `line`.
    pub started: usize,
    /// The task (thread or process) that made it, when strace printed one.
    pub pid: Option<u32>,
    /// The kernel entry point: `accept4`, `recvfrom`.
    pub name: String,
    /// Its first argument, when that names a descriptor.
    pub fd: Option<RawFd>,
    /// Its arguments as strace printed them, split at the top level.
    pub args: Vec<String>,
    /// What it returned.
    pub ret: TracedRet,
}

impl Traced {
    fn returned_fd(&self) -> Option<RawFd> {
        match (&self.ret, kernel(&self.name)) {
            (TracedRet::Value(v), Some(k)) if k.returns_fd => {
                RawFd::try_from(*v).ok()
            }
            _ => None,
        }
    }
}

impl Display for Traced {
    /// The call on one line, without strace's padding, long ones cut.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 90;
        let mut args = self.args.join(", ");
        if args.chars().count() > SHOWN {
            args = args.chars().take(SHOWN).collect::<String>() + "...";
        }
        write!(f, "{}({args}) = {}", self.name, self.ret)
    }
}

/// Parses what `strace -f -o FILE` wrote into the calls it saw, in the order
/// they finished.
///
/// Handles the pid that `-f` puts before each line (`12345 ` with `-o`,
/// `[pid 12345] ` on stderr), and a call that another thread interrupted:
///
/// ```text
/// 13914 accept4(3,  <unfinished ...>
/// 13873 connect(5, {...}, 16) = 0
/// 13914 <... accept4 resumed>{...}, [16], SOCK_CLOEXEC) = 4
/// ```
///
/// which becomes one `accept4` at the `resumed` line: its result, the only
/// thing a lesson can narrate, exists from then on. Signal (`---`) and exit
/// (`+++`) lines are not calls and are skipped, and so is a call whose start
/// was never seen or whose end never came.
pub fn parse_strace(text: &str) -> Vec<Traced> {
    let mut calls = Vec::new();
    // An unfinished call's first half and its line, per task: a task has
    // at most one.
    let mut pending: HashMap<Option<u32>, (String, usize)> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let (pid, rest) = split_pid(line);
        let rest = rest.trim_end();
        if rest.starts_with("+++") || rest.starts_with("---") || rest.is_empty()
        {
            continue;
        }
        let (whole, started) = if let Some(resumed) = rest.strip_prefix("<... ")
        {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            match pending.remove(&pid) {
                Some((head, started))
                    if head.starts_with(&format!("{name}(")) =>
                {
                    (head + tail, started)
                }
                _ => continue,
            }
        } else if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, (head.to_string(), index + 1));
            continue;
        } else {
            (rest.to_string(), index + 1)
        };
        if let Some(mut call) = parse_call(&whole, index + 1, pid) {
            call.started = started;
            calls.push(call);
        }
    }
    calls
}

/// Splits off the task id that `strace -f` puts before a line.
fn split_pid(line: &str) -> (Option<u32>, &str) {
    if let Some(rest) = line.strip_prefix("[pid ")
        && let Some((pid, rest)) = rest.split_once(']')
        && let Ok(pid) = pid.trim().parse()
    {
        return (Some(pid), rest.trim_start());
    }
    let digits = line.len()
        - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits > 0
        && line[digits..].starts_with(' ')
        && let Ok(pid) = line[..digits].parse()
    {
        return (Some(pid), line[digits..].trim_start());
    }
    (None, line)
}

/// Parses one complete call: `name(args) = result [ERRNO (text)]`.
fn parse_call(text: &str, line: usize, pid: Option<u32>) -> Option<Traced> {
    let open = text.find('(')?;
    let name = &text[..open];
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let (args, after) = split_args(&text[open + 1..])?;
    let ret = parse_ret(after.trim_start().strip_prefix('=')?.trim());
    let fd = match kernel(name).map(|k| k.first) {
        Some(FirstArg::Fd | FirstArg::DirFd) => {
            args.first().and_then(|a| parse_fd(a))
        }
        _ => None,
    };
    Some(Traced {
        line,
        started: line,
        pid,
        name: name.to_string(),
        fd,
        args,
        ret,
    })
}

/// Splits the text after a call's `(` into its top-level arguments and what
/// follows the matching `)`. Strings are skipped as a whole, because the
/// bytes a program sends may contain brackets, commas or ` = `.
fn split_args(text: &str) -> Option<(Vec<String>, &str)> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            current.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => {
                let last = current.trim();
                if !last.is_empty() || !args.is_empty() {
                    args.push(last.to_string());
                }
                return Some((args, &text[i + 1..]));
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    None
}

/// `3`, `0x1 (flags FD_CLOEXEC)`, `-1 EAGAIN (Resource temporarily
/// unavailable)`, `?`, `? ERESTARTSYS (...)`.
fn parse_ret(text: &str) -> TracedRet {
    let mut words = text.split_whitespace();
    match words.next() {
        Some("-1") => match words.next() {
            Some(name) if name.starts_with('E') => {
                TracedRet::Errno(name.to_string())
            }
            _ => TracedRet::Unknown,
        },
        Some(word) => {
            let value = match word.strip_prefix("0x") {
                Some(hex) => i64::from_str_radix(hex, 16).ok(),
                None => word.parse().ok(),
            };
            value.map_or(TracedRet::Unknown, TracedRet::Value)
        }
        None => TracedRet::Unknown,
    }
}

/// A descriptor argument: `3`, or `3<socket:[123]>` as `strace -y` shows it.
fn parse_fd(arg: &str) -> Option<RawFd> {
    let digits =
        arg.len() - arg.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = &arg[digits..];
    if digits == 0 || !(rest.is_empty() || rest.starts_with('<')) {
        return None;
    }
    arg[..digits].parse().ok()
}

/// The part of a trace that follows the transcript's header line, the
/// first `write(1, "step  ...")`: what comes before is the dynamic loader
/// and Rust's runtime starting up. Their `openat(...) = 3` and
/// `newfstatat(3, "")` are real calls with the very fds and results a demo
/// narrates next, and would otherwise stand in for them. `None` when the
/// trace holds no header (the demo printed nothing, or stdout was not fd 1).
pub fn narration_window(traced: &[Traced]) -> Option<&[Traced]> {
    let header = traced.iter().position(|t| {
        matches!(t.name.as_str(), "write" | "writev")
            && t.fd == Some(1)
            && t.args.get(1).is_some_and(|buf| {
                buf.starts_with("\"step  ") || buf.contains("\\nstep  ")
            })
    })?;
    Some(&traced[header + 1..])
}

/// What a successful [`compare`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Narrated events, each matched to its own traced call.
    pub checked: usize,
    /// Distinct descriptors those events acted on or created.
    pub fds: usize,
}

/// A narrated event with no traced call to match it, and the evidence.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Index in the narrated events of the first one that did not match.
    pub event: usize,
    report: String,
}

impl Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl std::error::Error for Mismatch {}

/// A history that must appear in the trace in the narrated order: one
/// descriptor's, or that of the calls that name none (`socket`, `open`,
/// `readlink` of a path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lane {
    Fd(RawFd),
    NoFd,
}

impl Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lane::Fd(fd) => write!(f, "on fd {fd}"),
            Lane::NoFd => write!(f, "with no descriptor"),
        }
    }
}

/// The histories an event belongs to: its descriptor's (or the no-fd one),
/// and the history of the descriptor it created, which it begins.
fn lanes(fd: Option<RawFd>, created: Option<RawFd>) -> Vec<Lane> {
    let mut lanes = vec![fd.map_or(Lane::NoFd, Lane::Fd)];
    if let Some(new) = created
        && fd != Some(new)
    {
        lanes.push(Lane::Fd(new));
    }
    lanes
}

fn event_lanes(event: &Event) -> Vec<Lane> {
    let created = match event.ret {
        Ret::Fd(fd) => Some(fd),
        _ => None,
    };
    lanes(event.fd, created)
}

fn traced_lanes(traced: &Traced) -> Vec<Lane> {
    lanes(traced.fd, traced.returned_fd())
}

/// Whether `traced` is the call `event` narrates: a kernel entry point the
/// narrated name may appear as, on the same descriptor, with the same
/// result, and with every argument the narration shows ([`wrong_args`]).
fn same_call(event: &Event, traced: &Traced) -> bool {
    kernel_names(&event.call).contains(&traced.name.as_str())
        && event.fd == traced.fd
        && same_result(&event.ret, &traced.ret)
        && !stat_of_a_path(event, traced)
        && wrong_args(event, traced).is_empty()
}

/// The arguments `event` shows that `traced` does not: each narrated value
/// (a backlog, an address, a flag, an option's value, the bytes sent) must
/// be among what the kernel received, after the renamings strace shows
/// (`SO_RCVTIMEO` is `SO_RCVTIMEO_OLD` with a raw `timeval`, `accept` is
/// `accept4`). What the narration leaves out is not compared.
pub fn wrong_args(event: &Event, traced: &Traced) -> Vec<Atom> {
    let acts_on_fd =
        kernel(&traced.name).is_some_and(|k| k.first == FirstArg::Fd);
    let kernel = args::traced(&traced.name, &traced.args, acts_on_fd);
    args::unmatched(&args::narrated(&event.args), &kernel)
}

/// `newfstatat(3, "name", ...)` and `statx(3, "name", ...)` stat a path
/// relative to a directory; only the empty path (`AT_EMPTY_PATH`) makes them
/// the `fstat(3)` a lesson narrates.
fn stat_of_a_path(event: &Event, traced: &Traced) -> bool {
    event.call == "fstat"
        && matches!(traced.name.as_str(), "newfstatat" | "statx")
        && traced.args.get(1).is_some_and(|path| path != "\"\"")
}

fn same_result(narrated: &Ret, traced: &TracedRet) -> bool {
    match (narrated, traced) {
        (Ret::Fd(fd), TracedRet::Value(v)) => i64::from(*fd) == *v,
        (Ret::Value(n), TracedRet::Value(v)) => n == v,
        (Ret::Errno(name), TracedRet::Errno(traced)) => name == traced,
        _ => false,
    }
}

/// Checks that every narrated event is a call the kernel really saw.
///
/// Each event must match its own traced call ([`same_call`]: name through
/// the aliases, descriptor, result), and on every descriptor the narrated
/// events must appear in the trace in the narrated order, as must the
/// events that name no descriptor; an event that creates a descriptor
/// (`socket() = fd 4`) begins that descriptor's history, so a narrated
/// `close(fd 4)` before it must also be a close of the old fd 4.
///
/// Events are matched in narrated order, each to the earliest traced call
/// that fits after the previous matches in all of its histories. That
/// greedy choice never rejects a narration that some other assignment would
/// accept: the earliest fit leaves every history as much room as any fit.
///
/// Traced calls nobody narrated (stdout writes, the C library's own calls)
/// are fine; a narrated call nobody traced is a [`Mismatch`].
///
/// One exception to the order: a call that one thread was blocked in when
/// another thread's call on the same descriptor woke it (a `recv` that
/// returns 0 because another thread called `shutdown(SHUT_RD)`). strace
/// logs the return of the woken call before or after the call that woke
/// it, as its threads happen to be scheduled, so the trace cannot say which
/// came first. A narrated call may therefore match a traced call that
/// finished before calls already matched on its descriptor, if it was
/// made by another task and had begun before each of them finished
/// ([`overtaken_while_blocked`]).
///
/// The trace's tasks are not told apart: a lesson's threads share one
/// descriptor table, which is what its narration speaks of. A child
/// process has a table of its own, so a child's call could stand in for
/// its parent's on the same number. Lesson 10's forking server (the one
/// lesson that forks) keeps them apart in time: its child begins only once
/// the parent has narrated its side of the `fork`, and each descriptor's
/// calls, parent's and child's, are narrated in the order they happen.
pub fn compare(
    narrated: &[Event],
    traced: &[Traced],
) -> Result<Summary, Mismatch> {
    // Per history, the trace index after the last matched call, and the
    // trace indexes matched so far.
    let mut next: HashMap<Lane, usize> = HashMap::new();
    let mut history: HashMap<Lane, Vec<usize>> = HashMap::new();
    let mut matched: Vec<usize> = Vec::with_capacity(narrated.len());
    for (index, event) in narrated.iter().enumerate() {
        let lanes = event_lanes(event);
        let from = lanes
            .iter()
            .map(|lane| next.get(lane).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        let in_order =
            (from..traced.len()).find(|&i| same_call(event, &traced[i]));
        let found = in_order.or_else(|| {
            (0..from).find(|&i| {
                same_call(event, &traced[i])
                    && !matched.contains(&i)
                    && lanes.iter().all(|lane| {
                        let earlier =
                            history.get(lane).map_or(&[][..], Vec::as_slice);
                        overtaken_while_blocked(traced, i, earlier)
                    })
            })
        });
        let Some(found) = found else {
            return Err(mismatch(narrated, traced, &matched, index, from));
        };
        for lane in lanes {
            let next = next.entry(lane).or_insert(0);
            *next = (*next).max(found + 1);
            history.entry(lane).or_default().push(found);
        }
        matched.push(found);
    }
    Ok(Summary {
        checked: matched.len(),
        fds: next.keys().filter(|lane| **lane != Lane::NoFd).count(),
    })
}

/// Whether traced call `i`, which finished before some of the calls
/// `earlier` (already matched on its descriptor, narrated before it), may
/// still be narrated after them: each of those is another task's, and call
/// `i` had begun, and was blocked, before it finished.
fn overtaken_while_blocked(
    traced: &[Traced],
    i: usize,
    earlier: &[usize],
) -> bool {
    let call = &traced[i];
    earlier.iter().filter(|&&m| m > i).all(|&m| {
        let other = &traced[m];
        call.started < call.line
            && call.pid != other.pid
            && call.started < other.line
    })
}

/// The event as the check reads it: `listen(fd 3, 5) = 0`.
fn show_event(event: &Event) -> String {
    let mut args: Vec<String> =
        event.fd.map(|fd| format!("fd {fd}")).into_iter().collect();
    if !event.args.is_empty() {
        args.push(event.args.clone());
    }
    format!("{}({}) = {}", event.call, args.join(", "), event.ret)
}

/// Builds the report for narrated event `failed`, the first without a match:
/// why, then for each of its histories the narrated events with ✓/✗ beside
/// the traced calls, so the reader sees where the two part.
fn mismatch(
    narrated: &[Event],
    traced: &[Traced],
    matched: &[usize],
    failed: usize,
    from: usize,
) -> Mismatch {
    let event = &narrated[failed];
    let names = kernel_names(&event.call);
    let mut r = String::new();
    let _ = writeln!(
        r,
        "narrated call {} has no matching system call in the trace:",
        failed + 1
    );
    let _ = writeln!(r, "  ✗ {}", show_event(event));
    if names.is_empty() {
        let _ = writeln!(
            r,
            "    `{}` is not in check.rs's alias table: add the kernel calls it may appear as",
            event.call
        );
    } else {
        let after = match from.checked_sub(1).and_then(|i| traced.get(i)) {
            Some(prev) => format!(", after trace line {}", prev.line),
            None => String::new(),
        };
        let on = event.fd.map_or("with no descriptor".to_string(), |fd| {
            format!("on fd {fd}")
        });
        let _ = writeln!(
            r,
            "    wanted: {} {on} returning {}{after}",
            one_of(names),
            event.ret
        );
    }
    for hint in near_misses(event, traced, from) {
        let _ = writeln!(r, "    {hint}");
    }

    // Where each trace line went: which narrated event it stands for.
    let by_trace: HashMap<usize, usize> =
        matched.iter().enumerate().map(|(e, &t)| (t, e)).collect();
    for lane in event_lanes(event) {
        let _ = writeln!(r, "narrated {lane}:");
        for (i, e) in narrated.iter().enumerate() {
            if !event_lanes(e).contains(&lane) {
                continue;
            }
            let (mark, note) = match matched.get(i) {
                Some(&t) => ("✓", format!("trace line {}", traced[t].line)),
                None if i == failed => ("✗", "no match".to_string()),
                None => ("·", "not checked yet".to_string()),
            };
            let _ = writeln!(
                r,
                "  {mark} {:>3}  {:<40} {note}",
                i + 1,
                show_event(e)
            );
        }
        let _ = writeln!(r, "traced {lane}:");
        let on_lane: Vec<(usize, &Traced)> = traced
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                kernel(&t.name).is_some() && traced_lanes(t).contains(&lane)
            })
            .collect();
        const SHOWN: usize = 60;
        for &(i, t) in on_lane.iter().take(SHOWN) {
            let mark = match by_trace.get(&i) {
                Some(e) => format!("✓ {:>3}", e + 1),
                None => "     ".to_string(),
            };
            let _ = writeln!(r, "  {mark}  line {:>4}  {t}", t.line);
        }
        if on_lane.len() > SHOWN {
            let _ = writeln!(r, "  ... and {} more", on_lane.len() - SHOWN);
        }
    }
    Mismatch { event: failed, report: r }
}

/// `recv`, `recv or recvfrom`, `recv, recvfrom or recvmsg`.
fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Traced calls that almost match the event, each with what differs: the
/// usual mistakes are the wrong descriptor, the wrong result, or the right
/// call narrated out of order.
fn near_misses(event: &Event, traced: &[Traced], from: usize) -> Vec<String> {
    const SHOWN: usize = 3;
    let names = kernel_names(&event.call);
    let mut hints = Vec::new();
    for (i, t) in traced.iter().enumerate() {
        if hints.len() == SHOWN {
            break;
        }
        if !names.contains(&t.name.as_str()) {
            continue;
        }
        let fd_ok = t.fd == event.fd;
        let ret_ok = same_result(&event.ret, &t.ret);
        let wrong = wrong_args(event, t);
        let why = if fd_ok && ret_ok && !wrong.is_empty() && i >= from {
            let shown: Vec<String> =
                wrong.iter().map(|a| a.to_string()).collect();
            let acts_on_fd =
                kernel(&t.name).is_some_and(|k| k.first == FirstArg::Fd);
            let got: Vec<String> = args::traced(&t.name, &t.args, acts_on_fd)
                .iter()
                .map(|a| a.to_string())
                .collect();
            format!(
                "same call, fd and result, but the kernel got no {}: the narration \
                 shows an argument the call did not have (the kernel got {})",
                shown.join(", "),
                got.join(", ")
            )
        } else if fd_ok && ret_ok && i < from {
            "the same call, but it comes before a call already matched to an earlier \
             narrated one on the same fd: out of order"
                .to_string()
        } else if fd_ok && ret_ok {
            // Only the path check can have refused it.
            "a stat of a path, not of the descriptor".to_string()
        } else if fd_ok && i >= from {
            format!("same call, but it returned {}", t.ret)
        } else if ret_ok && i >= from {
            match t.fd {
                Some(fd) => format!("same call and result, but on fd {fd}"),
                None => {
                    "same call and result, but with no descriptor".to_string()
                }
            }
        } else {
            continue;
        };
        hints.push(format!("near miss: trace line {}: {t}: {why}", t.line));
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lesson 2's demo as `strace -f -qq -o` wrote it on x86-64 with glibc
    /// 2.36, the transcript's header line included.
    const LESSON_2: &str = r#"13369 write(1, "step  server                     "..., 104) = 104
13369 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3
13369 bind(3, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
13369 getsockname(3, {sa_family=AF_INET, sin_port=htons(50913), sin_addr=inet_addr("127.0.0.1")}, [128 => 16]) = 0
13369 listen(3, 5)                      = 0
13369 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 4
13369 connect(4, {sa_family=AF_INET, sin_port=htons(50913), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
13369 accept4(3, {sa_family=AF_INET, sin_port=htons(43182), sin_addr=inet_addr("127.0.0.1")}, [128 => 16], SOCK_CLOEXEC) = 5
13369 setsockopt(5, SOL_SOCKET, SO_RCVTIMEO_OLD, "\n\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) = 0
13369 sendto(4, "hello, server\n", 14, 0, NULL, 0) = 14
13369 recvfrom(5, "hello, server\n", 4096, 0, NULL, NULL) = 14
13369 sendto(5, "hello, server\n", 14, 0, NULL, 0) = 14
13369 recvfrom(4, "hello, server\n", 4096, 0, NULL, NULL) = 14
13369 close(4)                          = 0
13369 recvfrom(5, "", 4096, 0, NULL, NULL) = 0
13369 close(5)                          = 0
13369 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 4
13369 connect(4, {sa_family=AF_INET, sin_port=htons(50913), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
13369 accept4(3, {sa_family=AF_INET, sin_port=htons(43186), sin_addr=inet_addr("127.0.0.1")}, [128 => 16], SOCK_CLOEXEC) = 5
13369 setsockopt(5, SOL_SOCKET, SO_RCVTIMEO_OLD, "\0\0\0\0\0\0\0\0\240\206\1\0\0\0\0\0", 16) = 0
13369 recvfrom(5, 0x7fff74f5f150, 4096, 0, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)
13369 close(5)                          = 0
13369 recvfrom(4, "", 4096, 0, NULL, NULL) = 0
13369 close(4)                          = 0
13369 close(3)                          = 0
13369 openat(AT_FDCWD, "/tmp/ksamp/ev2", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3
13369 write(3, "socket\t-\tfd:3\nbind\t3\t0\ngetsockna"..., 282) = 282
13369 close(3)                          = 0
13369 exit_group(0)                     = ?
"#;

    /// The events lesson 2's demo wrote for that run.
    const LESSON_2_EVENTS: &str = "socket\t-\tfd:3\nbind\t3\t0\ngetsockname\t3\t0\n\
        listen\t3\t0\nsocket\t-\tfd:4\nconnect\t4\t0\naccept\t3\tfd:5\n\
        setsockopt\t5\t0\nsend\t4\t14\nrecv\t5\t14\nsend\t5\t14\nrecv\t4\t14\n\
        close\t4\t0\nrecv\t5\t0\nclose\t5\t0\nsocket\t-\tfd:4\nconnect\t4\t0\n\
        accept\t3\tfd:5\nsetsockopt\t5\t0\nrecv\t5\tEAGAIN\nclose\t5\t0\n\
        recv\t4\t0\nclose\t4\t0\nclose\t3\t0\n";

    /// Python playing server (a thread) and client at once: strace splits
    /// the calls that another thread's calls interrupted.
    const THREADS: &str = r#"13873 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3
13873 bind(3, {sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
13873 listen(3, 5)                      = 0
13914 accept4(3,  <unfinished ...>
13873 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 5
13873 connect(5, {sa_family=AF_INET, sin_port=htons(56975), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
13914 <... accept4 resumed>{sa_family=AF_INET, sin_port=htons(48258), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 4
13873 sendto(5, "hi there", 8, 0, NULL, 0) = 8
13914 recvfrom(4, "hi there", 4096, 0, NULL, NULL) = 8
13873 recvfrom(5,  <unfinished ...>
13914 sendto(4, "hi there", 8, 0, NULL, 0 <unfinished ...>
13873 <... recvfrom resumed>"hi there", 4096, 0, NULL, NULL) = 8
13914 <... sendto resumed>)             = 8
13914 close(4)                          = 0
13873 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=13874, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---
13873 close(5)                          = 0
13873 +++ exited with 0 +++
"#;

    fn events(text: &str) -> Vec<Event> {
        text.lines()
            .map(|line| Event::from_line(line.trim()).expect("event line"))
            .collect()
    }

    fn ev(call: &str, fd: Option<RawFd>, ret: Ret) -> Event {
        Event { call: call.to_string(), fd, ret, args: String::new() }
    }

    fn lesson_2() -> Vec<Traced> {
        parse_strace(LESSON_2)
    }

    /// Lesson 2's events with event `index` replaced.
    fn lesson_2_events_with(index: usize, event: Event) -> Vec<Event> {
        let mut narrated = events(LESSON_2_EVENTS);
        narrated[index] = event;
        narrated
    }

    #[test]
    fn parses_fds_results_and_errnos_of_real_lines() {
        let calls = lesson_2();
        assert_eq!(calls.len(), 29);
        let socket = &calls[1];
        assert_eq!(
            (socket.line, socket.pid, socket.name.as_str(), socket.fd),
            (2, Some(13369), "socket", None)
        );
        assert_eq!(socket.ret, TracedRet::Value(3));
        let accept = &calls[7];
        assert_eq!((accept.name.as_str(), accept.fd), ("accept4", Some(3)));
        assert_eq!(accept.ret, TracedRet::Value(5));
        assert_eq!(accept.returned_fd(), Some(5));
        assert_eq!(accept.args.len(), 4);
        let timeout = &calls[20];
        assert_eq!((timeout.name.as_str(), timeout.fd), ("recvfrom", Some(5)));
        assert_eq!(timeout.ret, TracedRet::Errno("EAGAIN".into()));
        let open = &calls[25];
        assert_eq!((open.name.as_str(), open.fd), ("openat", None));
        assert_eq!(calls[28].ret, TracedRet::Unknown);
    }

    /// Lesson 2's events with the arguments its demo narrates, as its
    /// events file holds them.
    fn lesson_2_with_args() -> Vec<Event> {
        let args = [
            "AF_INET, SOCK_STREAM|SOCK_CLOEXEC",
            "127.0.0.1:0",
            "",
            "5",
            "AF_INET, SOCK_STREAM|SOCK_CLOEXEC",
            "127.0.0.1:50913",
            "",
            "SO_RCVTIMEO, 10 s",
            "\"hello, server\\n\"",
            "4096",
            "\"hello, server\\n\"",
            "4096",
            "",
            "4096",
            "",
            "AF_INET, SOCK_STREAM|SOCK_CLOEXEC",
            "127.0.0.1:50913",
            "",
            "SO_RCVTIMEO, 100 ms",
            "4096",
            "",
            "4096",
            "",
            "",
        ];
        let mut narrated = events(LESSON_2_EVENTS);
        assert_eq!(narrated.len(), args.len());
        for (event, args) in narrated.iter_mut().zip(args) {
            event.args = args.to_string();
        }
        narrated
    }

    #[test]
    fn narrated_arguments_match_the_kernels_in_a_real_run() {
        let summary =
            compare(&lesson_2_with_args(), &lesson_2()).expect("match");
        assert_eq!(summary.checked, 24);
    }

    #[test]
    fn a_narrated_backlog_the_kernel_did_not_get_is_a_mismatch() {
        // listen(3, 5) in the trace; the narration says 6.
        let mut narrated = lesson_2_with_args();
        narrated[3].args = "6".to_string();
        let report = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(report.event, 3);
        assert!(report.to_string().contains("the kernel got no 6"), "{report}");
    }

    #[test]
    fn a_narrated_option_value_the_kernel_did_not_get_is_a_mismatch() {
        // The second SO_RCVTIMEO was 100 ms; the narration says 10 s.
        let mut narrated = lesson_2_with_args();
        narrated[18].args = "SO_RCVTIMEO, 10 s".to_string();
        let report = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(report.event, 18);
        assert!(report.to_string().contains("no 10000 ms"), "{report}");
    }

    #[test]
    fn strings_with_brackets_commas_and_equals_do_not_confuse_the_parser() {
        let calls = parse_strace(
            "sendto(4, \"a) = 9, [\\\"x\", 9, 0, NULL, 0) = 9\n\
             write(1, \"   1  close(fd 4) = 0\\n\", 22) = 22\n",
        );
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].fd, &calls[0].ret),
            (Some(4), &TracedRet::Value(9))
        );
        assert_eq!(calls[0].args.len(), 6);
        assert_eq!(calls[0].args[1], "\"a) = 9, [\\\"x\"");
        assert_eq!(
            (calls[1].fd, &calls[1].ret),
            (Some(1), &TracedRet::Value(22))
        );
    }

    #[test]
    fn parses_lesson_1s_file_calls() {
        let calls = parse_strace(
            r#"13365 openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3
13365 newfstatat(4, "", {st_mode=S_IFSOCK|0777, st_size=0, ...}, AT_EMPTY_PATH) = 0
13365 readlink("/proc/self/fd/4", 0x55d96b46e360, 256) = -1 ENOENT (No such file or directory)
13365 lseek(4, 0, SEEK_SET)             = -1 ESPIPE (Illegal seek)
13369 fcntl(5, F_GETFD)                 = 0x1 (flags FD_CLOEXEC)
"#,
        );
        let got: Vec<_> = calls
            .iter()
            .map(|c| (c.name.as_str(), c.fd, c.ret.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("openat", None, "3".to_string()),
                ("newfstatat", Some(4), "0".to_string()),
                ("readlink", None, "-1 ENOENT".to_string()),
                ("lseek", Some(4), "-1 ESPIPE".to_string()),
                // Not in the table: its descriptor is not looked for.
                ("fcntl", Some(5), "1".to_string()),
            ]
        );
    }

    #[test]
    fn joins_calls_that_other_threads_interrupted() {
        let calls = parse_strace(THREADS);
        let got: Vec<_> = calls
            .iter()
            .map(|c| (c.line, c.pid, c.name.as_str(), c.fd, c.ret.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (1, Some(13873), "socket", None, "3".to_string()),
                (2, Some(13873), "bind", Some(3), "0".to_string()),
                (3, Some(13873), "listen", Some(3), "0".to_string()),
                (5, Some(13873), "socket", None, "5".to_string()),
                (6, Some(13873), "connect", Some(5), "0".to_string()),
                (7, Some(13914), "accept4", Some(3), "4".to_string()),
                (8, Some(13873), "sendto", Some(5), "8".to_string()),
                (9, Some(13914), "recvfrom", Some(4), "8".to_string()),
                (12, Some(13873), "recvfrom", Some(5), "8".to_string()),
                (13, Some(13914), "sendto", Some(4), "8".to_string()),
                (14, Some(13914), "close", Some(4), "0".to_string()),
                (16, Some(13873), "close", Some(5), "0".to_string()),
            ]
        );
        assert_eq!(
            calls[5].args.len(),
            4,
            "both halves of accept4's arguments"
        );
    }

    #[test]
    fn reads_pids_as_strace_prints_them_on_stderr_and_fds_as_with_y() {
        let calls = parse_strace(
            "[pid  4242] close(3<TCP:[127.0.0.1:1->127.0.0.1:2]>) = 0\n",
        );
        assert_eq!((calls[0].pid, calls[0].fd), (Some(4242), Some(3)));
    }

    #[test]
    fn a_call_whose_end_never_came_is_not_a_call() {
        let calls = parse_strace(
            "7 accept4(3,  <unfinished ...>\n7 +++ killed by SIGKILL +++\n",
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn the_window_starts_after_the_transcript_header() {
        let calls = parse_strace(
            "1 openat(AT_FDCWD, \"/etc/ld.so.cache\", O_RDONLY|O_CLOEXEC) = 3\n\
             1 write(1, \"step  this process\\n\", 19) = 19\n\
             1 openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY) = 3\n",
        );
        let window = narration_window(&calls).expect("a header");
        assert_eq!(window.len(), 1);
        assert_eq!(window[0].args[1], "\"/etc/passwd\"");
        assert!(narration_window(&calls[..1]).is_none());
    }

    #[test]
    fn lesson_2s_narration_matches_its_trace() {
        let summary =
            compare(&events(LESSON_2_EVENTS), &lesson_2()).expect("a match");
        assert_eq!(summary, Summary { checked: 24, fds: 3 });
    }

    #[test]
    fn threads_may_narrate_in_their_own_order_but_each_fd_keeps_its_own() {
        // The printed order differs from the trace's (the client's recv
        // before the server's send), but each fd's history is the kernel's.
        let narrated = vec![
            ev("socket", None, Ret::Fd(3)),
            ev("bind", Some(3), Ret::Value(0)),
            ev("listen", Some(3), Ret::Value(0)),
            ev("socket", None, Ret::Fd(5)),
            ev("connect", Some(5), Ret::Value(0)),
            ev("send", Some(5), Ret::Value(8)),
            ev("recv", Some(5), Ret::Value(8)),
            ev("accept", Some(3), Ret::Fd(4)),
            ev("recv", Some(4), Ret::Value(8)),
            ev("send", Some(4), Ret::Value(8)),
            ev("close", Some(5), Ret::Value(0)),
            ev("close", Some(4), Ret::Value(0)),
        ];
        let summary =
            compare(&narrated, &parse_strace(THREADS)).expect("a match");
        assert_eq!(summary.checked, 12);
    }

    /// Lesson 11's shutdown: a worker blocked in recv on fd 9 is woken by
    /// another thread's shutdown(fd 9, SHUT_RD); strace logged the woken
    /// call's return first.
    const WOKEN: &str = "\
21 accept4(3, {sa_family=AF_INET}, [16], SOCK_CLOEXEC) = 9
22 recvfrom(9,  <unfinished ...>
21 accept4(3, {sa_family=AF_INET}, [16], SOCK_CLOEXEC) = 10
22 <... recvfrom resumed>\"\", 4096, 0, NULL, NULL) = 0
21 shutdown(9, SHUT_RD) = 0
22 close(9) = 0
21 recvfrom(10, \"\", 4096, 0, NULL, NULL) = 0
21 shutdown(10, SHUT_RD) = 0
";

    #[test]
    fn a_call_woken_by_another_threads_call_may_be_narrated_after_it() {
        let narrated = vec![
            ev("accept", Some(3), Ret::Fd(9)),
            ev("accept", Some(3), Ret::Fd(10)),
            ev("shutdown", Some(9), Ret::Value(0)),
            ev("recv", Some(9), Ret::Value(0)),
            ev("close", Some(9), Ret::Value(0)),
        ];
        let summary =
            compare(&narrated, &parse_strace(WOKEN)).expect("a match");
        assert_eq!(summary.checked, 5);
    }

    #[test]
    fn a_call_that_was_not_blocked_keeps_its_order() {
        // The recv on fd 10 finished, in one line, before the shutdown
        // began: narrating it after the shutdown is wrong.
        let narrated = vec![
            ev("accept", Some(3), Ret::Fd(10)),
            ev("shutdown", Some(10), Ret::Value(0)),
            ev("recv", Some(10), Ret::Value(0)),
        ];
        let err = compare(&narrated, &parse_strace(WOKEN)).unwrap_err();
        assert_eq!(err.event, 2);
    }

    #[test]
    fn fails_on_the_wrong_fd() {
        // recv(fd 5) = 14 narrated as recv on the listener, fd 3.
        let narrated =
            lesson_2_events_with(9, ev("recv", Some(3), Ret::Value(14)));
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(err.event, 9);
        let report = err.to_string();
        assert!(report.contains("✗ recv(fd 3) = 14"), "{report}");
        assert!(
            report.contains(
                "wanted: recv, recvfrom or recvmsg on fd 3 returning 14"
            ),
            "{report}"
        );
        assert!(
            report.contains("same call and result, but on fd 5"),
            "{report}"
        );
        assert!(report.contains("narrated on fd 3:"), "{report}");
        assert!(report.contains("traced on fd 3:"), "{report}");
    }

    #[test]
    fn fails_on_the_wrong_result() {
        let narrated =
            lesson_2_events_with(9, ev("recv", Some(5), Ret::Value(13)));
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(err.event, 9);
        assert!(
            err.to_string().contains("same call, but it returned 14"),
            "{err}"
        );
    }

    #[test]
    fn fails_on_a_descriptor_narrated_as_a_plain_value_of_another_number() {
        let narrated =
            lesson_2_events_with(6, ev("accept", Some(3), Ret::Fd(6)));
        assert_eq!(compare(&narrated, &lesson_2()).unwrap_err().event, 6);
    }

    #[test]
    fn fails_on_the_wrong_errno() {
        let narrated = lesson_2_events_with(
            19,
            ev("recv", Some(5), Ret::Errno("ETIMEDOUT".into())),
        );
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(err.event, 19);
        assert!(err.to_string().contains("it returned -1 EAGAIN"), "{err}");
    }

    #[test]
    fn fails_on_a_success_narrated_for_a_call_that_failed() {
        let narrated =
            lesson_2_events_with(19, ev("recv", Some(5), Ret::Value(0)));
        // The only recv(fd 5) = 0 is earlier, in the first conversation.
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(err.event, 19);
        assert!(err.to_string().contains("out of order"), "{err}");
    }

    #[test]
    fn fails_on_the_wrong_order_on_one_fd() {
        // The server's send and recv on fd 5 swapped.
        let mut narrated = events(LESSON_2_EVENTS);
        narrated.swap(9, 10);
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(err.event, 10);
        let report = err.to_string();
        assert!(report.contains("out of order"), "{report}");
        assert!(report.contains("✓  10  send(fd 5) = 14"), "{report}");
        assert!(report.contains("✗  11  recv(fd 5) = 14"), "{report}");
    }

    #[test]
    fn fails_on_a_close_narrated_after_the_fd_was_reused() {
        // close(fd 4) moved after the second socket() = fd 4: on fd 4's
        // history the first close comes before that socket, so the moved
        // close can only be the final one, and the connect narrated after
        // it has nothing left to match.
        let mut narrated = events(LESSON_2_EVENTS);
        let close = narrated.remove(12);
        narrated.insert(15, close);
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(narrated[err.event], ev("connect", Some(4), Ret::Value(0)));
    }

    #[test]
    fn fails_on_a_call_that_never_happened() {
        let mut narrated = events(LESSON_2_EVENTS);
        narrated.insert(8, ev("shutdown", Some(4), Ret::Value(0)));
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert_eq!(err.event, 8);
        assert!(
            err.to_string().contains("wanted: shutdown on fd 4 returning 0"),
            "{err}"
        );
    }

    #[test]
    fn fails_on_a_name_with_no_aliases_rather_than_matching_anything() {
        let narrated = lesson_2_events_with(0, ev("sokcet", None, Ret::Fd(3)));
        let err = compare(&narrated, &lesson_2()).unwrap_err();
        assert!(
            err.to_string().contains("not in check.rs's alias table"),
            "{err}"
        );
    }

    #[test]
    fn fstat_is_not_a_stat_of_a_path_relative_to_the_fd() {
        let traced = parse_strace(
            "newfstatat(3, \"x\", {st_mode=S_IFREG|0644, ...}, 0) = 0\n",
        );
        assert!(
            compare(&[ev("fstat", Some(3), Ret::Value(0))], &traced).is_err()
        );
        let traced = parse_strace(
            "statx(3, \"\", AT_STATX_SYNC_AS_STAT|AT_EMPTY_PATH, STATX_ALL, {...}) = 0\n",
        );
        assert!(
            compare(&[ev("fstat", Some(3), Ret::Value(0))], &traced).is_ok()
        );
    }

    #[test]
    fn every_alias_is_a_traced_kernel_call() {
        for (narrated, kernels) in ALIASES {
            for name in *kernels {
                assert!(
                    kernel(name).is_some(),
                    "{narrated} -> {name} is not traced"
                );
            }
        }
        assert!(strace_filter().starts_with("trace=?accept,?accept4,"));
    }
}
