//! The load generator: N connections to one server, each doing
//! request/response ping-pong with 64-byte lines, all driven by one thread
//! with edge-triggered epoll (`man 7 epoll`), so that 1000 or 10,000
//! connections cost no more threads than one. Per request it makes one
//! `send` and one `recv`, and shares one `epoll_wait` with the other ready
//! connections: it must cost less per request than the servers it drives.
//!
//! Every reply is checked: it must be one line ending with the request's
//! content (a server may put a prefix before it).
//!
//! For lesson 17 and its reference the same generator speaks HTTP/1.1
//! instead ([`Protocol::Get`]): each connection sends keep-alive `GET`s of
//! one file, one at a time, and reads each response to the end its
//! `Content-Length` gives, checking the status and the length.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

/// Every request is one line of this many bytes, newline included.
pub const LINE_LEN: usize = 64;

/// The protocol's longest line is 1024 bytes; a reply may add a prefix.
/// A reply that grows past this without a newline is an error.
const MAX_REPLY: usize = 4096;

/// How long opening all the connections of a run may take.
const SETUP_LIMIT: Duration = Duration::from_secs(120);

/// How long the generator waits after the window for replies still due.
const DRAIN: Duration = Duration::from_secs(2);

/// How long the traffic may go on after the window while the server's
/// context switches are read (a read of a thousand threads takes tens of
/// milliseconds).
const TAIL_LIMIT: Duration = Duration::from_secs(2);

/// How many errors are kept word for word (the rest are only counted).
const KEPT_ERRORS: usize = 3;

/// What the connections speak.
#[derive(Clone, Debug)]
pub enum Protocol {
    /// The course's line protocol: a 64-byte line, echoed.
    Line,
    /// HTTP/1.1: keep-alive `GET`s of one file.
    Get(Arc<Get>),
}

/// A `GET` that every request of a run repeats, and what its response
/// must carry.
#[derive(Debug)]
pub struct Get {
    /// The whole request, head and blank line.
    pub request: Vec<u8>,
    /// The file's size: the response's `Content-Length` and body.
    pub body_len: usize,
}

impl Get {
    pub fn new(path: &str, body_len: usize) -> Get {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n"
        );
        Get { request: request.into_bytes(), body_len }
    }
}

/// A response head longer than this is an error.
const MAX_HEAD: usize = 8192;

/// Whether `reply` is one whole `200` response to a `GET` of a file of
/// `body_len` bytes: `None` while more bytes are due, an error for a wrong
/// status or length or bytes past the response's end.
pub fn check_response(
    reply: &[u8],
    body_len: usize,
) -> Option<Result<(), String>> {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (reply.len() > MAX_HEAD).then(|| {
            Err(format!("a response head longer than {MAX_HEAD} bytes"))
        });
    };
    let head = String::from_utf8_lossy(&reply[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Some(Err(format!("status line {status:?}, not 200")));
    }
    let length = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    if length != Some(body_len) {
        return Some(Err(format!(
            "Content-Length {length:?}, expected {body_len}"
        )));
    }
    let whole = end + 4 + body_len;
    match reply.len() {
        n if n < whole => None,
        n if n == whole => Some(Ok(())),
        n => Some(Err(format!(
            "{} bytes after the response, before the next request",
            n - whole
        ))),
    }
}

/// Whether `reply` completes the answer to `request`: `None` while more
/// bytes are due.
fn check_complete(
    protocol: &Protocol,
    reply: &[u8],
    request: &[u8],
) -> Option<Result<(), String>> {
    match protocol {
        Protocol::Line => match reply.iter().position(|&b| b == b'\n') {
            Some(newline) if newline + 1 != reply.len() => Some(Err(
                "more than one line in reply to one request".to_string(),
            )),
            Some(_) => Some(check_reply(reply, request)),
            None if reply.len() > MAX_REPLY => {
                Some(Err(format!("a reply longer than {MAX_REPLY} bytes")))
            }
            None => None,
        },
        Protocol::Get(get) => check_response(reply, get.body_len),
    }
}

/// The request a connection sends as its `seq`-th: its id, the sequence
/// number and a filler that shifts with both, so that a reply meant for
/// another connection or an earlier request does not pass the check.
/// Written byte by byte: this runs once per request, and the generator
/// must cost less per request than the servers it measures.
pub fn request_line(id: u32, seq: u64) -> [u8; LINE_LEN] {
    // Three alphabets in a row: any 42-byte window starting in the first.
    const LETTERS: &[u8; 78] =
        b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";
    let mut line = [0u8; LINE_LEN];
    // "c00007 r000000000001 " then filler, then the newline. Ids and
    // sequence numbers too large for their digits keep only the low ones.
    line[0] = b'c';
    put_digits(&mut line[1..6], u64::from(id));
    line[6] = b' ';
    line[7] = b'r';
    put_digits(&mut line[8..20], seq);
    line[20] = b' ';
    let shift = ((seq % 26 + u64::from(id) % 26) % 26) as usize;
    line[21..LINE_LEN - 1]
        .copy_from_slice(&LETTERS[shift..shift + LINE_LEN - 22]);
    line[LINE_LEN - 1] = b'\n';
    line
}

/// Writes the low decimal digits of `value` into `out`, zero-padded.
fn put_digits(out: &mut [u8], mut value: u64) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Checks one reply line (newline included) against the request it answers.
pub fn check_reply(reply: &[u8], request: &[u8]) -> Result<(), String> {
    let content = request.strip_suffix(b"\n").unwrap_or(request);
    let Some(line) = reply.strip_suffix(b"\n") else {
        return Err("a reply without its newline".to_string());
    };
    if line.ends_with(content) {
        Ok(())
    } else {
        Err(format!(
            "reply {:?} does not end with the request {:?}",
            String::from_utf8_lossy(line),
            String::from_utf8_lossy(content)
        ))
    }
}

/// One client connection and where it stands in its ping-pong.
pub struct Conn {
    stream: TcpStream,
    id: u32,
    /// Its index among its generator thread's connections: epoll's tag.
    slot: u64,
    seq: u64,
    protocol: Protocol,
    /// The request in flight: a line, or the run's `GET`.
    request: Vec<u8>,
    /// Bytes of `request` written so far.
    written: usize,
    /// Waiting for EPOLLOUT because the kernel took only part of a request.
    wants_out: bool,
    outstanding: bool,
    sent_at: Instant,
    /// Reply bytes received so far, until they complete the reply.
    reply: Vec<u8>,
    answered: u64,
    alive: bool,
}

impl Conn {
    /// Connects and does one blocking round trip, so that when this returns
    /// the server has accepted the connection and answered on it.
    fn open(
        addr: SocketAddr,
        id: u32,
        timeout: Duration,
        protocol: &Protocol,
    ) -> Result<Conn, String> {
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| format!("connect: {e}"))?;
        // Each request is written once, whole: without TCP_NODELAY a small
        // write may wait for an ACK (Nagle, `man 7 tcp`).
        stream.set_nodelay(true).map_err(|e| format!("TCP_NODELAY: {e}"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
        let mut conn = Conn {
            stream,
            id,
            slot: 0,
            seq: 0,
            protocol: protocol.clone(),
            request: Vec::new(),
            written: 0,
            wants_out: false,
            outstanding: false,
            sent_at: Instant::now(),
            reply: Vec::with_capacity(2 * LINE_LEN),
            answered: 0,
            alive: true,
        };
        conn.set_request();
        (&conn.stream)
            .write_all(&conn.request)
            .map_err(|e| format!("send: {e}"))?;
        conn.written = conn.request.len();
        let mut buf = [0u8; 16 * 1024];
        let checked = loop {
            if let Some(checked) =
                check_complete(&conn.protocol, &conn.reply, &conn.request)
            {
                break checked;
            }
            match (&conn.stream).read(&mut buf) {
                Ok(0) => {
                    return Err("the server closed the connection".to_string());
                }
                Ok(n) => conn.reply.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(format!("no reply within {timeout:?}"));
                }
                Err(e) => return Err(format!("recv: {e}")),
            }
        };
        checked?;
        conn.reply.clear();
        conn.answered = 1;
        conn.stream
            .set_nonblocking(true)
            .map_err(|e| format!("O_NONBLOCK: {e}"))?;
        Ok(conn)
    }

    /// Puts the request numbered `seq` in `request`, unsent.
    fn set_request(&mut self) {
        self.request.clear();
        match &self.protocol {
            Protocol::Line => {
                self.request.extend_from_slice(&request_line(self.id, self.seq))
            }
            Protocol::Get(get) => self.request.extend_from_slice(&get.request),
        }
        self.written = 0;
    }

    /// Requests answered on this connection, the first round trip included.
    pub fn answered(&self) -> u64 {
        self.answered
    }
}

/// Opens `count` connections one after the other. Each one is answered
/// before the next is opened, so the listener's accept queue never
/// overflows (a dropped SYN would cost a one-second retransmission), and a
/// server that stops answering new connections is found out at once.
pub fn connect_all(
    addr: SocketAddr,
    count: usize,
    timeout: Duration,
    protocol: &Protocol,
) -> Result<Vec<Conn>, String> {
    let started = Instant::now();
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        // Each step is bounded by `timeout`; this bounds them all.
        if started.elapsed() > SETUP_LIMIT {
            return Err(format!(
                "opening {count} connections took over {SETUP_LIMIT:?} ({i} were open)"
            ));
        }
        let conn = Conn::open(addr, i as u32, timeout, protocol).map_err(|err| {
            format!("connection {} of {count}: {err} ({} connections were open and answered)", i + 1, i)
        })?;
        conns.push(conn);
    }
    Ok(conns)
}

/// When a ping-pong run ends.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// Each connection sends this many requests; nothing is timed.
    Requests { per_connection: u64, limit: Duration },
    /// Traffic for `warmup`, then a measured window of `measure`; no new
    /// request is sent after the window and a short tail, during which the
    /// server's context switches are read (see [`Switches`]).
    Window { warmup: Duration, measure: Duration },
}

/// What one ping-pong run measured.
#[derive(Debug, Default)]
pub struct Run {
    /// Requests answered inside the window.
    pub requests: u64,
    pub window: Duration,
    /// The latency of each request answered in the window, in nanoseconds:
    /// from just before its write to just after the read that completed it.
    pub latencies_ns: Vec<u64>,
    /// The server's CPU time over the window, in clock ticks.
    pub server_ticks: u64,
    /// The part of `server_ticks` spent in the kernel (system time).
    pub server_system_ticks: u64,
    /// This process's CPU time over the window (the generator's), in ticks.
    pub own_ticks: u64,
    /// Idle time of the server's CPU over the window, in ticks, when the
    /// server is pinned: a server that never waited for work left none.
    pub server_core_idle_ticks: Option<u64>,
    /// Every reply checked, in or out of the window.
    pub verified: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Requests sent but never answered before the run ended.
    pub unanswered: u64,
    /// How many generator threads drove the run.
    pub threads: usize,
    /// Time the server's and the generator's CPUs spent on other work
    /// (other processes, the hypervisor) over the window, in ticks.
    pub other_ticks: Option<u64>,
    /// Context switches of the server's threads between the two reads of
    /// their counters (see [`Switches`]).
    pub server_switches: Switches,
}

/// The server's context switches between two reads of every thread's
/// counters. A timed run reads them just outside its window (before it
/// opens, after it closes) while the traffic goes on, so that reading a
/// thousand files does not take CPU from the generator inside the window;
/// the span between the reads is then a little longer than the window, and
/// the figure per request is a rate: switches per second over `span`
/// divided by requests per second over the window.
#[derive(Debug, Default, Clone, Copy)]
pub struct Switches {
    /// Summed over the threads read at both edges (the later count minus
    /// the earlier), plus the whole count of threads born between the
    /// reads (every switch they made came after the first read).
    pub count: u64,
    /// From the middle of the first read to the middle of the second.
    pub span: Duration,
    /// Threads read at the second edge.
    pub threads: usize,
    /// Threads read at the first edge that were gone at the second: their
    /// switches in between could not be read (a thread's counters end with
    /// it), so they are not in `count`. The servers keep their threads for
    /// the whole run (the connections stay open), so this is 0 for them.
    pub threads_gone: usize,
    /// The longer of the two reads.
    pub read_time: Duration,
}

impl Run {
    /// Adds a later turn of the same server to this run, as if its window
    /// were one with the two windows' length: requests, ticks and
    /// switches add up, latencies join, and any error stays.
    pub fn absorb(&mut self, turn: Run) {
        let add = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a + b);
        self.requests += turn.requests;
        self.window += turn.window;
        self.latencies_ns.extend(turn.latencies_ns);
        self.server_ticks += turn.server_ticks;
        self.server_system_ticks += turn.server_system_ticks;
        self.own_ticks += turn.own_ticks;
        self.server_core_idle_ticks =
            add(self.server_core_idle_ticks, turn.server_core_idle_ticks);
        self.verified += turn.verified;
        self.errors += turn.errors;
        let room = KEPT_ERRORS.saturating_sub(self.first_errors.len());
        self.first_errors.extend(turn.first_errors.into_iter().take(room));
        self.unanswered += turn.unanswered;
        self.threads = self.threads.max(turn.threads);
        self.other_ticks = add(self.other_ticks, turn.other_ticks);
        let (ours, theirs) = (&mut self.server_switches, turn.server_switches);
        ours.count += theirs.count;
        ours.span += theirs.span;
        ours.threads = theirs.threads;
        ours.threads_gone += theirs.threads_gone;
        ours.read_time = ours.read_time.max(theirs.read_time);
    }

    fn fail(&mut self, conn: &mut Conn, epoll: &Epoll, what: String) {
        self.errors += 1;
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors
                .push(format!("connection {}: {what}", conn.id + 1));
        }
        if conn.outstanding {
            self.unanswered += 1;
        }
        conn.alive = false;
        conn.outstanding = false;
        let _ = epoll.delete(conn.stream.as_fd());
    }
}

/// Where the CPU figures of a run are read, at both edges of its window.
pub struct Probe {
    /// The server's process id: its threads' context switches are read
    /// from /proc/pid/task.
    pub server_pid: u32,
    /// The server runs a process per connection. Its CPU time is not
    /// read: /proc counts each process's time in whole clock ticks,
    /// rounded down per process, and each child runs for less than a tick
    /// in a window, so their sum would be far too low. Its figure is "–".
    pub forks: bool,
    /// The CPU the server is pinned to, if it is.
    pub server_cpu: Option<usize>,
    /// The CPUs the generator's threads are pinned to.
    pub generator_cpus: Vec<usize>,
}

/// Edge-triggered: an event only when new data arrives, so epoll does not
/// poll the socket again after reporting it. Safe because every event is
/// followed by reads until the receive queue is empty.
const INTEREST: EpollFlags = EpollFlags::EPOLLIN.union(EpollFlags::EPOLLET);

/// The instants one run is planned around, shared by its threads.
#[derive(Clone, Copy)]
struct Plan {
    start: Instant,
    /// Requests answered from here to `window_end` are counted.
    window_start: Instant,
    /// The window's end: a request is sent after it only while the
    /// server's context switches are still being read.
    window_end: Instant,
    /// No request is sent after this in a timed run. The traffic goes on
    /// after the window, while the server's context switches are read,
    /// until the reading thread clears the run's `after_window` flag; this
    /// bounds that tail.
    send_end: Instant,
    /// Whatever is still unanswered then is given up.
    hard_end: Instant,
    /// For a counted run: requests per connection after the first.
    per_connection: Option<u64>,
}

/// Drives ping-pong on every connection until `stop`, with one generator
/// thread per CPU in `cpus` (pinned there), or one unpinned thread if
/// `cpus` is empty. The connections are dealt out to the threads; this
/// thread reads the CPU counters at the edges of the window, and the
/// server's context switches just outside them.
pub fn ping_pong(
    conns: &mut [Conn],
    stop: Stop,
    probe: &Probe,
    cpus: &[usize],
) -> Result<Run, String> {
    // One read of the server's threads before the traffic starts, to learn
    // how long a read takes: a thread server has a thread per connection.
    let trial = SwitchRead::take(probe.server_pid)?;
    // How long before the window the first read starts: room for a read
    // four times as slow as the trial (the traffic slows it down).
    let lead = trial.took * 4 + Duration::from_millis(5);
    let start = Instant::now();
    let plan = match stop {
        Stop::Requests { per_connection, limit } => Plan {
            start,
            window_start: start,
            window_end: start + limit,
            send_end: start + limit,
            hard_end: start + limit,
            per_connection: Some(per_connection),
        },
        Stop::Window { warmup, measure } => {
            let end = start + warmup + measure;
            Plan {
                start,
                window_start: start + warmup,
                window_end: end,
                send_end: end + TAIL_LIMIT,
                hard_end: end + TAIL_LIMIT + DRAIN,
                per_connection: None,
            }
        }
    };
    let sample = || -> Result<Sample, String> {
        Ok(Sample {
            at: Instant::now(),
            // A process per connection: not read (see `Probe::forks`).
            server: match probe.forks {
                true => crate::server::CpuTicks::default(),
                false => crate::server::cpu_ticks(&format!(
                    "/proc/{}/stat",
                    probe.server_pid
                ))?,
            },
            own: crate::server::cpu_ticks("/proc/self/stat")?.total(),
            server_core_idle: match probe.server_cpu {
                Some(cpu) => Some(crate::server::cpu_times(cpu)?.idle),
                None => None,
            },
            bench_cores_busy: match probe.server_cpu {
                Some(cpu) => {
                    let mut busy = crate::server::cpu_times(cpu)?.busy;
                    for &g in probe.generator_cpus.iter().filter(|&&g| g != cpu)
                    {
                        busy += crate::server::cpu_times(g)?.busy;
                    }
                    Some(busy)
                }
                None => None,
            },
        })
    };
    let threads = cpus.len().max(1);
    let share = conns.len().div_ceil(threads).max(1);
    let read_switches = || SwitchRead::take(probe.server_pid);
    // Whether the generator goes on sending after the window.
    let after_window = AtomicBool::new(true);
    let after_window = &after_window;
    let (opened, closed, switch_reads, runs) = std::thread::scope(|scope| {
        let workers: Vec<_> = conns
            .chunks_mut(share)
            .enumerate()
            .map(|(i, chunk)| {
                let cpu = cpus.get(i).copied();
                scope.spawn(move || {
                    if let Some(cpu) = cpu {
                        crate::sys::pin_to_cpu(cpu).map_err(|e| {
                            format!("sched_setaffinity {cpu}: {e}")
                        })?;
                    }
                    drive(chunk, plan, after_window)
                })
            })
            .collect();
        // A counted run is measured from start to finish; a timed one
        // over its window, while the workers keep the load on. The CPU
        // counters are read at the edges (a few small files); the context
        // switches of every server thread just outside them.
        let (opened, closed, switch_reads) = if plan.per_connection.is_some() {
            let first = read_switches();
            let opened = sample();
            while workers.iter().any(|w| !w.is_finished()) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let closed = sample();
            (opened, closed, (first, read_switches()))
        } else {
            let before =
                plan.window_start.checked_sub(lead).unwrap_or(plan.start);
            std::thread::sleep(
                before.saturating_duration_since(Instant::now()),
            );
            let first = read_switches();
            std::thread::sleep(
                plan.window_start.saturating_duration_since(Instant::now()),
            );
            let opened = sample();
            std::thread::sleep(
                plan.window_end.saturating_duration_since(Instant::now()),
            );
            let closed = sample();
            let second = read_switches();
            after_window.store(false, Ordering::Relaxed);
            (opened, closed, (first, second))
        };
        let runs: Vec<Result<Run, String>> = workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    Err("a generator thread panicked".into())
                })
            })
            .collect();
        (opened, closed, switch_reads, runs)
    });
    let mut run = Run { threads: runs.len(), ..Run::default() };
    // The threads' requests, latencies and errors add up as turns do;
    // everything read from /proc is set below, for the whole run.
    for part in runs {
        run.absorb(part?);
    }
    let (t0, t1) = (opened?, closed?);
    // A timed run counts the requests answered in its planned window,
    // which the samples bracket to within a scheduler wake-up.
    run.window = match plan.per_connection {
        Some(_) => t1.at.saturating_duration_since(t0.at),
        None => plan.window_end - plan.window_start,
    };
    run.server_ticks = t1.server.total().saturating_sub(t0.server.total());
    run.server_system_ticks = t1.server.system.saturating_sub(t0.server.system);
    run.own_ticks = t1.own.saturating_sub(t0.own);
    run.server_core_idle_ticks =
        match (t0.server_core_idle, t1.server_core_idle) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
    // What kept those CPUs busy besides the server and the generator. A
    // process-per-connection server's time is not read, so its children's
    // would count as other work: unknown.
    run.other_ticks = match (t0.bench_cores_busy, t1.bench_cores_busy) {
        _ if probe.forks => None,
        (Some(a), Some(b)) => Some(
            b.saturating_sub(a)
                .saturating_sub(run.server_ticks + run.own_ticks),
        ),
        _ => None,
    };
    let (first, second) = (switch_reads.0?, switch_reads.1?);
    run.server_switches = first.until(&second);
    if plan.per_connection.is_some() {
        // Every request of a counted run is counted, between the two reads.
        run.server_switches.span = run.window;
    }
    Ok(run)
}

/// Every server thread's context switches, read once.
struct SwitchRead {
    by_thread: std::collections::HashMap<u32, u64>,
    /// When the read was halfway.
    middle: Instant,
    took: Duration,
}

impl SwitchRead {
    fn take(pid: u32) -> Result<SwitchRead, String> {
        let started = Instant::now();
        let by_thread = crate::server::context_switches(pid)?;
        let took = started.elapsed();
        Ok(SwitchRead { by_thread, middle: started + took / 2, took })
    }

    /// The switches from this read to a later one.
    fn until(&self, later: &SwitchRead) -> Switches {
        let count = later
            .by_thread
            .iter()
            .map(|(tid, &now)| match self.by_thread.get(tid) {
                // A count below the first means the id was reused by a
                // new thread: all of the new thread's switches count.
                Some(&before) if before <= now => now - before,
                _ => now,
            })
            .sum();
        Switches {
            count,
            span: later.middle.saturating_duration_since(self.middle),
            threads: later.by_thread.len(),
            threads_gone: self
                .by_thread
                .keys()
                .filter(|tid| !later.by_thread.contains_key(tid))
                .count(),
            read_time: self.took.max(later.took),
        }
    }
}

/// One generator thread: ping-pong on its share of the connections.
fn drive(
    conns: &mut [Conn],
    plan: Plan,
    after_window: &AtomicBool,
) -> Result<Run, String> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
        .map_err(|e| format!("epoll_create1: {e}"))?;
    for (slot, conn) in conns.iter_mut().enumerate() {
        conn.slot = slot as u64;
        epoll
            .add(conn.stream.as_fd(), EpollEvent::new(INTEREST, conn.slot))
            .map_err(|e| format!("epoll_ctl ADD: {e}"))?;
    }
    let mut run =
        Run { latencies_ns: Vec::with_capacity(1 << 16), ..Run::default() };
    let mut in_flight = 0usize;
    // Whether a connection sends again once answered.
    let goes_on = |conn: &Conn, now: Instant| match plan.per_connection {
        Some(n) => conn.answered < n + 1,
        None => {
            now < plan.window_end
                || (now < plan.send_end && after_window.load(Ordering::Relaxed))
        }
    };
    for conn in conns.iter_mut() {
        if goes_on(conn, plan.start) {
            send_next(conn, &epoll, &mut run, &mut in_flight);
        }
    }

    let mut events = vec![EpollEvent::empty(); conns.len().clamp(1, 1024)];
    // Room for a whole book page in one read.
    let mut scratch = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        let sending_over = plan.per_connection.is_some()
            || now >= plan.send_end
            || (now >= plan.window_end
                && !after_window.load(Ordering::Relaxed));
        if in_flight == 0 && sending_over {
            break;
        }
        if now >= plan.hard_end {
            run.unanswered += in_flight as u64;
            break;
        }
        // Wake up in time to stop sending.
        let next = [plan.send_end, plan.hard_end]
            .into_iter()
            .filter(|t| *t > now)
            .min()
            .unwrap_or(plan.hard_end);
        let wait_ms = (next - now).as_millis().clamp(1, 100) as u16;
        let ready = match epoll.wait(&mut events, wait_ms) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(format!("epoll_wait: {e}")),
        };
        for event in &events[..ready] {
            let conn = &mut conns[event.data() as usize];
            if !conn.alive {
                continue;
            }
            if conn.wants_out && event.events().contains(EpollFlags::EPOLLOUT) {
                write_rest(conn, &epoll, &mut run, &mut in_flight);
                if !conn.alive {
                    continue;
                }
            }
            // Read until the kernel's receive queue is empty (a short read
            // means it is): edge-triggered epoll reports only new data.
            let mut got_eof = false;
            loop {
                match (&conn.stream).read(&mut scratch) {
                    Ok(0) => {
                        got_eof = true;
                        break;
                    }
                    Ok(n) => {
                        conn.reply.extend_from_slice(&scratch[..n]);
                        if n < scratch.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        in_flight -= usize::from(conn.outstanding);
                        run.fail(conn, &epoll, format!("recv: {e}"));
                        break;
                    }
                }
            }
            if !conn.alive {
                continue;
            }
            let checked =
                check_complete(&conn.protocol, &conn.reply, &conn.request);
            if let Some(checked) = checked {
                let answered_at = Instant::now();
                let problem = if !conn.outstanding {
                    Some("a reply to no request".to_string())
                } else {
                    checked.err()
                };
                if let Some(problem) = problem {
                    in_flight -= usize::from(conn.outstanding);
                    run.fail(conn, &epoll, problem);
                    continue;
                }
                conn.reply.clear();
                conn.outstanding = false;
                in_flight -= 1;
                conn.answered += 1;
                run.verified += 1;
                if plan.window_start <= answered_at
                    && answered_at < plan.window_end
                {
                    run.requests += 1;
                    run.latencies_ns
                        .push((answered_at - conn.sent_at).as_nanos() as u64);
                }
                if goes_on(conn, answered_at) {
                    send_next(conn, &epoll, &mut run, &mut in_flight);
                }
            }
            if got_eof {
                in_flight -= usize::from(conn.outstanding);
                run.fail(
                    conn,
                    &epoll,
                    "the server closed the connection".to_string(),
                );
            }
        }
    }
    Ok(run)
}

/// CPU counters at one edge of the window.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    server: crate::server::CpuTicks,
    own: u64,
    server_core_idle: Option<u64>,
    /// Busy time of the server's and the generator's CPUs together.
    bench_cores_busy: Option<u64>,
}

fn send_next(
    conn: &mut Conn,
    epoll: &Epoll,
    run: &mut Run,
    in_flight: &mut usize,
) {
    conn.seq += 1;
    conn.set_request();
    conn.outstanding = true;
    *in_flight += 1;
    conn.sent_at = Instant::now();
    write_rest(conn, epoll, run, in_flight);
}

/// Writes what is left of the request; if the kernel takes only part of
/// it, asks epoll to say when the socket is writable again.
fn write_rest(
    conn: &mut Conn,
    epoll: &Epoll,
    run: &mut Run,
    in_flight: &mut usize,
) {
    while conn.written < conn.request.len() {
        match (&conn.stream).write(&conn.request[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                *in_flight -= usize::from(conn.outstanding);
                run.fail(conn, epoll, format!("send: {e}"));
                return;
            }
        }
    }
    let wants_out = conn.written < conn.request.len();
    if wants_out != conn.wants_out {
        let flags =
            if wants_out { INTEREST | EpollFlags::EPOLLOUT } else { INTEREST };
        let mut event = EpollEvent::new(flags, conn.slot);
        if let Err(e) = epoll.modify(conn.stream.as_fd(), &mut event) {
            *in_flight -= usize::from(conn.outstanding);
            run.fail(conn, epoll, format!("epoll_ctl MOD: {e}"));
            return;
        }
        conn.wants_out = wants_out;
    }
}

/// The `p`-th percentile (nearest rank) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_add_up_to_one_window() {
        let turn =
            |requests, ticks, idle: Option<u64>, error: Option<&str>| Run {
                requests,
                window: Duration::from_millis(250),
                latencies_ns: vec![requests * 10],
                server_ticks: ticks,
                server_system_ticks: ticks / 2,
                own_ticks: ticks + 1,
                server_core_idle_ticks: idle,
                verified: requests,
                errors: u64::from(error.is_some()),
                first_errors: error.into_iter().map(String::from).collect(),
                threads: 1,
                other_ticks: Some(1),
                server_switches: Switches {
                    count: 3,
                    span: Duration::from_millis(260),
                    threads: 2,
                    threads_gone: 0,
                    read_time: Duration::from_millis(requests),
                },
                ..Run::default()
            };
        let mut sum = turn(100, 20, Some(2), None);
        sum.absorb(turn(300, 24, Some(1), Some("connection 3: no reply")));
        assert_eq!(sum.requests, 400);
        assert_eq!(sum.window, Duration::from_millis(500));
        assert_eq!(sum.latencies_ns, [1000, 3000]);
        assert_eq!((sum.server_ticks, sum.server_system_ticks), (44, 22));
        assert_eq!(sum.own_ticks, 46);
        assert_eq!(sum.server_core_idle_ticks, Some(3));
        assert_eq!((sum.verified, sum.errors), (400, 1));
        assert_eq!(sum.first_errors, ["connection 3: no reply"]);
        assert_eq!(sum.other_ticks, Some(2));
        assert_eq!(sum.server_switches.count, 6);
        assert_eq!(sum.server_switches.span, Duration::from_millis(520));
        assert_eq!(sum.server_switches.read_time, Duration::from_millis(300));
        // A figure one turn could not read is unknown for the sum.
        sum.absorb(turn(1, 1, None, None));
        assert_eq!(sum.server_core_idle_ticks, None);
    }

    #[test]
    fn a_request_is_one_64_byte_line_that_differs_per_connection_and_request() {
        let a = request_line(7, 1);
        assert_eq!(a.len(), 64);
        assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(a[63], b'\n');
        assert!(a.starts_with(b"c00007 r000000000001 "));
        assert_ne!(a, request_line(7, 2));
        assert_ne!(a, request_line(8, 1));
        // Large ids and sequence numbers still give one 64-byte line.
        let big = request_line(u32::MAX, u64::MAX);
        assert_eq!(big[63], b'\n');
        assert_eq!(big.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn a_reply_passes_when_it_ends_with_the_request() {
        let request = request_line(1, 5);
        assert_eq!(check_reply(&request, &request), Ok(()));
        let mut prefixed = b"echo: ".to_vec();
        prefixed.extend_from_slice(&request);
        assert_eq!(check_reply(&prefixed, &request), Ok(()));
    }

    #[test]
    fn a_wrong_reply_is_caught() {
        let request = request_line(1, 5);
        assert!(check_reply(&request_line(1, 4), &request).is_err());
        assert!(check_reply(&request[..63], &request).is_err(), "no newline");
        assert!(check_reply(&request[1..], &request).is_err(), "cut short");
    }

    #[test]
    fn an_http_response_is_whole_at_its_content_length_and_checked() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(check_response(ok, 5), Some(Ok(())));
        // Cut anywhere before its end: more bytes are due.
        for cut in [0, 10, ok.len() - 6, ok.len() - 1] {
            assert_eq!(check_response(&ok[..cut], 5), None, "cut at {cut}");
        }
        let mut two = ok.to_vec();
        two.extend_from_slice(b"H");
        assert!(matches!(check_response(&two, 5), Some(Err(_))));
        let wrong_length = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell";
        assert!(matches!(check_response(wrong_length, 5), Some(Err(_))));
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n";
        assert!(matches!(check_response(not_found, 5), Some(Err(_))));
        let endless = vec![b'x'; MAX_HEAD + 1];
        assert!(matches!(check_response(&endless, 5), Some(Err(_))));
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
