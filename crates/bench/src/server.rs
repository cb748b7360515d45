//! A server under test: started as `<binary> server --addr 127.0.0.1:0`,
//! pinned to one CPU, its address read from its `Listening on ADDR` line,
//! its CPU time and memory read from /proc, killed when dropped.

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a server may take to print `Listening on`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server is started: its binary and the arguments after it.
#[derive(Clone, Debug)]
pub struct ServerCmd {
    pub binary: PathBuf,
    pub args: Vec<String>,
}

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
    /// The last lines of the server's stderr, to explain a crash.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Server {
    /// Starts the server, pinned to `cpu` if given, and waits for its address.
    pub fn start(
        cmd: &ServerCmd,
        cpu: Option<usize>,
    ) -> Result<Server, String> {
        let mut command = Command::new(&cmd.binary);
        command
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(cpu) = cpu {
            // SAFETY: between fork and exec only async-signal-safe calls are
            // allowed; sched_setaffinity is a plain system call.
            unsafe {
                command.pre_exec(move || crate::sys::pin_to_cpu(cpu));
            }
        }
        let mut child = command
            .spawn()
            .map_err(|err| format!("start {}: {err}", cmd.binary.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout was piped");
        let stderr = child.stderr.take().expect("stderr was piped");

        let (addr_tx, addr_rx) = mpsc::channel();
        thread::spawn(move || read_address_then_drain(stdout, addr_tx));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        // A server that writes to a full pipe blocks: always drain stderr.
        thread::spawn(move || keep_tail(stderr, &tail));

        let mut server = Server {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            pid,
            stderr_tail,
        };
        match addr_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                server.addr = addr;
                Ok(server)
            }
            Err(_) => Err(format!(
                "{} printed no `Listening on ADDR` line within {START_TIMEOUT:?}{}",
                cmd.binary.display(),
                server.exit_note()
            )),
        }
    }

    /// Empty while the server runs; otherwise how it ended and its last
    /// stderr lines.
    pub fn exit_note(&mut self) -> String {
        match self.child.try_wait() {
            Ok(None) => String::new(),
            Ok(Some(status)) => {
                let tail = self.stderr_tail.lock().map_or_else(
                    |_| String::new(),
                    |tail| tail.iter().cloned().collect::<Vec<_>>().join(" | "),
                );
                format!(
                    "; the server exited ({status}); its stderr ended with: {tail}"
                )
            }
            Err(err) => format!("; waiting for the server failed: {err}"),
        }
    }

    /// The server's resident set size, in bytes.
    pub fn rss_bytes(&self) -> Result<u64, String> {
        rss_bytes(self.pid)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the address from the first `Listening on ADDR` line, then reads
/// the rest of stdout into nothing (lesson 2 prints a line per request).
fn read_address_then_drain(
    stdout: ChildStdout,
    addr_tx: mpsc::Sender<SocketAddr>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Some(addr) = listening_address(&String::from_utf8_lossy(&line)) {
            let _ = addr_tx.send(addr);
            break;
        }
    }
    let mut sink = [0u8; 64 * 1024];
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}

/// The address in a line containing `Listening on ADDR`.
pub fn listening_address(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("Listening on ")?;
    rest.split_whitespace().next()?.parse().ok()
}

fn keep_tail(stream: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == 5 {
                tail.pop_front();
            }
            tail.push_back(
                String::from_utf8_lossy(&line).trim_end().to_string(),
            );
        }
        line.clear();
    }
}

/// CPU time in clock ticks, in user space and in the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub fn total(&self) -> u64 {
        self.user + self.system
    }
}

/// utime and stime (fields 14 and 15 of `man 5 proc`'s /proc/pid/stat),
/// which for a process count every thread it has had, the ended ones
/// included.
pub fn cpu_ticks(stat_path: &str) -> Result<CpuTicks, String> {
    let stat = fs::read_to_string(stat_path)
        .map_err(|err| format!("read {stat_path}: {err}"))?;
    parse_cpu_ticks(&stat)
        .ok_or_else(|| format!("{stat_path}: unexpected format"))
}

/// `pid` and its descendants, from /proc/pid/task/tid/children of each of
/// their threads.
pub fn process_tree(pid: u32) -> Result<Vec<u32>, String> {
    let mut tree = vec![pid];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        next += 1;
        let Ok(tasks) = fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.filter_map(Result::ok) {
            let children = task.path().join("children");
            let Ok(list) = fs::read_to_string(&children) else { continue };
            tree.extend(
                list.split_whitespace().filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    Ok(tree)
}

fn parse_cpu_ticks(stat: &str) -> Option<CpuTicks> {
    // The command name (field 2) may contain spaces and parentheses: the
    // fields after it start after the last ')'. Field 3 is index 0 here.
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    Some(CpuTicks {
        user: fields.get(11)?.parse().ok()?,
        system: fields.get(12)?.parse().ok()?,
    })
}

/// Busy and idle time of one CPU, in ticks (`man 5 proc`, /proc/stat:
/// `cpuN user nice system idle iowait irq softirq steal guest guest_nice`).
/// Idle counts iowait; busy counts steal, time the hypervisor gave to
/// another machine; guest time is already inside user time.
pub fn cpu_times(cpu: usize) -> Result<CpuTimes, String> {
    let stat = fs::read_to_string("/proc/stat")
        .map_err(|e| format!("read /proc/stat: {e}"))?;
    parse_cpu_times(&stat, cpu)
        .ok_or_else(|| format!("/proc/stat: no line for cpu{cpu}"))
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    pub busy: u64,
    pub idle: u64,
}

fn parse_cpu_times(stat: &str, cpu: usize) -> Option<CpuTimes> {
    let name = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: field(0) + field(1) + field(2) + field(5) + field(6) + field(7),
        idle: *fields.get(3)? + *fields.get(4)?,
    })
}

/// Every thread's context switches so far, by thread id: the sum of
/// `voluntary_ctxt_switches` (the thread blocked: it waited for data, a
/// lock, a timer) and `nonvoluntary_ctxt_switches` (the scheduler took the
/// core from it) in /proc/pid/task/tid/status (`man 5 proc`). The process's
/// own /proc/pid/status counts its first thread only, so each thread is
/// read. A thread that ends between listing the folder and reading its file
/// is left out: its counters end with it.
pub fn context_switches(pid: u32) -> Result<HashMap<u32, u64>, String> {
    let mut switches = HashMap::new();
    // A process-per-connection server's children are read too.
    for pid in process_tree(pid)? {
        threads_switches(pid, &mut switches)?;
    }
    Ok(switches)
}

fn threads_switches(
    pid: u32,
    switches: &mut HashMap<u32, u64>,
) -> Result<(), String> {
    let dir = format!("/proc/{pid}/task");
    let Ok(entries) = fs::read_dir(&dir) else {
        // A child that ended after it was listed.
        return Ok(());
    };
    // One buffer for every file: a thread server has a file per connection.
    let mut status = String::with_capacity(2048);
    for entry in entries {
        let entry = entry.map_err(|err| format!("read {dir}: {err}"))?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path().join("status");
        status.clear();
        match fs::File::open(&path)
            .and_then(|mut file| file.read_to_string(&mut status))
        {
            Ok(_) => {}
            // ESRCH when the thread ended after it was opened.
            Err(err)
                if err.kind() == std::io::ErrorKind::NotFound
                    || err.raw_os_error() == Some(libc::ESRCH) =>
            {
                continue;
            }
            Err(err) => return Err(format!("read {}: {err}", path.display())),
        }
        let count = parse_context_switches(&status).ok_or_else(|| {
            format!("{}: no ctxt_switches lines", path.display())
        })?;
        switches.insert(tid, count);
    }
    Ok(())
}

fn parse_context_switches(status: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim().parse().ok()
    };
    Some(
        field("voluntary_ctxt_switches:")?
            + field("nonvoluntary_ctxt_switches:")?,
    )
}

/// VmRSS from /proc/pid/status: the user-space memory resident in RAM
/// (socket buffers live in the kernel and are not counted).
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path)
        .map_err(|err| format!("read {path}: {err}"))?;
    parse_rss_bytes(&status).ok_or_else(|| format!("{path}: no VmRSS line"))
}

fn parse_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_each_lessons_listening_line() {
        let addr: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        assert_eq!(
            listening_address("Listening on 127.0.0.1:40123\n"),
            Some(addr)
        );
        assert_eq!(
            listening_address("Listening on 127.0.0.1:40123 (backlog 5)\n"),
            Some(addr)
        );
        assert_eq!(listening_address("Socket Bind Complete\n"), None);
    }

    #[test]
    fn cpu_ticks_survive_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    17 5 0 0 20 0 3 0 12345 0 0";
        assert_eq!(
            parse_cpu_ticks(stat),
            Some(CpuTicks { user: 17, system: 5 })
        );
    }

    #[test]
    fn idle_time_is_read_for_the_right_cpu() {
        let stat = "cpu  10 0 10 500 5 0 0 0 0 0\n\
                    cpu0 5 0 5 200 2 0 0 0 0 0\n\
                    cpu1 5 0 5 300 3 0 0 0 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(
            parse_cpu_times(stat, 0),
            Some(CpuTimes { busy: 10, idle: 202 })
        );
        assert_eq!(
            parse_cpu_times(stat, 1),
            Some(CpuTimes { busy: 10, idle: 303 })
        );
        assert_eq!(parse_cpu_times(stat, 2), None);
        let with_steal = "cpu0 5 1 5 200 2 3 4 7 9 0\n";
        assert_eq!(
            parse_cpu_times(with_steal, 0),
            Some(CpuTimes { busy: 25, idle: 202 })
        );
    }

    #[test]
    fn rss_is_read_in_bytes() {
        let status =
            "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1536 kB\nThreads: 1\n";
        assert_eq!(parse_rss_bytes(status), Some(1536 * 1024));
    }

    #[test]
    fn context_switches_add_the_voluntary_and_the_nonvoluntary_ones() {
        // The tail of a thread's status file, as Linux 6 writes it.
        let status = "Name:\tlesson-10\nTgid:\t4242\nPid:\t4250\nThreads:\t3\n\
                      Mems_allowed_list:\t0\n\
                      voluntary_ctxt_switches:\t118003\n\
                      nonvoluntary_ctxt_switches:\t27\n";
        assert_eq!(parse_context_switches(status), Some(118_030));
        // "voluntary_ctxt_switches:" is not a prefix of the other line's
        // name, so neither line is read for the other.
        let swapped =
            "nonvoluntary_ctxt_switches:\t5\nvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_context_switches(swapped), Some(12));
        assert_eq!(
            parse_context_switches("Name:\tx\nvoluntary_ctxt_switches:\t7\n"),
            None
        );
        assert_eq!(
            parse_context_switches(
                "voluntary_ctxt_switches:\tmany\nnonvoluntary_ctxt_switches:\t1\n"
            ),
            None
        );
    }

    #[test]
    fn this_process_has_cpu_time_memory_and_a_thread_that_switched() {
        assert!(cpu_ticks("/proc/self/stat").is_ok());
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        let switches = context_switches(std::process::id()).unwrap();
        // The test harness runs this test on a thread of its own.
        assert!(!switches.is_empty());
        assert!(
            switches.contains_key(&std::process::id()),
            "the first thread's id is the pid"
        );
    }
}
