//! Running the real lesson binaries as child processes, and the one place
//! that says what a transcript may vary in.
//!
//! The lesson binaries belong to other packages, so this test crate builds
//! them itself, once, with a nested `cargo build` into the same target
//! directory (cargo has released its build lock by the time tests run).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

/// The longest any single child process may run before the test fails.
/// Generous: a demo takes well under a second; this only stops a hang.
pub const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// How many times a demo is run to prove its transcript never changes.
pub const RUNS: usize = 20;

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`, found from this test binary's own path
/// (`target/<profile>/deps/course-<hash>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds every lesson binary once per test run and returns the path of
/// lesson `n`'s.
pub fn bin(n: u32) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = profile_dir();
    BUILT.get_or_init(|| {
        let target_dir = dir.parent().expect("target dir");
        let profile = if dir.ends_with("release") { "release" } else { "dev" };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--bins",
                "--profile",
                profile,
                "-p",
                "lesson-*",
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(root())
            .status()
            .expect("run cargo build for the lessons");
        assert!(status.success(), "building the lesson binaries failed");
    });
    let path = dir.join(format!("lesson-{n:02}"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Replaces what truly varies between runs, and nothing else: ephemeral
/// ports, socket inode numbers (and the length of a link that holds one).
pub fn normalize(text: &str) -> String {
    static FILTERS: OnceLock<Vec<(Regex, &str)>> = OnceLock::new();
    let filters = FILTERS.get_or_init(|| {
        vec![
            // Lesson 14: the address an unbound UDP socket gets from its
            // first sendto, and loopback's broadcast address.
            (
                Regex::new(r"(0\.0\.0\.0|127\.255\.255\.255):[1-9][0-9]*")
                    .unwrap(),
                "$1:[PORT]",
            ),
            // Port 0 stays: it is what the lessons ask for, not what they got.
            (
                Regex::new(r"(127\.0\.0\.1|\[::1\]|localhost):[1-9][0-9]*")
                    .unwrap(),
                "$1:[PORT]",
            ),
            // Other IPv6 addresses ([::], [::ffff:127.0.0.1]) and 0.0.0.0.
            (
                Regex::new(r"(\[[0-9a-f:.]+\]|0\.0\.0\.0):[1-9][0-9]*")
                    .unwrap(),
                "$1:[PORT]",
            ),
            // A socket's inode, and the length of the link text that holds it.
            (
                Regex::new(r#"= [0-9]+  \("(socket|pipe):\[[0-9]+\]"#).unwrap(),
                "= [LEN]  (\"$1:[INODE]",
            ),
            (Regex::new(r"(socket|pipe):\[[0-9]+\]").unwrap(), "$1:[INODE]"),
        ]
    });
    filters.iter().fold(text.to_string(), |text, (re, with)| {
        re.replace_all(&text, *with).into_owned()
    })
}

/// Snapshots `text` as `tests/snapshots/<name>.snap`, without the source
/// expression in the header (so the book can include from line 4).
#[macro_export]
macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

/// Runs a lesson binary to completion with `args` and `stdin`, killing it if
/// it outlives [`CHILD_LIMIT`].
pub fn run(n: u32, args: &[&str], stdin: &[u8]) -> Output {
    run_with(Command::new(bin(n)).args(args), stdin)
}

/// Like [`run`], for any prepared command.
pub fn run_with(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child = only_std_fds(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = thread::spawn(move || {
        // The child may exit before reading it all; that is its business.
        let _ = input.write_all(&stdin);
    });
    let output = wait_bounded(child);
    let _ = writer.join();
    output
}

/// Runs lesson `n` with `args` as a leaky shell would: besides stdin,
/// stdout and stderr, the child inherits descriptors numbered `leaked`
/// (copies of its stderr, without close-on-exec).
pub fn run_leaking(n: u32, args: &[&str], leaked: &[i32]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(bin(n));
    command.args(args);
    let command = only_std_fds(&mut command);
    let leaked = leaked.to_vec();
    // SAFETY: as in only_std_fds, and added after it, so it runs after it:
    // dup2 makes async-signal-safe system calls only, and the copies it
    // makes are not close-on-exec.
    unsafe {
        command.pre_exec(move || {
            for &fd in &leaked {
                if libc::dup2(2, fd) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    wait_bounded(child.expect("spawn child"))
}

/// Lets a child inherit only stdin, stdout and stderr. The test runner may
/// itself have inherited other descriptors from whatever started it (a
/// shell, an editor, CI) without close-on-exec; a child would inherit them
/// too, and they would shift the numbers the kernel gives the child's own
/// sockets, which transcripts print.
fn only_std_fds(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the child between fork and exec and makes one system
    // call, which allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            // Mark them close-on-exec rather than closing them: std's own pipe
            // that reports a failed exec must stay open until the exec.
            let marked = libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if marked == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Waits for a child's output, killing the child after [`CHILD_LIMIT`].
fn wait_bounded(child: Child) -> Output {
    let pid = child.id();
    let (done_tx, done_rx) = channel();
    let waiter = thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done_tx.send(());
        output
    });
    if let Err(RecvTimeoutError::Timeout) = done_rx.recv_timeout(CHILD_LIMIT) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("child {pid} ran longer than {CHILD_LIMIT:?} and was killed");
    }
    waiter.join().expect("waiter").expect("wait for child")
}

/// Stdout of a run that must have succeeded; a failure shows its stderr.
pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// Runs lesson `n`'s demo [`RUNS`] times, asserts every normalized
/// transcript is the same, and returns it.
pub fn stable_demo(n: u32) -> String {
    stable_run(n, &[], RUNS)
}

/// Like [`stable_demo`], for a demo run with `args`, `runs` times: for
/// demos that take flags, or whose waits are long enough that twenty runs
/// would hold up the suite.
pub fn stable_run(n: u32, args: &[&str], runs: usize) -> String {
    let first = normalize(&stdout_of(&run(n, args, b"")));
    // The other runs, a few at a time: most demos spend their time waiting
    // on timeouts, not on a CPU, so this saves wall time without changing
    // what each run prints (each is a process of its own).
    const AT_ONCE: usize = 4;
    let mut run_no = 2;
    while run_no <= runs {
        let batch: Vec<_> = (run_no..=runs.min(run_no + AT_ONCE - 1))
            .map(|no| {
                let args: Vec<String> =
                    args.iter().map(|a| a.to_string()).collect();
                std::thread::spawn(move || {
                    let args: Vec<&str> =
                        args.iter().map(String::as_str).collect();
                    (no, normalize(&stdout_of(&run(n, &args, b""))))
                })
            })
            .collect();
        for handle in batch {
            let (no, again) = handle.join().expect("a demo run");
            assert_eq!(
                first, again,
                "lesson {n} {args:?}: run {no} printed a different transcript"
            );
            run_no = run_no.max(no + 1);
        }
    }
    first
}

/// `--help` of lesson `n`, which clap prints with a fixed program name.
pub fn help(n: u32) -> String {
    stdout_of(&run(n, &["--help"], b""))
}

/// A server child process whose stdout is read line by line as it comes.
pub struct Server {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    /// The address the server printed as the one it listens on.
    pub addr: String,
}

impl Server {
    /// Starts `command` and waits until it prints a line containing
    /// `Listening on ADDR`; the address is read from that line.
    pub fn start(command: &mut Command) -> Server {
        let mut child = only_std_fds(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let lines = read_lines(child.stdout.take().expect("stdout"));
        let mut server =
            Server { child, lines, seen: Vec::new(), addr: String::new() };
        let line = server.wait_for("Listening on ");
        let addr = line
            .split("Listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address after 'Listening on'");
        server.addr = addr.to_string();
        server
    }

    /// Starts lesson `n`'s `server` on `127.0.0.1:0` with extra `args`.
    pub fn lesson(n: u32, args: &[&str]) -> Server {
        Server::start(
            Command::new(bin(n))
                .args(["server", "--addr", "127.0.0.1:0"])
                .args(args),
        )
    }

    /// Reads lines until one contains `needle` and returns it; fails the
    /// test if the server exits or stays silent for [`CHILD_LIMIT`].
    pub fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + CHILD_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "server never printed {needle:?}; it printed:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Everything the server has printed so far, one line each.
    pub fn transcript(&self) -> String {
        self.seen.join("\n") + "\n"
    }

    /// Like [`Server::transcript`], with the lines nobody waited for yet.
    pub fn printed(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.transcript()
    }

    /// The server's process id, for looking at it from outside
    /// (`/proc/<pid>/fd`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For the servers that shut down by themselves (lessons 11 to 13).
impl Server {
    /// Reads the rest of the server's output until it exits (bounded by
    /// [`CHILD_LIMIT`]) and returns its exit status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + CHILD_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                // The reader thread ends when the server's stdout closes.
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "server did not exit; it printed:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
        self.child.wait().expect("wait for the server")
    }
}

fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `python3 script args...` from `tests/fixtures`, bounded in time.
pub fn python(script: &str, args: &[&str], stdin: &[u8]) -> Output {
    run_with(
        Command::new("python3")
            .arg(root().join("tests/fixtures").join(script))
            .args(args),
        stdin,
    )
}

/// Whether a tool is installed. In CI (`CI` set) a missing tool fails the
/// test instead: CI installs every tool the tests use.
pub fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "{tool} is required in CI");
        eprintln!(
            "{tool} is not installed: skipping the part of this test that uses it"
        );
    }
    found
}
