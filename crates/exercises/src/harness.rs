//! What every check needs: run the reader's program as a process of its
//! own (`Program`), or, for a function that cannot be one, the reader's
//! code in a thread (`start`), and wait for it a bounded time; clients and
//! servers in another process, Python's (`Peers`); show bytes. No
//! exercise's socket code lives here.

use std::any::Any;
use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// The reader's code, running in its own thread.
pub struct Running<T> {
    what: String,
    done: Receiver<thread::Result<T>>,
}

/// Starts `f`, the reader's code, in a thread. A check then `wait`s for
/// it: a call that never returns fails the check instead of hanging it.
pub fn start<T, F>(what: impl Into<String>, f: F) -> Running<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, done) = mpsc::channel();
    thread::spawn(move || {
        // A panic is the reader's bug: report it, not crash the checker.
        let _ =
            tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    Running { what: what.into(), done }
}

impl<T> Running<T> {
    fn panicked(&self, panic: &(dyn Any + Send)) -> String {
        format!("{} panicked: {}", self.what, panic_text(panic))
    }

    /// What the reader's code returned, or why the check fails: it is still
    /// running after `limit` (the thread is left behind), or it panicked.
    pub fn wait(self, limit: Duration) -> Result<T, String> {
        match self.done.recv_timeout(limit) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(self.panicked(&*panic)),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{} had not returned after {} ms",
                self.what,
                limit.as_millis()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("{} ended without a result", self.what))
            }
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Bytes as a reader would write them in Rust: `"HELLO\n"`, `""`; long
/// ones cut, with their length.
pub fn shown(bytes: &[u8]) -> String {
    const MOST: usize = 40;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MOST)]);
    if bytes.len() > MOST {
        format!("{text:?}... ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    }
}

/// How long a check waits for the reader's code to do what it should: far
/// more than loopback needs, short enough that a failing check ends soon.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// What exercise 18's `count` finds in a conversation: a struct of its
/// own here, so that the reader's file and the solution return the same
/// type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Every TCP segment, each counted once.
    pub segments: usize,
    /// Those with the SYN flag.
    pub syns: usize,
    /// Those with the FIN flag.
    pub fins: usize,
    /// The bytes of data they carried, both ways.
    pub bytes: usize,
}

/// Which version of an exercise a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The reader's file, `src/yours/`.
    Yours,
    /// The solution, `src/solutions/`.
    Solution,
}

/// The program the checks start with `run ID`: this program by default;
/// the tests, whose own executable is a test harness, name the exercises
/// binary with `use_program`.
static PROGRAM: std::sync::OnceLock<std::path::PathBuf> =
    std::sync::OnceLock::new();

/// Names the exercises binary, for checks started from another program.
pub fn use_program(path: impl Into<std::path::PathBuf>) {
    let _ = PROGRAM.set(path.into());
}

/// How long a program or a Python peer may take to start: starting is
/// not the reader's part, and a loaded machine may be slow at it.
pub const LAUNCH: Duration = Duration::from_secs(5);

/// How long a check gives a program that seems to have gone to end: it
/// closes its sockets a moment before its exit status is there.
const ENDING: Duration = Duration::from_millis(200);

/// The line a server the checks start prints once it listens.
const LISTENING: &str = "Listening on ";

/// The child's side of `Program`: says where it listens, on stdout, before
/// it calls the reader's code.
pub fn announce(addr: impl std::fmt::Display) -> io::Result<()> {
    use std::io::Write;
    let mut out = io::stdout().lock();
    writeln!(out, "{LISTENING}{addr}")?;
    out.flush()
}

/// The reader's program, running as a process of its own: the exercises
/// binary with `run ID`, which calls the reader's function. Killed when
/// dropped, and when the check's process dies.
pub struct Program {
    child: std::process::Child,
    /// Its stdout, a line at a time.
    out: Receiver<String>,
    /// Its stderr, all of it so far.
    err: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// The thread that copies it, which ends at the end of the pipe.
    err_copier: Option<thread::JoinHandle<()>>,
    /// What the messages call it: "your server".
    pub name: String,
}

impl Program {
    /// Starts `run ID ARGS` for `which` version.
    pub fn start(
        id: &str,
        which: Which,
        args: &[String],
        name: &str,
    ) -> Result<Program, String> {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        let exe = match PROGRAM.get() {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|err| format!("the check: its program: {err}"))?,
        };
        let mut command = Command::new(exe);
        command.args(["run", id]);
        if which == Which::Solution {
            command.arg("--solutions");
        }
        command.args(args);
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        command.stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe; a check killed for taking
        // too long must not leave the reader's server running.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|err| {
            format!("the check could not start {name}: {err}")
        })?;
        let out = lines_of(child.stdout.take());
        let err = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let err_copier = child.stderr.take().map(|mut stderr| {
            let err = std::sync::Arc::clone(&err);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut buf) {
                    if let Ok(mut all) = err.lock() {
                        all.extend_from_slice(&buf[..n]);
                    }
                }
            })
        });
        Ok(Program { child, out, err, err_copier, name: name.to_string() })
    }

    /// The process's id, to look at its `/proc` entries or signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the `Listening on ADDR` line and returns ADDR; fails with
    /// how the program ended if it ended first.
    pub fn listening(&mut self) -> Result<String, String> {
        self.line_starting(LISTENING)
    }

    /// Waits for a line starting with `prefix`, which a program the checks
    /// start prints before it calls the reader's code, and returns the
    /// rest; fails with how the program ended if it ended first.
    pub fn line_starting(&mut self, prefix: &str) -> Result<String, String> {
        let began = std::time::Instant::now();
        while began.elapsed() < LAUNCH {
            match self.out.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Its stdout is closed: it is ending, if not yet ended.
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait(PATIENCE)?;
                    return Err(self.ended_how(status));
                }
            }
        }
        self.alive()?;
        Err(format!(
            "{} did not print {prefix:?} in {} s",
            self.name,
            LAUNCH.as_secs()
        ))
    }

    /// Fails, saying how, if the program has ended.
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.ended_how(status)),
            Err(err) => Err(format!("the check: waiting for a child: {err}")),
        }
    }

    /// Waits at most `limit` for the program to end: its exit status, or
    /// why the check fails.
    pub fn wait(
        &mut self,
        limit: Duration,
    ) -> Result<std::process::ExitStatus, String> {
        let began = std::time::Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if began.elapsed() > limit => {
                    return Err(format!(
                        "{} had not ended after {} ms",
                        self.name,
                        limit.as_millis()
                    ));
                }
                // std has no wait with a timeout: look every few ms.
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(err) => return Err(format!("the check: {err}")),
            }
        }
    }

    /// Waits at most `limit` for the program to end, and returns what it
    /// wrote to stdout; fails, saying how, unless it exited with status 0.
    pub fn output(&mut self, limit: Duration) -> Result<String, String> {
        let status = self.wait(limit)?;
        if !status.success() {
            return Err(self.ended_how(status));
        }
        let mut text = String::new();
        // Its stdout's reader thread ends at the end of the pipe.
        while let Ok(line) = self.out.recv_timeout(LAUNCH) {
            text.push_str(&line);
            text.push('\n');
        }
        Ok(text)
    }

    /// The last line it wrote to stderr, for a message: its error, or
    /// its panic.
    pub fn said(&mut self) -> String {
        // Once it has ended, all it wrote is in the pipe: the copier ends
        // after the last byte.
        if matches!(self.child.try_wait(), Ok(Some(_)))
            && let Some(copier) = self.err_copier.take()
        {
            let _ = copier.join();
        }
        let all = self.err.lock().map(|all| all.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&all);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        match lines.iter().position(|l| l.contains("panicked at")) {
            Some(at) => lines[at..]
                .iter()
                .take(2)
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            None => lines.last().copied().unwrap_or("").to_string(),
        }
    }

    fn ended_how(&mut self, status: std::process::ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        let said = self.said();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(", saying {said:?}")
        };
        match (status.code(), status.signal()) {
            (Some(101), _) => format!("{} panicked{said}", self.name),
            (Some(code), _) => {
                format!("{} exited with status {code}{said}", self.name)
            }
            (_, Some(signal)) => {
                format!("{} was killed by signal {signal}{said}", self.name)
            }
            _ => format!("{} ended{said}", self.name),
        }
    }

    /// What went wrong: if the program has ended, that (its panic, its
    /// error), rather than what its clients saw of it.
    pub fn blame<T>(&mut self, result: Result<T, String>) -> Result<T, String> {
        let Err(why) = result else { return result };
        // A process that is ending closes its sockets first, and only then
        // becomes a zombie: its clients may see the close a moment before
        // it can be waited for.
        match self.wait(ENDING) {
            Ok(status) => Err(self.ended_how(status)),
            Err(_) => Err(why),
        }
    }

    /// A server must run for ever: fails if it ended.
    pub fn still_serving(&mut self) -> Result<(), String> {
        self.alive()
            .map_err(|how| format!("{how}: a server must serve for ever"))
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines `from` writes, as they come, from a thread of their own.
fn lines_of(from: Option<impl Read + Send + 'static>) -> Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = mpsc::channel();
    if let Some(from) = from {
        thread::spawn(move || {
            for line in io::BufReader::new(from).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// How a peer's read ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It got as many bytes as it asked for (or, in UDP, a datagram).
    Full,
    /// The other side closed: the end of the stream.
    Eof,
    /// Nothing more came for the time it waited.
    Quiet,
    /// The bytes ended with what it waited for.
    Stop,
    /// The connection was reset.
    Reset,
}

/// Clients in a process of their own, Python's (`peers/peers.py`): each
/// connection has a name; the check says what each sends, and judges what
/// each gets.
pub struct Peers {
    child: std::process::Child,
    to: std::process::ChildStdin,
    from: Receiver<String>,
}

impl Peers {
    /// Starts the Python process.
    pub fn start() -> Result<Peers, String> {
        use std::process::{Command, Stdio};
        let mut child = Command::new("python3")
            .args(["-c", include_str!("../peers/peers.py")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| {
                format!("the check runs python3 for its clients: {err}")
            })?;
        let to = child.stdin.take().ok_or("python3 has no stdin")?;
        let from = lines_of(child.stdout.take());
        Ok(Peers { child, to, from })
    }

    /// Sends one command and returns its answer.
    fn ask(&mut self, command: &str, wait: Duration) -> Result<String, String> {
        use std::io::Write;
        writeln!(self.to, "{command}")
            .and_then(|()| self.to.flush())
            .map_err(|err| format!("the check's Python clients: {err}"))?;
        self.from.recv_timeout(wait + LAUNCH).map_err(|_| {
            format!("the check's Python clients did not answer {command:?}")
        })
    }

    /// Connects the client `name` over TCP (or UDP); its own address, or
    /// why not (`ConnectionRefusedError ...`).
    pub fn connect(
        &mut self,
        name: &str,
        addr: &str,
        udp: bool,
    ) -> Result<Result<String, String>, String> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| format!("the check: no port in {addr:?}"))?;
        let kind = if udp { "udp" } else { "tcp" };
        let answer =
            self.ask(&format!("{kind} {name} {host} {port}"), LAUNCH)?;
        Ok(parse_ok(&answer).map(|local| local.unwrap_or_default()))
    }

    /// Connects `name` over TCP; a refused connect fails the check.
    pub fn tcp(&mut self, name: &str, addr: &str) -> Result<String, String> {
        self.connect(name, addr, false)?
            .map_err(|why| format!("client {name} could not connect: {why}"))
    }

    /// A server `name` listening on 127.0.0.1, port 0: its address.
    pub fn listen(&mut self, name: &str) -> Result<String, String> {
        self.listen_with(name, 8)
    }

    /// A server `name` listening with that backlog: its address.
    pub fn listen_with(
        &mut self,
        name: &str,
        backlog: u32,
    ) -> Result<String, String> {
        let answer = self.ask(&format!("listen {name} {backlog}"), LAUNCH)?;
        parse_ok(&answer)
            .map(Option::unwrap_or_default)
            .map_err(|why| format!("the check's Python server: {why}"))
    }

    /// The server `name` accepts a connection, named `conn`, within
    /// `within`; `Err` says why not (a timeout: nobody connected).
    pub fn accept(
        &mut self,
        name: &str,
        conn: &str,
        within: Duration,
    ) -> Result<Result<(), String>, String> {
        let command = format!("accept {name} {conn} {}", within.as_millis());
        let answer = self.ask(&command, within)?;
        Ok(parse_ok(&answer).map(|_| ()))
    }

    /// `conn` sends a byte every `gap`, from a thread, until its peer
    /// goes: a server that is slow on purpose.
    pub fn dribble(&mut self, conn: &str, gap: Duration) -> Result<(), String> {
        let command = format!("dribble {conn} {}", gap.as_millis());
        let answer = self.ask(&command, LAUNCH)?;
        parse_ok(&answer).map(|_| ()).map_err(|why| format!("dribble: {why}"))
    }

    /// `name` sends all of `bytes`.
    pub fn send(&mut self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let answer =
            self.ask(&format!("send {name} {}", hex(bytes)), LAUNCH)?;
        parse_ok(&answer)
            .map(|_| ())
            .map_err(|why| format!("client {name}'s send failed: {why}"))
    }

    /// `name` reads until `most` bytes came, the end, `quiet` without a
    /// byte, or the bytes end with `stop`.
    pub fn recv(
        &mut self,
        name: &str,
        most: usize,
        quiet: Duration,
        stop: &[u8],
    ) -> Result<(Vec<u8>, End), String> {
        let mut command = format!("recv {name} {most} {}", quiet.as_millis());
        if !stop.is_empty() {
            command = format!("{command} {}", hex(stop));
        }
        let answer = self.ask(&command, quiet)?;
        let mut words = answer.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("got"), Some(bytes), Some(end)) => {
                let end = match end {
                    "full" => End::Full,
                    "eof" => End::Eof,
                    "quiet" => End::Quiet,
                    "stop" => End::Stop,
                    _ => End::Reset,
                };
                Ok((unhex(bytes), end))
            }
            _ => Err(format!("client {name}'s read failed: {answer}")),
        }
    }

    /// `name` says it has no more to send: shutdown(SHUT_WR).
    pub fn shut(&mut self, name: &str) -> Result<(), String> {
        let answer = self.ask(&format!("shut {name}"), LAUNCH)?;
        parse_ok(&answer)
            .map(|_| ())
            .map_err(|why| format!("client {name}'s shutdown: {why}"))
    }

    /// `name` closes its socket.
    pub fn close(&mut self, name: &str) -> Result<(), String> {
        self.ask(&format!("close {name}"), LAUNCH).map(|_| ())
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ok [WORD]` as `Ok(WORD)`, `err WHY` as `Err(WHY)`.
fn parse_ok(answer: &str) -> Result<Option<String>, String> {
    match answer.split_once(' ') {
        _ if answer == "ok" => Ok(None),
        Some(("ok", rest)) => Ok(Some(rest.to_string())),
        Some(("err", why)) => Err(why.to_string()),
        _ => Err(answer.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}
