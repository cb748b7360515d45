//! Hostile clients against the servers: what each one does to a client that
//! idles, trickles, half-closes, resets, sends garbage or a line without
//! end, arrives in a crowd of a thousand, or finds the server out of file
//! descriptors.
//!
//! Every case runs against a server of its own (a child process on port 0,
//! loopback only), so that its descriptor count and memory are its own.
//! While the hostile client does its worst, a well-behaved client sends
//! lines and checks it gets each one back. Afterwards the server must still
//! run, answer a new client, and be back to the descriptors it had before
//! (so nothing leaked); the long line must not have grown its memory.
//!
//! What happened in each case becomes one cell of the table in the book's
//! reliability appendix. The table is computed here and compared with the
//! committed `book/src/reliability/results.md`; after a server changes on
//! purpose, `UPDATE_RELIABILITY=1 cargo test hostile` rewrites it.
//! Servers that serve one client at a time (lessons 2 and 9) cannot serve
//! the good client while an idle or slow one holds them: the table says
//! so, and the test checks that this is what happens.
//!
//! `HOSTILE_ONLY=10:Crowd` (or `HOSTILE_ONLY=Crowd`) runs one case only,
//! printing what it found and checking no table, for chasing a failure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

use crate::support::{Server, bin, root};

/// The idle limit every server gets (`--idle` or `--timeout`): short, so
/// the suite is quick, and four times [`PROMPT`], so "served at once" and
/// "waited for the idle one to be dropped" cannot be confused.
const IDLE: Duration = Duration::from_secs(2);

/// Lesson 9's per-request deadline (`--deadline`), shorter than the
/// slowloris client takes to send its line.
const DEADLINE: Duration = Duration::from_secs(1);

/// A reply within this is "at once". Loopback round trips take
/// microseconds; this leaves room for a loaded two-core machine.
const PROMPT: Duration = Duration::from_millis(500);

/// The longest any single wait may take before the case fails: a reply,
/// a server dropping a client, the descriptors going back to baseline.
const PATIENCE: Duration = Duration::from_secs(15);

/// The well-behaved client's round trips per case, and its pace.
const GOOD_ROUNDS: usize = 5;
const GOOD_PACE: Duration = Duration::from_millis(20);

/// The slowloris client: a line of this many bytes, one every
/// [`SLOW_PACE`]: it takes longer than [`IDLE`], though no wait between
/// two bytes comes near it.
const SLOW_BYTES: usize = 130;
const SLOW_PACE: Duration = Duration::from_millis(20);

/// How much garbage, and the line with no end.
const RANDOM_BYTES: usize = 64 * 1024;
const LONG_LINE: usize = 1024 * 1024;

/// How much the server's resident memory may grow while it is sent the
/// 1 MiB line: less than the line, so a server that buffered it whole fails.
const MEMORY_GROWTH_LIMIT_KB: u64 = 1024;

/// The idle limit in the crowd case. When a crowd overflows an accept
/// queue, the kernel drops handshakes and data, and a client's first line
/// may take seconds of retransmissions to arrive (lesson 8): a 2 s idle
/// limit then closes connections whose clients are still sending. That is
/// a real effect of short idle limits, but not what this case is about.
const CROWD_IDLE: &str = "8";

/// How long the servers may take to be back to their baseline after the
/// crowd. A crowd that overflows an accept queue can leave the server
/// holding a connection whose client has already closed its end (we saw
/// it ESTABLISHED on the server's side, TIME_WAIT on the client's): the
/// kernel created it late, from a segment of a handshake it had dropped
/// before. Nobody will ever send on it; only the idle limit ends it, and a
/// one-at-a-time server (lesson 9) serves nobody else meanwhile. This
/// allows for a few of them, one after the other.
const CROWD_SETTLE: Duration = Duration::from_secs(15 + 3 * 8);

/// The crowd, and how long it waits on a server whose accept queue is
/// known to overflow (see [`Crowd::Overflows`]): long enough to see several
/// of them answered, not to wait out the kernel's retries.
const CROWD: usize = 1000;
const CROWD_OVERFLOW_WAIT: Duration = Duration::from_secs(5);

/// How long the crowd waits, against the other servers, with nothing
/// happening on any of its sockets: a wait for progress, not a total. The
/// kernel's retransmissions after an overflow take seconds (SYNs again at
/// 1, 3, 7, 15 and 31 s), and a server may first be busy with connections
/// nobody uses (see [`CROWD_SETTLE`]). A total of 30 s can run out on a
/// busy machine: lesson 10's thousand threads drain its accept queue
/// slowly, and a client whose SYN is dropped four times is answered after
/// its retry at 31 s (the case failed once at load 15; at load 24 it took
/// 44 s in all). A server that answers nobody for this long still fails.
const CROWD_PATIENCE: Duration = Duration::from_secs(30);

/// A crowd overflowing an accept queue makes the kernel drop segments and
/// answer some with resets: once in a few dozen runs, one connection of a
/// thousand is reset before its answer, and the server's side with it. A
/// well-behaved client whose connection is lost tries once more. More
/// than this many retries fail the case: a server that drops connections
/// itself would need many.
const CROWD_RETRIES_ALLOWED: usize = 10;

/// The descriptor limit of the server in the EMFILE case: a few more than
/// it needs to listen, well under lesson 11's connection limit (16).
const FD_LIMIT: u64 = 16;

/// How long the suite watches the server's CPU time while it is out of
/// descriptors, and the share above which it counts as spinning.
const EMFILE_WATCH: Duration = Duration::from_millis(500);
const SPIN_SHARE: f64 = 0.2;

/// How many cases run at the same time: most of their time is spent
/// waiting for timers, so many more than the two cores.
const PARALLEL: usize = 16;

/// How many crowds at the same time: each is a thousand connections and,
/// against lesson 10, a thousand threads, and the machine has two cores.
const CROWDS_AT_ONCE: usize = 2;
static CROWDS_RUNNING: (Mutex<usize>, Condvar) =
    (Mutex::new(0), Condvar::new());

/// One of the [`CROWDS_AT_ONCE`] places for a crowd, held while it runs.
struct CrowdPlace;

impl CrowdPlace {
    fn take() -> CrowdPlace {
        let (running, freed) = &CROWDS_RUNNING;
        let mut running = running.lock().unwrap();
        while *running >= CROWDS_AT_ONCE {
            running = freed.wait(running).unwrap();
        }
        *running += 1;
        CrowdPlace
    }
}

impl Drop for CrowdPlace {
    fn drop(&mut self) {
        let (running, freed) = &CROWDS_RUNNING;
        *running.lock().unwrap() -= 1;
        freed.notify_one();
    }
}

/// Where the table lives, relative to the repository root.
const RESULTS: &str = "book/src/reliability/results.md";

/// How a server frames what it is sent.
#[derive(Clone, Copy)]
enum Framing {
    /// Echoes bytes as they arrive (lesson 2).
    Bytes,
    /// Answers each line of at most `max` bytes (without its `\n`) with
    /// itself; a longer line gets `refusal` (possibly nothing) and a close.
    Lines { max: usize, refusal: &'static [u8] },
}

/// A server under test.
struct Spec {
    /// Its column in the tables.
    label: &'static str,
    lesson: u32,
    /// The lesson's subcommand that runs this server.
    subcommand: &'static str,
    args: &'static [&'static str],
    framing: Framing,
    /// Serves one client at a time: the next waits in the accept queue.
    one_at_a_time: bool,
    /// What it does with a crowd.
    crowd: Crowd,
    /// What it does when `accept` fails with EMFILE.
    emfile: Emfile,
}

/// What a server does when `accept` fails with EMFILE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Emfile {
    /// Not run: it holds one client's descriptor at a time.
    NotRun,
    /// Not run: each client is served by a process of its own, and the
    /// parent closes its copy of the connection at once (lesson 10's fork).
    PerProcess,
    /// Retries later; the client waits in the accept queue until a
    /// descriptor is free.
    Waits,
    /// Gives up a spare descriptor it kept for this, accepts the client
    /// and tells it `error: server busy` (lesson 13).
    RefusesWithSpare,
}

impl Spec {
    /// The server's arguments in `case`: [`Spec::args`], with the idle
    /// limit (`--idle`, or lesson 2's `--timeout`) at [`CROWD_IDLE`] for the crowd.
    fn args_for(&self, case: Case) -> Vec<&'static str> {
        let mut args = self.args.to_vec();
        if case == Case::Crowd {
            for i in 1..args.len() {
                if matches!(args[i - 1], "--idle" | "--timeout") {
                    args[i] = CROWD_IDLE;
                }
            }
        }
        args
    }
}

/// What a server is expected to do with [`CROWD`] clients at once.
#[derive(Clone, Copy)]
enum Crowd {
    /// Answers every one within [`CROWD_PATIENCE`].
    AllAnswered,
    /// Answers some, tells the others `error: server busy`: at most this
    /// many connections are open at a time.
    Limited(usize),
    /// Its accept queue (`listen` backlog this long) overflows: the kernel
    /// drops handshakes, which the clients retry after 1 s, 3 s, 7 s...,
    /// so some are still waiting when the case ends (lesson 8).
    Overflows(usize),
}

const TOO_LONG: &[u8] = b"error: line too long\n";
const BUSY: &[u8] = b"error: server busy\n";

fn specs() -> Vec<Spec> {
    vec![
        Spec {
            label: "lesson 2",
            lesson: 2,
            subcommand: "server",
            // The default backlog (5) would leave most of the crowd retrying
            // its SYN for seconds (lesson 8); the case is about the server.
            args: &["--timeout", "2", "--backlog", "1024"],
            framing: Framing::Bytes,
            one_at_a_time: true,
            crowd: Crowd::AllAnswered,
            emfile: Emfile::NotRun,
        },
        Spec {
            label: "lesson 9",
            lesson: 9,
            subcommand: "server",
            args: &["--idle", "2", "--deadline", "1"],
            framing: Framing::Lines { max: 64 * 1024 - 1, refusal: b"" },
            one_at_a_time: true,
            crowd: Crowd::Overflows(16),
            emfile: Emfile::NotRun,
        },
        Spec {
            label: "lesson 10",
            lesson: 10,
            subcommand: "server",
            args: &["--idle", "2"],
            framing: Framing::Lines { max: 1024, refusal: TOO_LONG },
            one_at_a_time: false,
            crowd: Crowd::AllAnswered,
            emfile: Emfile::Waits,
        },
        Spec {
            // A process per connection: the same conversation as a thread's.
            label: "lesson 10 fork",
            lesson: 10,
            subcommand: "fork",
            args: &["--idle", "2"],
            framing: Framing::Lines { max: 1024, refusal: TOO_LONG },
            one_at_a_time: false,
            crowd: Crowd::AllAnswered,
            emfile: Emfile::PerProcess,
        },
        Spec {
            label: "lesson 11",
            lesson: 11,
            subcommand: "server",
            args: &["--idle", "2"],
            framing: Framing::Lines { max: 1024, refusal: TOO_LONG },
            one_at_a_time: false,
            crowd: Crowd::Limited(16),
            emfile: Emfile::Waits,
        },
        Spec {
            label: "lesson 12",
            lesson: 12,
            subcommand: "server",
            args: &["--idle", "2"],
            framing: Framing::Lines { max: 1024, refusal: TOO_LONG },
            one_at_a_time: false,
            // Its limit (--max-conns, 1024 by default) is above the crowd.
            crowd: Crowd::AllAnswered,
            emfile: Emfile::Waits,
        },
        Spec {
            label: "lesson 13",
            lesson: 13,
            subcommand: "server",
            args: &["--idle", "2"],
            framing: Framing::Lines { max: 1024, refusal: TOO_LONG },
            one_at_a_time: false,
            crowd: Crowd::AllAnswered,
            emfile: Emfile::RefusesWithSpare,
        },
        Spec {
            // Edge-triggered: a server that reads or accepts once per event
            // instead of until EAGAIN stalls (pitfall 22).
            label: "lesson 13 --edge",
            lesson: 13,
            subcommand: "server",
            args: &["--idle", "2", "--edge"],
            framing: Framing::Lines { max: 1024, refusal: TOO_LONG },
            one_at_a_time: false,
            crowd: Crowd::AllAnswered,
            emfile: Emfile::RefusesWithSpare,
        },
    ]
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Case {
    Idle,
    Slowloris,
    HalfClose,
    Reset,
    Random,
    LongLine,
    Crowd,
    Emfile,
}

const CASES: [Case; 8] = [
    Case::Idle,
    Case::Slowloris,
    Case::HalfClose,
    Case::Reset,
    Case::Random,
    Case::LongLine,
    Case::Crowd,
    Case::Emfile,
];

impl Case {
    /// The table's first column: what the hostile client does.
    fn describe(self) -> String {
        match self {
            Case::Idle => "connects and never sends".to_string(),
            Case::Slowloris => format!(
                "slowloris: a {SLOW_BYTES}-byte line, a byte every {} ms ({:.1} s)",
                SLOW_PACE.as_millis(),
                (SLOW_PACE * SLOW_BYTES as u32).as_secs_f64()
            ),
            Case::HalfClose => {
                "a line and half of another, then `shutdown(SHUT_WR)`"
                    .to_string()
            }
            Case::Reset => {
                "half a request, then a reset (`SO_LINGER` 0, close)"
                    .to_string()
            }
            Case::Random => {
                format!("{} KiB of random bytes", RANDOM_BYTES / 1024)
            }
            Case::LongLine => format!(
                "a {} MiB line with no newline",
                LONG_LINE / (1024 * 1024)
            ),
            Case::Crowd => format!("{CROWD} clients at once, a line each"),
            Case::Emfile => {
                format!(
                    "connections until `accept` fails with EMFILE (limit: {FD_LIMIT} fds)"
                )
            }
        }
    }
}

/// What one case found, for the table.
struct Cell {
    /// What the hostile client got.
    hostile: String,
    /// What the well-behaved client saw meanwhile.
    good: String,
    /// The case could not run here (e.g. too few file descriptors): the
    /// committed cells are kept.
    skipped: bool,
}

/// One column of a [`Cell`].
type Column = fn(&Cell) -> &str;

/// The two tables: what the hostile client got, what the good one saw.
const TABLES: [(&str, Column); 2] = [
    ("What the hostile client got", |cell| &cell.hostile),
    ("What a well-behaved client saw meanwhile", |cell| &cell.good),
];

/// The reliability appendix quotes the limits the suite runs with; they
/// must be the ones this file uses.
#[test]
fn the_appendix_quotes_the_limits_the_suite_uses() {
    let text = fs::read_to_string(root().join("book/src/reliability.md"))
        .expect("reliability.md");
    // Line breaks in the prose are only where the text was wrapped.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for quoted in [
        format!("an idle limit of {} s everywhere", IDLE.as_secs()),
        format!("request deadline of {} s", DEADLINE.as_secs()),
        format!("with an idle limit of {CROWD_IDLE} s"),
        format!(
            "waits up to {} s, not {} s",
            CROWD_SETTLE.as_secs(),
            PATIENCE.as_secs()
        ),
        format!("more than {CROWD_RETRIES_ALLOWED} such retries"),
    ] {
        assert!(
            text.contains(&quoted),
            "book/src/reliability.md no longer says {quoted:?}"
        );
    }
}

#[test]
fn hostile_clients_against_every_server() {
    let specs = Arc::new(specs());
    let mut jobs: Vec<(usize, Case)> = Vec::new();
    // The long waits first, so they overlap everything else.
    let mut by_length = CASES;
    by_length.sort_by_key(|case| match case {
        Case::Slowloris | Case::Idle => 0,
        Case::Crowd => 1,
        _ => 2,
    });
    let only = std::env::var("HOSTILE_ONLY").ok();
    for case in by_length {
        for s in 0..specs.len() {
            if only.as_ref().is_some_and(|o| {
                *o != format!(
                    "{}:{case:?}",
                    specs[s].label.trim_start_matches("lesson ")
                ) && *o != format!("{case:?}")
            }) {
                continue;
            }
            jobs.push((s, case));
        }
    }
    let started = Instant::now();
    let jobs = Arc::new(Mutex::new(jobs.into_iter()));
    let results = Arc::new(Mutex::new(BTreeMap::new()));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (jobs, results, specs) =
                (Arc::clone(&jobs), Arc::clone(&results), Arc::clone(&specs));
            thread::spawn(move || {
                loop {
                    let next = jobs.lock().unwrap().next();
                    let Some((s, case)) = next else { return };
                    let spec = &specs[s];
                    let began = Instant::now();
                    let outcome = run_case(spec, case);
                    eprintln!(
                        "hostile: {} {case:?}: {:.1} s: {}",
                        spec.label,
                        began.elapsed().as_secs_f64(),
                        match &outcome {
                            Ok(cell) =>
                                format!("{} / {}", cell.hostile, cell.good),
                            Err(err) => format!("FAILED: {err}"),
                        }
                    );
                    results.lock().unwrap().insert((case, s), outcome);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a case panicked");
    }
    eprintln!("hostile: all cases in {:.1} s", started.elapsed().as_secs_f64());

    let results = Arc::try_unwrap(results).ok().unwrap().into_inner().unwrap();
    let failures: Vec<String> = results
        .iter()
        .filter_map(|((case, s), outcome)| {
            outcome
                .as_ref()
                .err()
                .map(|err| format!("{} / {case:?}: {err}", specs[*s].label))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} hostile cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    let cells: BTreeMap<(Case, usize), Cell> =
        results.into_iter().map(|(k, v)| (k, v.unwrap())).collect();
    if only.is_none() {
        compare_with_book(&specs, &cells);
    }
}

/// Writes or checks the committed tables.
fn compare_with_book(specs: &[Spec], cells: &BTreeMap<(Case, usize), Cell>) {
    let path = root().join(RESULTS);
    let committed = fs::read_to_string(&path).unwrap_or_default();
    let committed_cells = parse_tables(&committed);
    let mut text = String::new();
    text.push_str(
        "<!-- Computed by tests/course/hostile.rs, which fails when a server no longer does this; \
         `UPDATE_RELIABILITY=1 cargo test hostile` rewrites it. -->\n",
    );
    for (t, (title, column)) in TABLES.iter().enumerate() {
        let _ = write!(text, "\n### {title}\n\n| hostile client |");
        for spec in specs {
            let _ = write!(text, " {} |", spec.label);
        }
        text.push_str("\n|---|");
        for _ in specs {
            text.push_str("---|");
        }
        text.push('\n');
        for case in CASES {
            let _ = write!(text, "| {} |", case.describe());
            for (s, spec) in specs.iter().enumerate() {
                let cell = &cells[&(case, s)];
                let found = column(cell).to_string();
                let shown = if cell.skipped {
                    eprintln!(
                        "hostile: {} / {case:?} did not run here: {found}",
                        spec.label
                    );
                    committed_cells
                        .get(&(t, case.describe(), spec.label.to_string()))
                        .cloned()
                        .unwrap_or(found)
                } else {
                    found
                };
                let _ = write!(text, " {shown} |");
            }
            text.push('\n');
        }
    }
    text.push_str("\nThe servers were started as:\n\n");
    for spec in specs {
        let _ = writeln!(
            text,
            "- {}: `lesson-{:02} server {}`",
            spec.label,
            spec.lesson,
            spec.args.join(" ")
        );
    }
    let _ = writeln!(
        text,
        "\nIn the crowd case, the idle limit is {CROWD_IDLE} s instead (see above)."
    );
    if std::env::var_os("UPDATE_RELIABILITY").is_some() {
        fs::create_dir_all(path.parent().unwrap())
            .expect("create the results directory");
        fs::write(&path, &text).expect("write the results tables");
        return;
    }
    assert_eq!(
        committed, text,
        "{RESULTS} no longer says what the servers do; if the change is meant, run \
         UPDATE_RELIABILITY=1 cargo test hostile and review the diff"
    );
}

/// (table number, case description, column label) -> cell, from the
/// committed tables.
fn parse_tables(text: &str) -> BTreeMap<(usize, String, String), String> {
    let mut cells = BTreeMap::new();
    let mut table = None;
    let mut labels: Vec<String> = Vec::new();
    for row in text.lines().filter(|l| l.starts_with('|')) {
        let columns: Vec<&str> = row.split('|').map(str::trim).collect();
        if columns.get(1) == Some(&"hostile client") {
            table = Some(table.map_or(0, |t| t + 1));
            labels = columns.iter().map(|c| c.to_string()).collect();
            continue;
        }
        let (Some(t), Some(case)) = (table, columns.get(1)) else { continue };
        for (i, label) in labels.iter().enumerate().skip(2) {
            if let Some(cell) = columns.get(i) {
                cells.insert(
                    (t, case.to_string(), label.clone()),
                    cell.to_string(),
                );
            }
        }
    }
    cells
}

/// One case against a fresh server: the hostile client and the good one
/// at the same time, then the checks that the server came through.
fn run_case(spec: &Spec, case: Case) -> Result<Cell, String> {
    let not_run = match spec.emfile {
        Emfile::NotRun => Some(
            "not run: one client at a time, so one descriptor is all it needs",
        ),
        Emfile::PerProcess => Some(
            "not run: a process per client, and the parent keeps no client's \
             descriptor",
        ),
        _ => None,
    };
    if case == Case::Emfile
        && let Some(why) = not_run
    {
        return Ok(Cell {
            hostile: why.to_string(),
            good: "not run".to_string(),
            skipped: false,
        });
    }
    if case == Case::Crowd
        && let Err(why) = enough_descriptors(CROWD as u64 * 2)
    {
        return Ok(Cell {
            hostile: format!("not run: {why}"),
            good: "not run".to_string(),
            skipped: true,
        });
    }
    let _place = (case == Case::Crowd).then(CrowdPlace::take);
    let mut command = Command::new(bin(spec.lesson));
    command
        .args([spec.subcommand, "--addr", "127.0.0.1:0"])
        .args(spec.args_for(case));
    if case == Case::Emfile {
        limit_descriptors(&mut command, FD_LIMIT);
    }
    die_with_this_thread(&mut command);
    let mut server = Server::start(&mut command);
    let addr: SocketAddr = server
        .addr
        .parse()
        .map_err(|e| format!("address {:?}: {e}", server.addr))?;
    let pid = server.pid();
    // One client served and gone before the baseline is taken: a server
    // that answered has finished starting up (lesson 11 opens a socket
    // after it prints its address), and what a first connection allocates
    // once is not counted as growth.
    // It waits for the server's FIN, so the server has closed its socket.
    one_client(addr, "warm-up")?;
    let baseline = fd_count(pid)?;
    let rss_before = status_kb(pid, "VmRSS")?;

    let found = std::thread::scope(
        |scope| -> Result<(String, String), String> {
            let (hostile, good) = match case {
                Case::Crowd => {
                    // The good client first: a one-at-a-time server serves it
                    // while the crowd waits, a limited one counts it as open.
                    let (tx, rx) = channel();
                    let good = scope
                        .spawn(move || good_client(addr, "good", Some(tx)));
                    rx.recv_timeout(PATIENCE).map_err(|_| {
                        "the good client's first reply never came".to_string()
                    })?;
                    let hostile = scope.spawn(move || crowd(addr, spec));
                    (hostile, good)
                }
                Case::Emfile => {
                    let (tx, rx) = channel();
                    let good = scope
                        .spawn(move || good_client_slowly(addr, "good", tx));
                    rx.recv_timeout(PATIENCE).map_err(|_| {
                        "the good client's first reply never came".to_string()
                    })?;
                    let hostile =
                        scope.spawn(move || emfile(addr, pid, spec.emfile));
                    (hostile, good)
                }
                _ => {
                    let (tx, rx) = channel();
                    let hostile =
                        scope.spawn(move || hostile(case, addr, spec, tx));
                    // The good client comes once the hostile one is connected
                    // and under way: it is second in any queue.
                    rx.recv_timeout(PATIENCE).map_err(|_| {
                        "the hostile client never got going".to_string()
                    })?;
                    let good =
                        scope.spawn(move || good_client(addr, "good", None));
                    (hostile, good)
                }
            };
            let good = good
                .join()
                .map_err(|_| "the good client panicked".to_string())?;
            let hostile = hostile
                .join()
                .map_err(|_| "the hostile client panicked".to_string())?;
            let hostile =
                hostile.map_err(|e| format!("hostile client: {e}"))?;
            let latencies = good.map_err(|e| format!("good client: {e}"))?;
            // Every reply came within PATIENCE, or the good client failed.
            // How soon is claimed only where it cannot depend on the machine's
            // load: "at once" against a server with nothing else to do, "waits"
            // where the wait is the idle limit or the deadline.
            let served = classify(&latencies);
            let good = match (case, spec.one_at_a_time) {
            (Case::Idle | Case::Slowloris, true) => {
                (served == Served::AfterIt).then_some("waits until it is gone")
            }
            (Case::Crowd, _) => Some("served (it came before the crowd)"),
            (Case::Emfile, _) => (served == Served::AtOnce).then_some(match spec.emfile {
                Emfile::RefusesWithSpare => "served at once; a newcomer is told `error: server busy`",
                _ => "served at once; a newcomer waits for a free descriptor",
            }),
            (_, true) => Some("served after it"),
            (_, false) => (served == Served::AtOnce).then_some("served at once"),
        };
            let good = good.ok_or(format!(
                "the good client was served {served:?}: {latencies:?}"
            ))?;
            Ok((hostile, good.to_string()))
        },
    );
    let (hostile, good) = found.map_err(|e| {
        format!("{e}\nserver printed:\n{}", tail(&server.printed(), &e))
    })?;

    let mut after = || -> Result<(), String> {
        if !server.is_running() {
            return Err("the server is gone".to_string());
        }
        // Whatever the case left behind is dealt with first: no connection
        // held, none waiting in the listener's queue, no descriptor more
        // than before.
        let settle = if case == Case::Crowd { CROWD_SETTLE } else { PATIENCE };
        let settled = wait_until_for(settle, || {
            // Cheapest first: /proc/net/tcp lists every socket on the
            // machine, TIME_WAIT included, and can take milliseconds to read.
            Ok(fd_count(pid)? == baseline && queued(pid)? == 0)
        })?;
        if !settled {
            return Err(format!(
                "not back to its baseline after {settle:?}: {} descriptors open, {baseline} before, {} \
                 waiting to be accepted: {}",
                fd_count(pid)?,
                queued(pid)?,
                descriptors(pid)
            ));
        }
        one_client(addr, "after")?;
        wait_for_fds(pid, baseline)?;
        if case == Case::LongLine {
            let peak = status_kb(pid, "VmHWM")?;
            let now = status_kb(pid, "VmRSS")?;
            eprintln!(
                "hostile: {} long line: VmRSS {rss_before} kB before, {now} kB after, peak {peak} kB",
                spec.label
            );
            if peak.saturating_sub(rss_before) >= MEMORY_GROWTH_LIMIT_KB {
                return Err(format!(
                    "memory grew from {rss_before} kB to a peak of {peak} kB: it keeps what it is sent"
                ));
            }
        }
        if !server.is_running() {
            return Err("the server is gone".to_string());
        }
        Ok(())
    };
    let checked = after();
    checked.map_err(|e| {
        format!(
            "afterwards: {e}\nits connections: {}\nserver printed:\n{}",
            tcp_states(pid),
            tail(&server.printed(), &e)
        )
    })?;
    Ok(Cell { hostile, good, skipped: false })
}

/// The last lines a server printed, for a failure message, and before
/// them every line about a client address that `error` names.
fn tail(text: &str, error: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let named: Vec<&str> = error
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .filter(|word| word.starts_with("127.0.0.1:"))
        .collect();
    let about: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| named.iter().any(|a| line.contains(a)))
        .collect();
    let mut shown = String::new();
    if !about.is_empty() {
        shown = format!(
            "(about those clients)\n{}\n(last lines)\n",
            about.join("\n")
        );
    }
    shown + &lines[lines.len().saturating_sub(30)..].join("\n")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Served {
    /// Every reply came at once.
    AtOnce,
    /// The first reply came only after a wait (the server was busy with
    /// the hostile client); the rest at once.
    AfterIt,
    /// Some other reply came late.
    Late,
}

fn classify(latencies: &[Duration]) -> Served {
    let slow: Vec<usize> =
        (0..latencies.len()).filter(|&i| latencies[i] >= PROMPT).collect();
    match slow.as_slice() {
        [] => Served::AtOnce,
        [0] => Served::AfterIt,
        _ => Served::Late,
    }
}

/// Connects with a bounded wait.
fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, PATIENCE)
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    stream
        .set_write_timeout(Some(PATIENCE))
        .map_err(|e| format!("SO_SNDTIMEO: {e}"))?;
    Ok(stream)
}

/// Sends `line` and reads until its echo is back, bounded by [`PATIENCE`].
fn round_trip(stream: &mut TcpStream, line: &[u8]) -> Result<(), String> {
    stream.write_all(line).map_err(|e| format!("send: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < line.len() {
        match stream.read(&mut buf) {
            Ok(0) => {
                return Err(format!(
                    "closed by the server after {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Err(format!(
                    "recv: {e} (after {:?})",
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
    if got != line {
        return Err(format!(
            "sent {:?}, got {:?}",
            String::from_utf8_lossy(line),
            String::from_utf8_lossy(&got)
        ));
    }
    Ok(())
}

/// A client that connects, is answered once, and leaves.
/// Then it ends its side and waits for the server's end: once it has
/// read EOF, the server has closed the connection's descriptor.
fn one_client(addr: SocketAddr, name: &str) -> Result<(), String> {
    let mut stream = connect(addr).map_err(|e| format!("{name}: {e}"))?;
    round_trip(&mut stream, format!("{name} client\n").as_bytes())
        .map_err(|e| format!("{name}: {e}"))?;
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("{name}: shutdown: {e}"))?;
    let rest = read_to_end(&mut stream).map_err(|e| format!("{name}: {e}"))?;
    match (rest.bytes.is_empty(), rest.error) {
        (true, None) => Ok(()),
        (_, error) => Err(format!(
            "{name}: after its reply, got {:?} and {error:?}",
            rest.bytes
        )),
    }
}

/// The well-behaved client: [`GOOD_ROUNDS`] lines, each answered by
/// itself; returns how long each took (the first from the connect on).
/// Says so on `first` once its first reply is in.
fn good_client(
    addr: SocketAddr,
    name: &str,
    first: Option<Sender<()>>,
) -> Result<Vec<Duration>, String> {
    let began = Instant::now();
    let mut stream = connect(addr)?;
    let mut latencies = Vec::new();
    for round in 0..GOOD_ROUNDS {
        let start = if round == 0 { began } else { Instant::now() };
        round_trip(&mut stream, format!("{name} {round}\n").as_bytes())?;
        latencies.push(start.elapsed());
        if round == 0
            && let Some(first) = &first
        {
            let _ = first.send(());
        }
        // Pacing only: spreads the rounds over the hostile client's time.
        thread::sleep(GOOD_PACE);
    }
    Ok(latencies)
}

/// The good client of the EMFILE case: connected before the server runs
/// out of descriptors, it goes on being served while the server is out.
fn good_client_slowly(
    addr: SocketAddr,
    name: &str,
    first: Sender<()>,
) -> Result<Vec<Duration>, String> {
    let mut stream = connect(addr)?;
    let mut latencies = Vec::new();
    let began = Instant::now();
    let mut round = 0;
    // Rounds spread over the time the hostile side holds the server at its
    // limit (it needs about EMFILE_WATCH once the limit is reached).
    while round < GOOD_ROUNDS || began.elapsed() < EMFILE_WATCH * 2 {
        let start = Instant::now();
        round_trip(&mut stream, format!("{name} {round}\n").as_bytes())?;
        latencies.push(start.elapsed());
        if round == 0 {
            let _ = first.send(());
        }
        round += 1;
        thread::sleep(GOOD_PACE * 5);
    }
    Ok(latencies)
}

/// The hostile clients that are one connection each; `going` is told once
/// the connection is made and the hostile part has begun.
fn hostile(
    case: Case,
    addr: SocketAddr,
    spec: &Spec,
    going: Sender<()>,
) -> Result<String, String> {
    let mut stream = connect(addr)?;
    match case {
        Case::Idle => {
            let began = Instant::now();
            let _ = going.send(());
            stream
                .set_read_timeout(Some(IDLE + PATIENCE))
                .map_err(|e| e.to_string())?;
            let got = read_to_end(&mut stream)?;
            let waited = began.elapsed();
            if waited < IDLE.mul_f64(0.9) {
                return Err(format!(
                    "closed after {waited:?}, before the idle limit of {IDLE:?}"
                ));
            }
            if !got.bytes.is_empty() {
                return Err(format!(
                    "sent {:?} to a client that never asked",
                    String::from_utf8_lossy(&got.bytes)
                ));
            }
            if let Some(err) = got.error {
                return Err(format!("reset instead of closed: {err}"));
            }
            Ok(format!("closed after the {} s idle limit", IDLE.as_secs()))
        }
        Case::Slowloris => {
            stream
                .set_nodelay(true)
                .map_err(|e| format!("TCP_NODELAY: {e}"))?;
            let _ = going.send(());
            let began = Instant::now();
            let line = slow_line();
            let mut sent = 0;
            for byte in &line {
                if stream.write_all(std::slice::from_ref(byte)).is_err() {
                    break;
                }
                sent += 1;
                // Pacing is the point of this client.
                thread::sleep(SLOW_PACE);
            }
            let got = read_until_newline(&mut stream)?;
            let took = began.elapsed();
            if got == line {
                if took < IDLE {
                    return Err(format!(
                        "the line took {took:?}, less than the idle limit: proves nothing"
                    ));
                }
                return Ok(format!(
                    "answered in full after {:.1} s: each byte restarts the idle limit",
                    (SLOW_PACE * SLOW_BYTES as u32).as_secs_f64()
                ));
            }
            // Dropped: only a deadline per request (lesson 9) or per line
            // (lesson 11) does that.
            let (limit, what) = line_deadline(spec);
            if !got.is_empty()
                || took < limit.mul_f64(0.9)
                || took > limit + PROMPT * 2
            {
                return Err(format!(
                    "after {took:?} and {sent} bytes sent, got {:?} and no full reply",
                    String::from_utf8_lossy(&got)
                ));
            }
            Ok(format!("dropped at the {} s {what}", limit.as_secs()))
        }
        Case::HalfClose => {
            let whole = b"a whole line\n";
            let part = b"and half of";
            stream
                .write_all(whole)
                .and_then(|()| stream.write_all(part))
                .map_err(|e| format!("send: {e}"))?;
            stream
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            let _ = going.send(());
            let got = read_to_end(&mut stream)?;
            if got.error.is_some() {
                return Err(format!(
                    "the server reset the connection after {:?}",
                    String::from_utf8_lossy(&got.bytes)
                ));
            }
            match (spec.framing, got.bytes.as_slice()) {
                (Framing::Bytes, b)
                    if b == [&whole[..], &part[..]].concat() =>
                {
                    Ok("all bytes echoed, then closed".to_string())
                }
                (Framing::Lines { .. }, b) if b == whole => {
                    Ok("whole line answered, half line dropped, closed"
                        .to_string())
                }
                (_, b) => Err(format!("got {:?}", String::from_utf8_lossy(b))),
            }
        }
        Case::Reset => {
            let first = b"first line\n";
            stream
                .write_all(first)
                .and_then(|()| stream.write_all(b"half a req"))
                .map_err(|e| e.to_string())?;
            // Its first line answered: the server is serving this connection
            // and has the half request in its buffer or socket.
            let mut got = Vec::new();
            let mut buf = [0u8; 64];
            while !got.starts_with(first) {
                match stream.read(&mut buf) {
                    Ok(0) => return Err("closed before answering".to_string()),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
            let _ = going.send(());
            SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .map_err(|e| format!("SO_LINGER: {e}"))?;
            drop(stream);
            Ok("the server closed its end".to_string())
        }
        Case::Random => {
            let data = random_bytes(RANDOM_BYTES);
            let _ = going.send(());
            let got = send_while_reading(stream, data.clone())?;
            let expected = expected_replies(spec.framing, &data);
            if got.bytes != expected.bytes {
                return Err(mismatch(&got.bytes, &expected.bytes));
            }
            Ok(expected.describe)
        }
        Case::LongLine => {
            let data = vec![b'x'; LONG_LINE];
            let _ = going.send(());
            let got = send_while_reading(stream, data.clone())?;
            let expected = expected_replies(spec.framing, &data);
            if got.bytes != expected.bytes {
                return Err(mismatch(&got.bytes, &expected.bytes));
            }
            Ok(expected.describe)
        }
        Case::Crowd | Case::Emfile => unreachable!("not a one-connection case"),
    }
}

fn mismatch(got: &[u8], expected: &[u8]) -> String {
    let same = got.iter().zip(expected).take_while(|(a, b)| a == b).count();
    format!(
        "got {} bytes back, expected {}; they differ from byte {same}: got {:?}, expected {:?}",
        got.len(),
        expected.len(),
        String::from_utf8_lossy(&got[same..got.len().min(same + 40)]),
        String::from_utf8_lossy(&expected[same..expected.len().min(same + 40)]),
    )
}

/// What a client read until the end of the connection.
struct Received {
    bytes: Vec<u8>,
    /// How it ended, if not with a clean EOF (a reset).
    error: Option<io::Error>,
}

/// Reads until EOF or an error other than a timeout; a timeout fails.
fn read_to_end(stream: &mut TcpStream) -> Result<Received, String> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Received { bytes, error: None }),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "the server neither answered nor closed (got {} bytes)",
                    bytes.len()
                ));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Ok(Received { bytes, error: Some(e) }),
        }
    }
}

/// Reads until a newline, EOF or a reset; a timeout fails.
fn read_until_newline(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) =>
            {
                return Err(format!(
                    "no reply and no close (got {:?})",
                    String::from_utf8_lossy(&got)
                ));
            }
            Err(_) => break,
        }
    }
    Ok(got)
}

/// Sends `data` from one thread while this one reads the replies (a
/// client that did not read would be a different hostile case), then
/// half-closes; returns everything read until the server closed.
fn send_while_reading(
    mut stream: TcpStream,
    data: Vec<u8>,
) -> Result<Received, String> {
    let mut writer = stream.try_clone().map_err(|e| format!("dup: {e}"))?;
    let sender = thread::spawn(move || {
        for chunk in data.chunks(16 * 1024) {
            // The server may close halfway: then the rest has nowhere to go.
            if writer.write_all(chunk).is_err() {
                return;
            }
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let got = read_to_end(&mut stream);
    // The reader saw the end; if the sender is still blocked, close it out.
    let _ = stream.shutdown(Shutdown::Both);
    sender.join().map_err(|_| "the sending thread panicked".to_string())?;
    got
}

/// What a server should send back for `data`, and the table's words for it.
struct Expected {
    bytes: Vec<u8>,
    describe: String,
}

fn expected_replies(framing: Framing, data: &[u8]) -> Expected {
    let (max, refusal) = match framing {
        Framing::Bytes => {
            return Expected {
                bytes: data.to_vec(),
                describe: format!("all {} bytes echoed", data.len()),
            };
        }
        Framing::Lines { max, refusal } => (max, refusal),
    };
    let mut bytes = Vec::new();
    let mut answered = 0;
    let mut rest = data;
    loop {
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) if end <= max => {
                bytes.extend_from_slice(&rest[..=end]);
                answered += 1;
                rest = &rest[end + 1..];
            }
            None if rest.len() <= max => {
                let describe = format!(
                    "{answered} lines answered, the unfinished one dropped at EOF"
                );
                return Expected { bytes, describe };
            }
            _ => {
                bytes.extend_from_slice(refusal);
                let limit = format!("past {max} bytes");
                let refusal =
                    String::from_utf8_lossy(refusal).trim_end().to_string();
                let describe = match (answered, refusal.is_empty()) {
                    (0, true) => format!("closed {limit}, no reply"),
                    (0, false) => format!("`{refusal}` {limit}, closed"),
                    (n, true) => format!("{n} lines answered, closed {limit}"),
                    (n, false) => format!(
                        "{n} lines answered, then `{refusal}` {limit}, closed"
                    ),
                };
                return Expected { bytes, describe };
            }
        }
    }
}

/// The slowloris line: [`SLOW_BYTES`] long with its newline.
fn slow_line() -> Vec<u8> {
    let mut line = b"slowloris ".to_vec();
    line.resize(SLOW_BYTES - 1, b'.');
    line.push(b'\n');
    line
}

/// The same bytes on every run: splitmix64 from a fixed seed. None of its
/// lines is `shutdown`, which would ask lessons 11 to 13 to stop.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x5EED_0FC0_FFEE;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    assert!(!out.split(|&b| b == b'\n').any(|line| line.strip_suffix(b"\r").unwrap_or(line) == b"shutdown"));
    out
}

/// The crowd: [`CROWD`] nonblocking connects at once, then each sends one
/// line and waits for its reply, all driven by one `poll` loop (a client
/// per thread would measure the test's threads, not the server).
fn crowd(addr: SocketAddr, spec: &Spec) -> Result<String, String> {
    #[derive(PartialEq)]
    enum State {
        Connecting,
        Waiting(Vec<u8>),
        Answered,
        Busy,
        /// The connection failed (reset, closed, refused): worth a retry.
        Lost(String),
        /// The server said something it should not have: never retried.
        Wrong(String),
    }
    struct Client {
        socket: Option<Socket>,
        state: State,
        /// Its address, for finding it in the server's log.
        local: Option<SocketAddr>,
        retried: bool,
    }
    fn start(addr: SocketAddr) -> (Option<Socket>, State) {
        let socket =
            match Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None) {
                Ok(socket) => socket,
                Err(e) => return (None, State::Lost(format!("socket: {e}"))),
            };
        let state = match socket.connect(&addr.into()) {
            Ok(()) => State::Connecting,
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                State::Connecting
            }
            Err(e) => State::Lost(format!("connect: {e}")),
        };
        (Some(socket), state)
    }
    let overflows_before = listen_overflows()?;
    let began = Instant::now();
    let mut clients: Vec<Client> = (0..CROWD)
        .map(|_| {
            let (socket, state) = start(addr);
            Client { socket, state, local: None, retried: false }
        })
        .collect();
    let patience = match spec.crowd {
        Crowd::Overflows(_) => CROWD_OVERFLOW_WAIT,
        _ => CROWD_PATIENCE,
    };
    // An overflowing queue is watched for a fixed time; the others for as
    // long as the crowd makes progress.
    let total = matches!(spec.crowd, Crowd::Overflows(_));
    let mut last_progress = began;
    let mut retries = Vec::new();
    loop {
        // A client whose connection was lost tries once more.
        for (i, client) in clients.iter_mut().enumerate() {
            let State::Lost(why) = &client.state else { continue };
            if client.retried {
                continue;
            }
            let local =
                client.local.map_or("not bound".to_string(), |a| a.to_string());
            retries.push(format!(
                "client {i} ({local}): {why} after {:?}",
                began.elapsed()
            ));
            let (socket, state) = start(addr);
            *client = Client { socket, state, local: None, retried: true };
        }
        let active: Vec<usize> = (0..clients.len())
            .filter(|&i| {
                matches!(
                    clients[i].state,
                    State::Connecting | State::Waiting(_)
                )
            })
            .collect();
        let retry_pending = clients
            .iter()
            .any(|c| !c.retried && matches!(c.state, State::Lost(_)));
        let since = if total { began } else { last_progress };
        if (active.is_empty() && !retry_pending) || since.elapsed() > patience {
            break;
        }
        let mut fds: Vec<libc::pollfd> = active
            .iter()
            .map(|&i| libc::pollfd {
                fd: clients[i].socket.as_ref().map_or(-1, |s| s.as_raw_fd()),
                events: if clients[i].state == State::Connecting {
                    libc::POLLOUT
                } else {
                    libc::POLLIN
                },
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let ready = unsafe {
            libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100)
        };
        if ready < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("poll: {err}"));
        }
        for (fd, &i) in fds.iter().zip(&active) {
            if fd.revents == 0 {
                continue;
            }
            last_progress = Instant::now();
            let client = &mut clients[i];
            let Some(socket) = client.socket.as_ref() else { continue };
            let line = format!("crowd {i}\n").into_bytes();
            match &mut client.state {
                State::Connecting => {
                    client.local =
                        socket.local_addr().ok().and_then(|a| a.as_socket());
                    client.state = match socket.take_error() {
                        Ok(None) => match socket.send(&line) {
                            Ok(n) if n == line.len() => {
                                State::Waiting(Vec::new())
                            }
                            Ok(n) => State::Wrong(format!("short send of {n}")),
                            Err(e) => State::Lost(format!("send: {e}")),
                        },
                        Ok(Some(e)) | Err(e) => {
                            State::Lost(format!("connect: {e}"))
                        }
                    };
                }
                State::Waiting(got) => {
                    let mut buf = [0u8; 256];
                    match (&*socket).read(&mut buf) {
                        Ok(0) if got.is_empty() => {
                            client.state =
                                State::Lost("closed, no reply".to_string())
                        }
                        Ok(0) => {
                            client.state = State::Wrong(format!(
                                "closed after {:?}",
                                String::from_utf8_lossy(got)
                            ))
                        }
                        Ok(n) => {
                            got.extend_from_slice(&buf[..n]);
                            if got.ends_with(b"\n") {
                                client.state = if *got == line {
                                    State::Answered
                                } else if got == BUSY {
                                    State::Busy
                                } else {
                                    State::Wrong(format!(
                                        "got {:?}",
                                        String::from_utf8_lossy(got)
                                    ))
                                };
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) if got.is_empty() => {
                            client.state = State::Lost(format!("recv: {e}"))
                        }
                        Err(e) => {
                            client.state = State::Wrong(format!(
                                "recv: {e} after part of a reply"
                            ))
                        }
                    }
                }
                _ => {}
            }
            if !matches!(client.state, State::Connecting | State::Waiting(_)) {
                // Done: close it now, so that a limited server gets its slot back.
                client.socket = None;
            }
        }
    }
    let (mut answered, mut busy, mut waiting, mut failed) =
        (0, 0, 0, Vec::new());
    for (i, client) in clients.iter().enumerate() {
        let local =
            client.local.map_or("not bound".to_string(), |a| a.to_string());
        match &client.state {
            State::Answered => answered += 1,
            State::Busy => busy += 1,
            State::Lost(why) | State::Wrong(why) => {
                failed.push(format!("client {i} ({local}): {why}"))
            }
            State::Connecting | State::Waiting(_) => waiting += 1,
        }
    }
    drop(clients);
    if !retries.is_empty() {
        eprintln!(
            "hostile: {} crowd: {} clients tried again:\n{}",
            spec.label,
            retries.len(),
            retries.join("\n")
        );
    }
    let overflowed = listen_overflows()? > overflows_before;
    let counts = format!(
        "{answered} answered, {busy} told busy, {waiting} still waiting after {patience:?}{}, {} failed, \
         {} tried again",
        if total { "" } else { " with no progress" },
        failed.len(),
        retries.len()
    );
    if !failed.is_empty() || retries.len() > CROWD_RETRIES_ALLOWED {
        let examples: Vec<&String> =
            failed.iter().chain(&retries).take(8).collect();
        return Err(format!(
            "{counts}, e.g.:\n{}",
            examples.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        ));
    }
    match spec.crowd {
        Crowd::AllAnswered if answered == CROWD => {
            Ok(format!("all {CROWD} answered"))
        }
        // How many are told busy depends on how fast the others leave.
        Crowd::Limited(limit) if answered >= 1 && answered + busy == CROWD => {
            Ok(format!(
                "each answered or told `error: server busy` (limit {limit})"
            ))
        }
        // The kernel's count of overflows is for the whole network
        // namespace: other tests can only add to it, and one that did not
        // grow means this queue did not overflow.
        Crowd::Overflows(backlog) if answered >= 1 && overflowed => {
            Ok(format!(
                "answered in turn; its queue (backlog {backlog}) overflowed, the rest retry their handshakes"
            ))
        }
        _ => {
            Err(format!("{counts}; the accept queue overflowed: {overflowed}"))
        }
    }
}

/// The EMFILE case: idle connections until the server holds [`FD_LIMIT`]
/// descriptors, a few more waiting in its accept queue, and one more
/// client, the late one; the server must neither spin nor stop, and must
/// serve the late client once the idle ones leave.
fn emfile(
    addr: SocketAddr,
    pid: u32,
    expect: Emfile,
) -> Result<String, String> {
    let limit = FD_LIMIT as usize;
    // The good client holds one descriptor already; these take the rest,
    // and a few more wait in the queue (accept has nowhere to put them).
    let mut idle = Vec::new();
    for _ in 0..limit {
        idle.push(connect(addr)?);
    }
    let at_limit = wait_until(|| fd_count(pid).map(|n| n >= limit))?;
    if !at_limit {
        return Err(format!(
            "the server never reached its {limit} descriptors: {:?}",
            fd_count(pid)
        ));
    }
    let late_began = Instant::now();
    let late = thread::spawn(move || -> Result<(Vec<u8>, Duration), String> {
        let mut stream = connect(addr)?;
        stream.write_all(b"late client\n").map_err(|e| format!("send: {e}"))?;
        let reply = read_until_newline(&mut stream)?;
        Ok((reply, late_began.elapsed()))
    });
    let cpu_before = cpu_ticks(pid)?;
    let watch_began = Instant::now();
    thread::sleep(EMFILE_WATCH);
    let cpu = (cpu_ticks(pid)? - cpu_before) as f64
        / ticks_per_second()
        / watch_began.elapsed().as_secs_f64();
    let still_full = fd_count(pid)?;
    // A server with a spare descriptor must answer the late client while
    // the idle ones still hold every other descriptor: wait for it first.
    let late = if expect == Emfile::RefusesWithSpare {
        let late =
            late.join().map_err(|_| "the late client panicked".to_string())?;
        drop(idle);
        late
    } else {
        drop(idle);
        late.join().map_err(|_| "the late client panicked".to_string())?
    };
    let (reply, took) = late.map_err(|e| format!("late client: {e}"))?;
    eprintln!(
        "hostile: EMFILE: server at {still_full} fds used {:.0}% CPU; the late client got {:?} after {took:?}",
        cpu * 100.0,
        String::from_utf8_lossy(&reply)
    );
    if still_full < limit {
        return Err(format!(
            "the server dropped below its limit ({still_full} fds) while clients waited"
        ));
    }
    if cpu > SPIN_SHARE {
        return Err(format!(
            "the server used {:.0}% of a CPU while out of descriptors: it spins",
            cpu * 100.0
        ));
    }
    let spin = format!("without spinning (< {:.0}% CPU)", SPIN_SHARE * 100.0);
    match expect {
        Emfile::Waits if reply == b"late client\n" && took >= EMFILE_WATCH => {
            Ok(format!("`accept` fails; it retries {spin}"))
        }
        Emfile::RefusesWithSpare if reply == BUSY => Ok(format!(
            "`accept` fails; its spare descriptor lets it accept and refuse the newcomer, {spin}"
        )),
        _ => Err(format!(
            "the late client got {:?} after {took:?}, while the server had no descriptor for it",
            String::from_utf8_lossy(&reply)
        )),
    }
}

/// The kernel's count of connections dropped because an accept queue was
/// full (`ListenOverflows` in /proc/net/netstat; `nstat`, `netstat -s`).
fn listen_overflows() -> Result<u64, String> {
    let netstat = fs::read_to_string("/proc/net/netstat")
        .map_err(|e| format!("/proc/net/netstat: {e}"))?;
    let mut tcp_ext = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (tcp_ext.next(), tcp_ext.next()) else {
        return Err("no TcpExt in /proc/net/netstat".to_string());
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "ListenOverflows")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or_else(|| "no ListenOverflows in /proc/net/netstat".to_string())
}

/// The replies a server queued must reach a client that reads them slowly,
/// even when the server ends the connection on a line too long while the
/// client is still sending it. Closing with unread bytes makes the kernel
/// send RST and drop whatever the server had not sent yet: before their
/// lingering close, lessons 10 to 12 lost all but the first 4000 bytes of
/// replies here, and the refusal with them, on every run. (The random-bytes
/// case above found it, once in a few dozen runs.)
#[test]
fn hostile_slow_reader_gets_every_reply_and_the_refusal() {
    let specs = specs();
    let refusing: Vec<&Spec> = specs
        .iter()
        .filter(|s| matches!(s.framing, Framing::Lines { refusal, .. } if !refusal.is_empty()))
        .collect();
    let failures: Vec<String> = thread::scope(|scope| {
        let runs: Vec<_> = refusing
            .iter()
            .map(|spec| {
                scope.spawn(move || {
                    let server = Server::start(
                        Command::new(bin(spec.lesson))
                            .args([spec.subcommand, "--addr", "127.0.0.1:0"])
                            .args(spec.args),
                    );
                    let addr: SocketAddr =
                        server.addr.parse().expect("the server's address");
                    slow_reader(addr)
                        .map_err(|e| format!("lesson {}: {e}", spec.lesson))
                })
            })
            .collect();
        runs.into_iter()
            .filter_map(|run| run.join().expect("a slow reader panicked").err())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A client with a small receive buffer sends 200 lines and the start of
/// one too long, then reads its replies 1 KiB every 2 ms.
fn slow_reader(addr: SocketAddr) -> Result<(), String> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
        .map_err(|e| format!("socket: {e}"))?;
    // Set before connect, so that the window it advertises is small too.
    socket.set_recv_buffer_size(4096).map_err(|e| format!("SO_RCVBUF: {e}"))?;
    socket
        .connect_timeout(&addr.into(), PATIENCE)
        .map_err(|e| format!("connect: {e}"))?;
    let mut stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    let lines: Vec<u8> = (0..200)
        .flat_map(|i| format!("line {i:03} {}\n", ".".repeat(90)).into_bytes())
        .collect();
    // The server's receive buffer takes all of it while its replies wait.
    stream
        .write_all(&[lines.as_slice(), &[b'x'; 5000]].concat())
        .map_err(|e| format!("send: {e}"))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let end = loop {
        // Pacing: this client is slow on purpose.
        thread::sleep(Duration::from_millis(2));
        match stream.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e),
        }
    };
    let expected = [lines.as_slice(), TOO_LONG].concat();
    if got != expected || end.is_some() {
        return Err(format!(
            "{} of {} reply bytes, then {}",
            got.len(),
            expected.len(),
            end.map_or("EOF".to_string(), |e| e.to_string())
        ));
    }
    Ok(())
}

/// Makes the server child get SIGKILL when the thread that starts it ends,
/// however it ends: a test run killed halfway (a timeout, Ctrl-C) leaves
/// no servers behind. [`run_case`] keeps its server only while it runs.
fn die_with_this_thread(command: &mut Command) {
    // SAFETY: runs in the child between fork and exec; prctl is one system
    // call, allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Lowers the server child's `RLIMIT_NOFILE` to `n`, before it runs.
fn limit_descriptors(command: &mut Command, n: u64) {
    // SAFETY: runs in the child between fork and exec; setrlimit is one
    // system call, allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes sure this process may hold `needed` descriptors, raising its soft
/// limit up to the hard one if it must.
fn enough_descriptors(needed: u64) -> Result<(), String> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == -1 {
        return Err(format!("getrlimit: {}", io::Error::last_os_error()));
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max < needed {
        return Err(format!(
            "RLIMIT_NOFILE's hard limit is {}, the crowd needs {needed}",
            limit.rlim_max
        ));
    }
    let raised =
        libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
    // SAFETY: setrlimit reads one rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == -1 {
        return Err(format!("setrlimit: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// The number of descriptors process `pid` has open.
fn fd_count(pid: u32) -> Result<usize, String> {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))
}

/// Waits (bounded by [`PATIENCE`]) until the server is back to `baseline`
/// descriptors: whatever it opened for the hostile clients is closed.
fn wait_for_fds(pid: u32, baseline: usize) -> Result<(), String> {
    if wait_until(|| fd_count(pid).map(|n| n == baseline))? {
        return Ok(());
    }
    Err(format!(
        "{} descriptors open, {baseline} before: {}\nits connections: {}",
        fd_count(pid)?,
        descriptors(pid),
        tcp_states(pid)
    ))
}

/// Each TCP connection process `pid` holds, as `local -> remote STATE`,
/// with the state of the other end if it is on this machine.
fn tcp_states(pid: u32) -> String {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    l.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let table = fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let rows: Vec<Vec<&str>> =
        table.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    let port = |hex: &str| {
        hex.rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| {
        r.len() > 9 && r[3] != "0A" && inodes.iter().any(|i| i == r[9])
    }) {
        let other: Vec<&str> = rows
            .iter()
            .filter(|o| o[1] == row[2] && o[2] == row[1])
            .map(|o| o[3])
            .collect();
        out.push(format!(
            "{} -> {} state {} (queues {}), other end: {:?}",
            port(row[1]),
            port(row[2]),
            row[3],
            row[4],
            other
        ));
    }
    out.join("; ")
}

/// What process `pid`'s descriptors are, for a failure message.
fn descriptors(pid: u32) -> String {
    let links: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.filter_map(|e| fs::read_link(e.ok()?.path()).ok())
                .map(|l| l.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    format!("{links:?}")
}

/// How many connections wait in the accept queues of process `pid`'s
/// listeners: for a socket in LISTEN, /proc/net/tcp's rx_queue column is
/// the accept queue's length.
fn queued(pid: u32) -> Result<usize, String> {
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))?
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter_map(|link| {
            link.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx_queue:rx_queue ... inode
            if let (Some(&"0A"), Some(queues), Some(inode)) =
                (fields.get(3), fields.get(4), fields.get(9))
                && inodes.iter().any(|i| i == inode)
            {
                let rx = queues
                    .split(':')
                    .nth(1)
                    .and_then(|q| usize::from_str_radix(q, 16).ok())
                    .unwrap_or(0);
                count += rx;
            }
        }
    }
    Ok(count)
}

/// Re-reads a condition every few milliseconds until it holds or
/// [`PATIENCE`] is up; says which.
fn wait_until(
    condition: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    wait_until_for(PATIENCE, condition)
}

/// Like [`wait_until`], for `patience`.
fn wait_until_for(
    patience: Duration,
    mut condition: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    let deadline = Instant::now() + patience;
    loop {
        if condition()? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A `kB` field of `/proc/<pid>/status` (VmRSS, VmHWM).
fn status_kb(pid: u32, field: &str) -> Result<u64, String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))
}

/// Sends `signal` to process `pid`, a server this test started.
fn send_signal(pid: u32, signal: libc::c_int) -> Result<(), String> {
    // SAFETY: kill sends a signal; it touches no memory of ours.
    if unsafe { libc::kill(pid as libc::pid_t, signal) } == -1 {
        return Err(format!("kill: {}", io::Error::last_os_error()));
    }
    Ok(())
}

/// The state letter of process `pid` (`S` sleeping, `T` stopped...).
fn process_state(pid: u32) -> Result<char, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .ok_or_else(|| format!("no state in /proc/{pid}/stat"))
}

/// Stops process `pid` and continues it, each time waiting until the
/// kernel shows it in the state asked for: what Ctrl-Z and `fg` do.
fn stop_and_continue(pid: u32) -> Result<(), String> {
    send_signal(pid, libc::SIGSTOP)?;
    if !wait_until(|| process_state(pid).map(|s| s == 'T'))? {
        return Err("the server never stopped".to_string());
    }
    send_signal(pid, libc::SIGCONT)?;
    if !wait_until(|| process_state(pid).map(|s| s != 'T'))? {
        return Err("the server never continued".to_string());
    }
    Ok(())
}

/// User plus system CPU time of process `pid`, every thread, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The name in parentheses may hold spaces; the fields after it are
    // state (3), ..., utime (14), stime (15).
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (field(14 - 3), field(15 - 3)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(format!("cannot read the CPU times in /proc/{pid}/stat")),
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

// ---------------------------------------------------------------------------
// Lessons 10 and 11: stop and continue, replies at shutdown, slow senders
// against the pool, absurd flag values (issue 13, items 3 to 6).
// ---------------------------------------------------------------------------

/// Stop (Ctrl-Z, SIGSTOP) and continue (`fg`, SIGCONT) a server with ten
/// clients waiting in `recv`: a `recv` with a receive timeout then fails
/// with EINTR (`man 7 signal`), and a server that takes it for a failed
/// connection closes all ten. Before the fix, lessons 10 and 11 did:
/// `recv: Interrupted system call (os error 4): closed`, ten times.
/// Lesson 11 must also still stop gracefully on SIGTERM afterwards (its
/// signal thread's sigwait may see the EINTR too).
#[test]
fn hostile_stop_and_continue_closes_nobody() {
    let clients = 10;
    let failures: Vec<String> = [
        (10, &["--idle", "30"][..]),
        (11, &["--idle", "30", "--workers", "10", "--max-conns", "20"][..]),
    ]
    .into_iter()
    .filter_map(|(lesson, args)| {
        let mut server = Server::start(
            Command::new(bin(lesson))
                .args(["server", "--addr", "127.0.0.1:0"])
                .args(args),
        );
        let run = |server: &mut Server| -> Result<(), String> {
            let addr: SocketAddr =
                server.addr.parse().map_err(|e| format!("address: {e}"))?;
            let mut waiting = Vec::new();
            for i in 0..clients {
                let mut client = connect(addr)?;
                round_trip(&mut client, format!("before {i}\n").as_bytes())?;
                waiting.push(client);
            }
            // Every connection's thread or worker now waits in recv.
            send_signal(server.pid(), libc::SIGSTOP)?;
            if !wait_until(|| process_state(server.pid()).map(|s| s == 'T'))? {
                return Err("the server never stopped".into());
            }
            send_signal(server.pid(), libc::SIGCONT)?;
            for (i, client) in waiting.iter_mut().enumerate() {
                round_trip(client, format!("after {i}\n").as_bytes())
                    .map_err(|e| format!("client {i} after SIGCONT: {e}"))?;
            }
            if lesson == 11 {
                drop(waiting);
                send_signal(server.pid(), libc::SIGTERM)?;
                let status = server.wait_exit();
                if !status.success() {
                    return Err(format!("after SIGTERM: {status:?}"));
                }
            }
            Ok(())
        };
        run(&mut server).err().map(|e| {
            format!("lesson {lesson}: {e}\n{}", tail(&server.printed(), ""))
        })
    })
    .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The late reader's server may hold this much memory (VmRSS) while the
/// client has megabytes of lines in flight: a few MB is what it needs.
const LATE_READER_RSS_KB: u64 = 64 * 1024;

/// The lines of the late reader: "line 0000001\n" and so on, 13 bytes each.
fn late_reader_lines(from: usize, count: usize) -> Vec<u8> {
    (from..from + count)
        .flat_map(|i| format!("line {i:07}\n").into_bytes())
        .collect()
}

/// A client pipelines up to 20 MB of lines and starts reading its replies
/// only a second after the server got SIGTERM. The server must not close
/// while the client's bytes still arrive and drop replies it had not
/// delivered: the client must read replies to a whole number of its lines,
/// in order, then a clean end of stream, and the server exit with 0.
/// Before the fix, lesson 11 closed with unread bytes (RST): the client
/// got a few hundred KB of the 4 MB of replies handed to the kernel, then
/// ECONNRESET.
#[test]
fn hostile_late_reader_gets_every_reply_at_shutdown() {
    const TOTAL_LINES: usize = 20 * 1024 * 1024 / 13;
    const CHUNK_LINES: usize = 5000;
    const STARTED: usize = 256 * 1024;
    let mut server = Server::start(Command::new(bin(11)).args([
        "server",
        "--addr",
        "127.0.0.1:0",
        "--idle",
        "5",
        "--workers",
        "2",
    ]));
    let run = |server: &mut Server| -> Result<(), String> {
        let addr: SocketAddr =
            server.addr.parse().map_err(|e| format!("address: {e}"))?;
        let mut reader = connect(addr)?;
        let mut writer =
            reader.try_clone().map_err(|e| format!("try_clone: {e}"))?;
        let (progress, written) = channel::<usize>();
        let sending = thread::spawn(move || {
            let mut sent = 0;
            let mut line = 0;
            while line < TOTAL_LINES {
                let count = CHUNK_LINES.min(TOTAL_LINES - line);
                let chunk = late_reader_lines(line, count);
                if writer.write_all(&chunk).is_err() {
                    break;
                }
                (sent, line) = (sent + chunk.len(), line + count);
                let _ = progress.send(sent);
            }
            sent
        });
        // The conversation is under way: the server has read some lines.
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match written.recv_timeout(left) {
                Ok(sent) if sent >= STARTED => break,
                Ok(_) => {}
                Err(_) => return Err("the client could not send".into()),
            }
        }
        send_signal(server.pid(), libc::SIGTERM)?;
        // The hostile part: this client reads late.
        thread::sleep(Duration::from_secs(1));
        // Meanwhile the server holds one connection's buffers, not the
        // megabytes the client has sent: its memory stays bounded.
        let rss = status_kb(server.pid(), "VmRSS")?;
        if rss > LATE_READER_RSS_KB {
            return Err(format!("the server's VmRSS grew to {rss} kB"));
        }
        reader
            .set_read_timeout(Some(PATIENCE))
            .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
        let mut replies = Vec::new();
        let end = reader.read_to_end(&mut replies);
        let sent = sending.join().map_err(|_| "the writer panicked")?;
        if let Err(e) = end {
            return Err(format!(
                "{} bytes of replies, then {e} (the client sent {sent})",
                replies.len()
            ));
        }
        let lines = replies.len() / 13;
        if replies.len() % 13 != 0 || replies != late_reader_lines(0, lines) {
            return Err(format!(
                "{} bytes of replies are not replies to the first {lines} \
                 lines",
                replies.len()
            ));
        }
        let status = server.wait_exit();
        if !status.success() {
            return Err(format!("the server ended with {status:?}"));
        }
        Ok(())
    };
    if let Err(e) = run(&mut server) {
        panic!("lesson 11: {e}\n{}", tail(&server.printed(), ""));
    }
}

/// Four workers, four clients that send a byte every 300 ms and never a
/// newline, each byte well within the idle limit: the pool must still
/// serve a fifth client once the slow ones have had `--idle` for their
/// line. Before the fix, lesson 11 served no one else for as long as the
/// slow clients went on (here, the fifth client's 8 s of patience).
#[test]
fn hostile_slow_senders_do_not_hold_the_pool() {
    const SLOW: usize = 4;
    let idle = Duration::from_secs(1);
    let mut server = Server::start(Command::new(bin(11)).args([
        "server",
        "--addr",
        "127.0.0.1:0",
        "--idle",
        "1",
        "--workers",
        "4",
        "--max-conns",
        "16",
    ]));
    let addr: SocketAddr = server.addr.parse().expect("the server's address");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow: Vec<_> = (0..SLOW)
        .map(|_| {
            let stop = Arc::clone(&stop);
            let mut stream = connect(addr).expect("connect");
            thread::spawn(move || {
                let until = Instant::now() + PATIENCE;
                // Until the server drops it (a send fails) or the case ends.
                while !stop.load(std::sync::atomic::Ordering::SeqCst)
                    && Instant::now() < until
                    && stream.write_all(b"x").is_ok()
                {
                    thread::sleep(Duration::from_millis(300));
                }
            })
        })
        .collect();
    for _ in 0..SLOW {
        server.wait_for("Connected with");
    }
    let waited = Instant::now();
    let mut fifth = connect(addr).expect("connect");
    fifth.set_read_timeout(Some(8 * idle)).expect("SO_RCVTIMEO");
    fifth.write_all(b"my turn\n").expect("send");
    let got = read_until_newline(&mut fifth);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for thread in slow {
        thread.join().expect("a slow client panicked");
    }
    match got {
        Ok(reply) if reply == b"my turn\n" => {}
        other => panic!(
            "after {:?} the fifth client got {other:?}\n{}",
            waited.elapsed(),
            tail(&server.printed(), "")
        ),
    }
    assert!(server.printed().contains("no whole line in 1 s: closed"));
}

/// Absurd counts and durations are refused with one line and status 1,
/// before the server allocates anything: `--workers 18446744073709551615`
/// panicked with "capacity overflow", `--workers 1000000000000` aborted on
/// allocation, and `--idle 1e19` overflowed the clock on the first client.
#[test]
fn hostile_absurd_flag_values_are_refused_with_one_line() {
    let cases: &[(u32, &[&str])] = &[
        (10, &["--idle", "1e19"]),
        (10, &["--idle", "1e-7"]),
        (11, &["--workers", "18446744073709551615"]),
        (11, &["--workers", "1000000000000"]),
        (11, &["--max-conns", "18446744073709551615"]),
        (11, &["--idle", "1e19"]),
        (11, &["plain", "--workers", "1000000000000"]),
    ];
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(lesson, args)| {
            let mut command = Command::new(bin(*lesson));
            if args[0] != "plain" {
                command.arg("server");
            }
            let out = bounded_output(
                command.args(*args).args(["--addr", "127.0.0.1:0"]),
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            let one_line = stderr.lines().count() == 1
                && stderr.starts_with(&format!("lesson-{lesson}: "));
            (out.status.code() != Some(1) || !one_line).then(|| {
                format!(
                    "lesson {lesson} {args:?}: {:?}, {stderr:?}",
                    out.status
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `command` to its end, or kills it after 3 s (a refusal takes
/// milliseconds): a server that accepted an absurd value would otherwise
/// serve for ever.
fn bounded_output(command: &mut Command) -> std::process::Output {
    die_with_this_thread(command);
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the lesson");
    let deadline = Instant::now() + Duration::from_secs(3);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    child.wait_with_output().expect("the lesson's output")
}

/// The deadline that drops a slowloris client, and the table's words for
/// it: lesson 9's per-request `--deadline`; lesson 11 gives a line its
/// idle limit from its first byte, since a slow client holds a worker.
fn line_deadline(spec: &Spec) -> (Duration, &'static str) {
    if spec.lesson == 11 {
        (IDLE, "limit for a whole line")
    } else {
        (DEADLINE, "request deadline")
    }
}

// ---------------------------------------------------------------------------
// Lessons 2 and 3: the one-at-a-time servers, stopped and continued, and
// with their output closed (issue 13, items 3 and 6).
// ---------------------------------------------------------------------------

/// The one-at-a-time servers whose `serve_one` reads with a timeout and
/// logs each client.
const ONE_AT_A_TIME: [u32; 2] = [2, 3];

/// The most resident memory a one-at-a-time server may hold after these
/// cases: it keeps one 4 KiB buffer and one connection; a few MiB is the
/// program itself.
const ONE_AT_A_TIME_RSS_CEILING_KB: u64 = 16 * 1024;

/// Ctrl-Z and `fg` while a client is connected and quiet: a `recv` with a
/// timeout fails with EINTR after a stop and continue (`man 7 signal`),
/// and a server that takes that for a failed connection hangs up on a
/// client that did nothing wrong. The client must be answered after `fg`.
#[test]
fn one_at_a_time_servers_survive_stop_and_continue() {
    let failures: Vec<String> = ONE_AT_A_TIME
        .iter()
        .filter_map(|&n| {
            stopped_and_continued(n).err().map(|e| format!("lesson {n}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One case for a one-at-a-time server: a client in the middle of its
/// conversation while the server is stopped and continued.
fn stopped_and_continued(lesson: u32) -> Result<(), String> {
    let mut command = Command::new(bin(lesson));
    command.args(["server", "--addr", "127.0.0.1:0", "--timeout", "10"]);
    die_with_this_thread(&mut command);
    let mut server = Server::start(&mut command);
    let addr: SocketAddr = server.addr.parse().map_err(|e| format!("{e}"))?;
    let pid = server.pid();
    let mut stream = connect(addr)?;
    round_trip(&mut stream, b"before the stop\n")?;
    // The server must be inside its recv when it is stopped: that is the
    // call the stop interrupts.
    if !wait_until(|| Ok(in_recv(pid)))? {
        return Err("the server never waited in recvfrom".into());
    }
    stop_and_continue(pid)?;
    round_trip(&mut stream, b"after the continue\n").map_err(|e| {
        format!("{e}; the server printed:\n{}", server.printed())
    })?;
    drop(stream);
    server.wait_for("closed the connection");
    let mut next = connect(addr)?;
    round_trip(&mut next, b"the next client\n")?;
    rss_below_ceiling(pid)
}

/// A server whose output nobody reads any more (`server | head -3`): each
/// log line then fails with EPIPE, and `println!` panics on it. The server
/// must go on serving, one client after another.
#[test]
fn one_at_a_time_servers_survive_a_closed_stdout() {
    let failures: Vec<String> = ONE_AT_A_TIME
        .iter()
        .filter_map(|&n| {
            closed_stdout(n).err().map(|e| format!("lesson {n}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn closed_stdout(lesson: u32) -> Result<(), String> {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut command = Command::new(bin(lesson));
    command
        .args(["server", "--addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    die_with_this_thread(&mut command);
    let mut child = command.spawn().map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .ok_or("the server exited before it listened")?
            .map_err(|e| format!("read the server's output: {e}"))?;
        if let Some(rest) = line.split("Listening on ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    // Nobody reads the server's output from here on: its next line fails.
    drop(lines);
    let addr: SocketAddr =
        addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?;
    let pid = child.id();
    let served = (|| {
        for name in ["first", "second", "third"] {
            let mut stream = connect(addr)?;
            round_trip(&mut stream, format!("{name} client\n").as_bytes())
                .map_err(|e| format!("{name} client: {e}"))?;
        }
        rss_below_ceiling(pid)
    })();
    let exited = child.try_wait().map_err(|e| format!("wait: {e}"))?;
    let _ = child.kill();
    let _ = child.wait();
    match (served, exited) {
        (Ok(()), None) => Ok(()),
        (Ok(()), Some(status)) => Err(format!("the server exited: {status}")),
        (Err(e), status) => Err(format!("{e} (the server: {status:?})")),
    }
}

/// Whether process `pid` is blocked in `recvfrom` (the call std and
/// socket2 make for a read): `/proc/PID/syscall` starts with the number of
/// the system call the process is in.
fn in_recv(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/syscall")).is_ok_and(|text| {
        text.split_whitespace().next()
            == Some(libc::SYS_recvfrom.to_string().as_str())
    })
}

fn rss_below_ceiling(pid: u32) -> Result<(), String> {
    let rss = status_kb(pid, "VmRSS")?;
    if rss > ONE_AT_A_TIME_RSS_CEILING_KB {
        return Err(format!(
            "VmRSS {rss} kB, above {ONE_AT_A_TIME_RSS_CEILING_KB} kB"
        ));
    }
    Ok(())
}

/// `--timeout` values no socket option can hold: too small (`SO_RCVTIMEO`
/// counts microseconds, and 0 means "wait for ever"), too large, or not a
/// duration at all. Each is refused with one line naming the flag and exit
/// status 1, before the server binds anything.
#[test]
fn one_at_a_time_servers_refuse_absurd_timeouts() {
    let failures: Vec<String> = ONE_AT_A_TIME
        .iter()
        .flat_map(|&lesson| {
            ["1e-7", "0", "-1", "NaN", "inf", "1e19"].into_iter().filter_map(
                move |value| {
                    refused_timeout(lesson, value).err().map(|e| {
                        format!("lesson {lesson} --timeout {value}: {e}")
                    })
                },
            )
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `server --timeout=VALUE`; a server that accepts the value runs on,
/// so it is given [`PROMPT`] to exit before it counts as having accepted.
fn refused_timeout(lesson: u32, value: &str) -> Result<(), String> {
    use std::process::Stdio;
    let mut command = Command::new(bin(lesson));
    command
        .args(["server", "--addr", "127.0.0.1:0"])
        .arg(format!("--timeout={value}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    die_with_this_thread(&mut command);
    let mut child = command.spawn().map_err(|e| format!("spawn: {e}"))?;
    let exited = wait_until_for(PROMPT, || {
        child.try_wait().map(|s| s.is_some()).map_err(|e| e.to_string())
    })?;
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
        return Err("accepted: the server is running".into());
    }
    let out = child.wait_with_output().map_err(|e| format!("wait: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let flag = format!("lesson-{lesson:02}: --timeout: ");
    if out.status.code() != Some(1)
        || stderr.lines().count() != 1
        || !stderr.starts_with(&flag)
    {
        return Err(format!("{}, stderr {stderr:?}", out.status));
    }
    Ok(())
}

// ---------------------------------------------------------------------
// Lessons 4 and 5: a closed stdout, and option values they cannot honour
// (issue 13, items 5 and 6).
// ---------------------------------------------------------------------

/// The most either server's resident memory may reach in these cases: far
/// above what they need (a few MiB), far below a server that kept what it
/// was asked to send or sent.
const LESSONS_4_5_RSS_KB: u64 = 64 * 1024;

/// Starts lesson `n`'s server on port 0 with `args`, reads the line that
/// says where it listens, then closes the read end of its stdout, as
/// `server | head -1` does once `head` has its line.
fn server_with_stdout_closed(
    n: u32,
    args: &[&str],
) -> Result<(std::process::Child, SocketAddr), String> {
    use std::io::BufRead;
    let mut command = Command::new(bin(n));
    command
        .args(["server", "--addr", "127.0.0.1:0"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    die_with_this_thread(&mut command);
    let mut child = command.spawn().map_err(|e| format!("spawn: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    io::BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| format!("read the server's first line: {e}"))?;
    // The reader, and with it the pipe's only read end, is dropped here.
    let addr = first
        .split("Listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok())
        .ok_or(format!("no address in {first:?}"))?;
    Ok((child, addr))
}

/// One client of lesson 4's server: reads the whole block (`--size`).
fn lesson_4_client(addr: SocketAddr, size: usize) -> Result<(), String> {
    let mut stream = connect(addr)?;
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .map_err(|e| format!("read after {} bytes: {e}", got.len()))?;
    let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    if got != expected {
        return Err(format!("{} of {size} bytes", got.len()));
    }
    Ok(())
}

/// One client of lesson 5's server: one line, its echo.
fn lesson_5_client(addr: SocketAddr) -> Result<(), String> {
    let mut stream = connect(addr)?;
    stream.write_all(b"hi\n").map_err(|e| format!("send: {e}"))?;
    let reply = read_until_newline(&mut stream)?;
    if reply != b"echo: hi\n" {
        return Err(format!("reply {:?}", String::from_utf8_lossy(&reply)));
    }
    Ok(())
}

/// `lesson-04 server | head -1`, `lesson-05 server | head -1`: the servers
/// printed with `println!`, which panics when stdout is a closed pipe, so
/// each died at its first client (seen: the client got 0 bytes, then the
/// server exited with status 101). Both must serve client after client,
/// silently, in bounded memory.
#[test]
fn hostile_lessons_4_and_5_serve_on_with_stdout_closed() {
    let size = 100_000;
    let cases: [(u32, &[&str]); 2] = [
        (4, &["--size", "100000", "--timeout", "5"]),
        (5, &["--timeout", "5"]),
    ];
    let mut failures = Vec::new();
    for (n, args) in cases {
        let result =
            server_with_stdout_closed(n, args).and_then(|(mut child, addr)| {
                let served = (0..3).try_for_each(|_| match n {
                    4 => lesson_4_client(addr, size),
                    _ => lesson_5_client(addr),
                });
                let rss = status_kb(child.id(), "VmRSS");
                let running = matches!(child.try_wait(), Ok(None));
                let _ = child.kill();
                let _ = child.wait();
                served?;
                if !running {
                    return Err("the server exited".to_string());
                }
                match rss? {
                    kb if kb > LESSONS_4_5_RSS_KB => {
                        Err(format!("VmRSS {kb} kB > {LESSONS_4_5_RSS_KB} kB"))
                    }
                    _ => Ok(()),
                }
            });
        if let Err(e) = result {
            failures.push(format!("lesson {n}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `lesson-04 server --size` is the block it keeps in memory and sends
/// each client: an enormous one panicked ("capacity overflow", status 101)
/// or aborted on allocation; zero was accepted and sent nothing. Each bad
/// value, and an `--sndbuf` that is no C `int`, is now one line and
/// status 1, before the server listens.
#[test]
fn hostile_lesson_4_refuses_sizes_it_cannot_hold() {
    let mut failures = Vec::new();
    for (flag, value, message) in [
        (
            "--size",
            "18446744073709551615",
            "--size: must be from 1 to 67108864",
        ),
        ("--size", "1000000000000", "--size: must be from 1 to 67108864"),
        ("--size", "0", "--size: must be from 1 to 67108864"),
        (
            "--sndbuf",
            "18446744073709551615",
            "--sndbuf: must be from 1 to 2147483647",
        ),
        ("--sndbuf", "0", "--sndbuf: must be from 1 to 2147483647"),
    ] {
        let mut command = Command::new(bin(4));
        command
            .args(["server", "--addr", "127.0.0.1:0", flag, value])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        die_with_this_thread(&mut command);
        let mut child = command.spawn().expect("spawn lesson-04");
        // A server that accepted the value listens for ever: give it
        // PATIENCE to exit, then count it as a failure.
        let exited = wait_until(|| Ok(matches!(child.try_wait(), Ok(Some(_)))));
        if !matches!(exited, Ok(true)) {
            let _ = child.kill();
            let _ = child.wait();
            failures.push(format!("{flag} {value}: accepted, still running"));
            continue;
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = child.wait().expect("wait for lesson-04");
        let expected = format!("lesson-04: {message}\n");
        if status.code() != Some(1) || stderr != expected {
            let first = stderr.lines().find(|l| !l.is_empty()).unwrap_or("");
            failures.push(format!("{flag} {value}: {status}, {first:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A client of lesson 5's server that sends line after line and never
/// reads a reply. The server's replies fill the client's receive buffer and
/// its own send buffer, and its `write_all` waits for room. It had a read
/// timeout but no write timeout, so it waited for ever, serving nobody
/// else (seen: the next client got no reply within PATIENCE). With
/// `SO_SNDTIMEO` it drops that client after `--timeout` and serves the next.
#[test]
fn hostile_lesson_5_drops_a_client_that_never_reads_its_replies() {
    let server = Server::lesson(5, &["--timeout", "1"]);
    let addr: SocketAddr = server.addr.parse().expect("the server's address");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    // Small, and set before connect: few replies fill it.
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect_timeout(&addr.into(), PATIENCE).expect("connect");
    let mut hostile = TcpStream::from(socket);
    hostile.set_write_timeout(Some(PATIENCE)).expect("SO_SNDTIMEO");
    // 8 MiB of lines: their replies are four times as many bytes, more
    // than any send and receive buffer hold. The server stops reading
    // once it is stuck, so this write ends with an error, or PATIENCE.
    let flood = thread::spawn(move || {
        let _ = hostile.write_all(&b"x\n".repeat(4 << 20));
    });
    let served = lesson_5_client(addr);
    let _ = flood.join();
    let rss = status_kb(server.pid(), "VmRSS");
    served.expect("the next client, after the one that never reads");
    let rss = rss.expect("the server's VmRSS");
    assert!(rss <= LESSONS_4_5_RSS_KB, "VmRSS {rss} kB");
}

// ---------------------------------------------------------------------------
// Lessons 6 and 7: the half-closing server and client of lesson 6, the
// 4-tuple server and client of lesson 7. Issue 13's items for them: a stop
// and continue (Ctrl-Z, `fg`) must not close a waiting client, a closed
// stdout must not stop a server, a never-ending reply must not grow a
// client's memory; and lesson 6's server must bound a request that never
// ends and still answer it without a reset.
// ---------------------------------------------------------------------------
mod lessons_06_07 {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::process::{Child, Stdio};

    use super::*;

    /// The most a client of lessons 6 and 7 may hold in memory (its peak
    /// resident set, VmHWM) while it is sent a reply of [`ENDLESS`] bytes.
    const CLIENT_CEILING_KB: u64 = 32 * 1024;

    /// How much the never-ending reply has sent when the client's memory is
    /// read: twice the ceiling, so a client that keeps it all is over it.
    const ENDLESS: usize = 64 * 1024 * 1024;

    /// Lesson 6's server's limit on a request, as `server.rs` sets it.
    const MAX_REQUEST: usize = 1 << 20;

    /// A child process that is killed and reaped when this goes out of
    /// scope, however the test ends.
    struct Reaped(Child);

    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Issue 13, item 3: a client is in the middle of its request, the
    /// server waits in a `recv` with a timeout; the server is stopped and
    /// continued. Before, that `recv` failed with EINTR and the server
    /// closed the connection ("recv from ...: Interrupted system call"),
    /// so the client got no answer. Now it reads on and answers.
    #[test]
    fn hostile_lesson_06_a_stop_and_continue_keeps_the_waiting_client() {
        let mut server = Server::lesson(6, &["--timeout", "10"]);
        let pid = server.pid();
        let mut client = connect(server.addr.parse().unwrap()).unwrap();
        client.write_all(b"first half, ").unwrap();
        server.wait_for("Connected with");
        // Blocked in its recv: sleeping, not running.
        assert!(wait_until(|| process_state(pid).map(|s| s == 'S')).unwrap());
        stop_and_continue(pid).unwrap();

        // A server that gave up on us has reset the connection by now:
        // these may fail, and the reply says so.
        let sent = client.write_all(b"second half\n");
        let shut = client.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        let end = client.read_to_end(&mut reply);
        let printed = server.printed();
        assert_eq!(
            String::from_utf8_lossy(&reply),
            "received 24 bytes\n",
            "send {sent:?}, shutdown {shut:?}, recv {end:?}; the server \
             printed:\n{printed}"
        );
        assert!(!printed.contains("Interrupted"), "{printed}");
        assert!(server.is_running());
    }

    /// Starts lesson `n`'s server with a stdout whose reading end is
    /// closed as soon as it has said where it listens, as in
    /// `server | head -1`.
    fn with_stdout_closed(n: u32) -> (Reaped, SocketAddr) {
        let mut command = Command::new(bin(n));
        command
            .args(["server", "--addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_this_thread(&mut command);
        let mut child = Reaped(command.spawn().expect("spawn the server"));
        let stdout = child.0.stdout.take().expect("stdout");
        let mut first = String::new();
        // Dropped at the end of the statement: the pipe's reading end
        // closes, and the server's next log line meets EPIPE.
        BufReader::new(stdout).read_line(&mut first).expect("first line");
        let addr = first
            .split("Listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        (child, addr)
    }

    /// One conversation with lesson `n`'s server: lesson 6 answers a
    /// request ended by a half-close, lesson 7 tells the client its
    /// 4-tuple.
    fn converse(n: u32, addr: SocketAddr) -> Result<String, String> {
        let mut stream = connect(addr)?;
        if n == 6 {
            stream.write_all(b"hello\n").map_err(|e| format!("send: {e}"))?;
            stream
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
        }
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).map_err(|e| format!("recv: {e}"))?;
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }

    /// Issue 13, item 6: the servers' output closed (`server | head -1`).
    /// Before, their `println!` panicked on the first log line of the
    /// first client ("failed printing to stdout: Broken pipe"), and the
    /// process died with the client's connection. Now they log with
    /// `log!`, which a closed stdout does not stop.
    #[test]
    fn hostile_lessons_06_07_a_closed_stdout_does_not_stop_the_server() {
        let mut failures = Vec::new();
        'lessons: for n in [6, 7] {
            let (mut server, addr) = with_stdout_closed(n);
            for round in 1..=3 {
                let reply = converse(n, addr);
                let alive = matches!(server.0.try_wait(), Ok(None));
                let good = match &reply {
                    Ok(text) if n == 6 => text == "received 6 bytes\n",
                    Ok(text) => text.starts_with("you are 127.0.0.1:"),
                    Err(_) => false,
                };
                if !good || !alive {
                    let _ = server.0.kill();
                    let mut stderr = String::new();
                    if let Some(mut err) = server.0.stderr.take() {
                        let _ = err.read_to_string(&mut stderr);
                    }
                    failures.push(format!(
                        "lesson {n}, client {round}: {reply:?}, server \
                         running: {alive}; its stderr:\n{stderr}"
                    ));
                    continue 'lessons;
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// A server that accepts one client, sends it [`ENDLESS`] bytes and
    /// keeps the connection open: a reply with no end. Returns once they
    /// are sent, that is once the client has read all but what the
    /// kernel's buffers hold.
    fn endless_reply(listener: &TcpListener) -> Result<TcpStream, String> {
        let (mut conn, _) =
            listener.accept().map_err(|e| format!("accept: {e}"))?;
        conn.set_write_timeout(Some(PATIENCE))
            .map_err(|e| format!("SO_SNDTIMEO: {e}"))?;
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..ENDLESS / chunk.len() {
            conn.write_all(&chunk).map_err(|e| format!("send: {e}"))?;
        }
        Ok(conn)
    }

    /// Issue 13, item 6, for the clients of lessons 6 and 7, which read
    /// until the server closes: against a server that never does, their
    /// memory must stay bounded. Before, both collected the reply with
    /// `read_to_end` and held all 64 MiB (VmHWM above 64 MiB); now they
    /// print it as it comes, one buffer at a time.
    #[test]
    fn hostile_lessons_06_07_clients_stay_small_against_an_endless_reply() {
        let mut failures = Vec::new();
        for n in [6, 7] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let mut command = Command::new(bin(n));
            command
                .args(["client", "--addr", &addr])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            die_with_this_thread(&mut command);
            let client = Reaped(command.spawn().expect("spawn the client"));
            let conn = endless_reply(&listener)
                .unwrap_or_else(|e| panic!("lesson {n}: {e}"));
            let peak = status_kb(client.0.id(), "VmHWM").unwrap();
            drop(conn);
            if peak >= CLIENT_CEILING_KB {
                failures.push(format!(
                    "lesson {n}'s client peaked at {peak} kB for a reply of \
                     {} MiB without end (ceiling {CLIENT_CEILING_KB} kB)",
                    ENDLESS >> 20
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Lesson 6's server against a client that sends more than a request
    /// may hold without half-closing, then stops, reads, and half-closes
    /// at last. The server must refuse at [`MAX_REQUEST`] instead of
    /// reading on, and linger (FIN, then read until the client's FIN) so
    /// that the client gets the refusal and a clean end, not a reset.
    /// Before, the server read on until the client's FIN and answered
    /// with the byte count: no request was too long.
    #[test]
    fn hostile_lesson_06_a_request_without_end_is_refused_cleanly() {
        let mut server = Server::lesson(6, &["--timeout", "10"]);
        let stream = connect(server.addr.parse().unwrap()).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        // More than MAX_REQUEST, less than it and MAX_DRAIN together.
        let request = vec![b'y'; MAX_REQUEST + MAX_REQUEST / 2];
        let writer = {
            let mut stream = stream.try_clone().unwrap();
            thread::spawn(move || stream.write_all(&request))
        };
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.ends_with(b"\n") {
            match (&stream).read(&mut buf) {
                Ok(0) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                Err(e) => panic!("recv: {e}; got {reply:?}"),
            }
        }
        assert_eq!(
            String::from_utf8_lossy(&reply),
            format!("request too long: more than {MAX_REQUEST} bytes\n"),
            "the server printed:\n{}",
            server.printed()
        );
        writer.join().unwrap().expect("the whole request was taken");
        stream.shutdown(Shutdown::Write).unwrap();
        // The end of the stream, clean: no reset.
        let rest = (&stream).read(&mut buf).expect("a clean end");
        assert_eq!(rest, 0);
        server.wait_for("Closed");
        assert!(server.is_running());
    }
}

// ---------------------------------------------------------------------------
// Lesson 8: the backlog server with its output closed, and a value of
// `--hold` that means nothing (issue 13, items 5 and 6).
// ---------------------------------------------------------------------------

/// The most resident memory lesson 8's server may hold after greeting
/// [`BACKLOG_CLIENTS`] clients: it keeps at most `--hold` (64) sockets and
/// no buffers; a few MiB is the program itself.
const BACKLOG_RSS_CEILING_KB: u64 = 16 * 1024;

/// More clients than the server's default `--hold` (64), so it also lets
/// go of the oldest while nobody reads its log.
const BACKLOG_CLIENTS: usize = 70;

/// A server whose output nobody reads any more (`server | head -3`): each
/// log line then fails with EPIPE, and `println!` panics on it (exit 101
/// after the first accept, before this case was fixed). The server must
/// go on accepting and greeting every client.
#[test]
fn backlog_server_survives_a_closed_stdout() {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut command = Command::new(bin(8));
    // No input: the server stops waiting for Enter and accepts at once.
    command
        .args(["server", "--addr", "127.0.0.1:0", "--backlog", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    die_with_this_thread(&mut command);
    let mut child = command.spawn().expect("spawn lesson 8's server");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server exited before it listened")
            .expect("read the server's output");
        if let Some(rest) = line.split("Listening on ").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            break addr.parse::<SocketAddr>().expect("the address");
        }
    };
    // Nobody reads the server's output from here on: its next line fails.
    drop(lines);
    let pid = child.id();
    let served = (|| {
        let mut held = Vec::new();
        for number in 1..=BACKLOG_CLIENTS {
            let mut stream = connect(addr)?;
            let greeting = read_until_newline(&mut stream)?;
            let expected = format!("connection #{number}; ");
            if !greeting.starts_with(expected.as_bytes()) {
                return Err(format!(
                    "client {number} was greeted with {:?}",
                    String::from_utf8_lossy(&greeting)
                ));
            }
            held.push(stream);
        }
        let rss = status_kb(pid, "VmRSS")?;
        if rss > BACKLOG_RSS_CEILING_KB {
            return Err(format!(
                "VmRSS {rss} kB, above {BACKLOG_RSS_CEILING_KB} kB"
            ));
        }
        Ok(())
    })();
    let exited = child.try_wait().expect("wait for the server");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "the server exited ({served:?})");
    assert_eq!(served, Ok(()));
}

/// `--hold 0` asks the server to keep no connection open, which it cannot
/// do and still greet anyone: it must be refused with one line and exit
/// status 1, not quietly read as 1 (before this case was fixed the server
/// started and ran, and this case stopped it after its patience ran out).
#[test]
fn backlog_server_refuses_hold_zero() {
    use std::process::Stdio;
    let mut command = Command::new(bin(8));
    command
        .args(["server", "--addr", "127.0.0.1:0", "--hold", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    die_with_this_thread(&mut command);
    let mut child = command.spawn().expect("spawn lesson 8's server");
    let exited = wait_until_for(Duration::from_secs(5), || {
        child.try_wait().map(|s| s.is_some()).map_err(|e| e.to_string())
    });
    if exited != Ok(true) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("lesson 8's server ran with --hold 0 instead of refusing it");
    }
    let output = child.wait_with_output().expect("the server's stderr");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "lesson-08: --hold: must be at least 1\n"
    );
}

// ---------------------------------------------------------------------
// Lesson 9 (issue 13, items 3 and 6): a server stopped and continued
// with clients waiting, a server whose stdout is closed, and a client
// against a server whose reply never ends.
// ---------------------------------------------------------------------

/// How many times the lesson 9 case stops and continues the server.
const STOPS: usize = 5;

/// Sends `signal` to `pid`, then waits (bounded) until the kernel shows
/// it stopped (`T`) or running again.
fn signal_and_wait(pid: u32, signal: i32, stopped: bool) -> Result<(), String> {
    send_signal(pid, signal)?;
    if wait_until(|| Ok((process_state(pid)? == 'T') == stopped))? {
        Ok(())
    } else {
        Err(format!("the server never became stopped: {stopped}"))
    }
}

/// Ctrl-Z and `fg`, five times, while the server waits in a `recv` with a
/// timeout on one client and three more wait in its accept queue: the
/// `recv` fails with EINTR (`man 7 signal`), which is no reason to close
/// anything. Before the fix lesson 9 closed each client in turn with
/// `recv: Interrupted system call (os error 4)`.
#[test]
fn hostile_lesson_09_stop_and_continue_close_no_connection() {
    let mut server = Server::lesson(9, &["--idle", "10", "--deadline", "10"]);
    let pid = server.pid();
    let addr: SocketAddr = server.addr.parse().expect("the server's address");
    let baseline = fd_count(pid).expect("the server's descriptors");
    let mut first = connect(addr).expect("first client");
    round_trip(&mut first, b"before\n").expect("first client, before");
    let queued: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut stream = connect(addr).expect("a queued client");
            let line = format!("queued {i}\n");
            stream.write_all(line.as_bytes()).expect("a queued line");
            stream
        })
        .collect();
    for _ in 0..STOPS {
        signal_and_wait(pid, libc::SIGSTOP, true).expect("stop");
        signal_and_wait(pid, libc::SIGCONT, false).expect("continue");
    }
    round_trip(&mut first, b"after\n").expect("first client, after");
    drop(first);
    // One at a time: each leaves once answered, and the next is served.
    for (i, mut stream) in queued.into_iter().enumerate() {
        let line = format!("queued {i}\n");
        let mut got = vec![0u8; line.len()];
        stream.read_exact(&mut got).expect("a queued client's echo");
        assert_eq!(got, line.as_bytes());
    }
    wait_for_fds(pid, baseline).expect("the server's descriptors");
    let log = server.printed();
    assert!(!log.contains("Interrupted"), "{log}");
    assert!(server.is_running());
}

/// `lesson-09 server | head -3`: once `head` has gone, each log line the
/// server writes fails with EPIPE. That must not stop it: before `log!`,
/// it died of "failed printing to stdout: Broken pipe" at the next client.
#[test]
fn hostile_lesson_09_server_outlives_its_closed_stdout() {
    let mut command = Command::new(bin(9));
    command
        .args(["server", "--addr", "127.0.0.1:0", "--idle", "5"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    die_with_this_thread(&mut command);
    let mut child = command.spawn().expect("spawn lesson 9's server");
    let stdout = child.stdout.take().expect("the server's stdout");
    // Read its first line on a thread, so that the wait is bounded.
    let (line_tx, line_rx) = channel();
    thread::spawn(move || {
        let mut line = String::new();
        let mut reader = io::BufReader::new(stdout);
        let _ = io::BufRead::read_line(&mut reader, &mut line);
        let _ = line_tx.send(line);
        // `reader` goes here: the pipe's read end closes, like `head`'s.
    });
    let line = line_rx.recv_timeout(PATIENCE).expect("a first line");
    let addr: SocketAddr = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .expect("Listening on ADDR");
    let served = (0..3).try_for_each(|i| {
        let mut stream = connect(addr)?;
        round_trip(&mut stream, format!("client {i}\n").as_bytes())
    });
    let status = child.try_wait().expect("the server's status");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, None, "the server exited");
    served.expect("every client served with stdout closed");
}

/// A server that answers with bytes and never a newline: lesson 9's client
/// must give up with one line, not collect the reply for ever (it grew to
/// 2.1 GB in 6 s before the fix). The server here stops after [`ENDLESS`]
/// bytes, so the old client, which read them all, ended "served".
#[test]
fn hostile_lesson_09_client_gives_up_on_a_reply_with_no_end() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let streamer = thread::spawn(move || -> usize {
        let Ok((mut stream, _)) = listener.accept() else { return 0 };
        let _ = stream.set_write_timeout(Some(PATIENCE));
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut line = [0u8; 64];
        let _ = stream.read(&mut line);
        let chunk = [b'x'; 64 * 1024];
        let mut sent = 0;
        while sent < ENDLESS {
            match stream.write(&chunk) {
                Ok(n) => sent += n,
                // The client hung up: it stopped reading.
                Err(_) => break,
            }
        }
        sent
    });
    let out = crate::support::run(
        9,
        &["client", "--addr", &addr.to_string(), "--timeout", "5"],
        b"hello\n",
    );
    // A client that never connected would leave the streamer in accept.
    drop(TcpStream::connect(addr));
    let sent = streamer.join().expect("the streaming server");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "lesson-09: recv {addr}: no newline in the first 65536 bytes \
             of the reply\n"
        )
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(sent < ENDLESS, "the client read all {sent} bytes");
}

/// How much the endless server sends at most: far more than a reply the
/// client should accept, and more than loopback's buffers hold.
const ENDLESS: usize = 64 * 1024 * 1024;

// ---------------------------------------------------------------------
// Lesson 13 (epoll): an edge-triggered late reader, replies at a
// graceful shutdown, and option values (issue 13, items 2, 4 and 5).
// `HOSTILE_LESSON_13_BIN=path` runs these against another build of the
// lesson (an older commit's, to see a case fail).
// ---------------------------------------------------------------------

/// The server's resident memory may not pass this in lesson 13's cases:
/// each connection holds at most `HIGH_WATER` (64 KiB) of replies, so a
/// server that holds tens of megabytes buffers without bound.
const L13_RSS_CEILING_KB: u64 = 32 * 1024;

/// Lesson 13's binary, or the one `HOSTILE_LESSON_13_BIN` names.
fn lesson_13_bin() -> std::path::PathBuf {
    std::env::var_os("HOSTILE_LESSON_13_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| bin(13))
}

/// Starts lesson 13's server on port 0 with `args`.
fn lesson_13(args: &[&str]) -> Server {
    let mut command = Command::new(lesson_13_bin());
    command.args(["server", "--addr", "127.0.0.1:0"]).args(args);
    die_with_this_thread(&mut command);
    Server::start(&mut command)
}

/// Sends `lines` copies of `line` from a thread of its own, then ends its
/// side; the thread gives back the error that stopped it, if any.
fn send_lines(
    stream: &TcpStream,
    line: &'static [u8],
    lines: usize,
) -> thread::JoinHandle<io::Result<()>> {
    let mut writer = stream.try_clone().expect("clone the client's socket");
    thread::spawn(move || {
        let chunk: Vec<u8> = line.repeat(4096);
        let mut left = lines;
        while left > 0 {
            let n = left.min(4096);
            writer.write_all(&chunk[..n * line.len()])?;
            left -= n;
        }
        writer.shutdown(Shutdown::Write)
    })
}

/// Reads until the end of the stream; returns the bytes and how it ended
/// (`None`: a clean EOF).
fn read_all(stream: &mut TcpStream) -> (Vec<u8>, Option<io::Error>) {
    stream.set_read_timeout(Some(PATIENCE)).expect("SO_RCVTIMEO");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Some(e)),
        }
    }
}

/// Issue 13, item 2: `--edge`, a client that sends 6,000,000 short lines
/// and starts reading its replies a second later. Before the fix, the
/// connection stopped reading for its replies (64 KiB waiting), sent them
/// all at once, and was left with nothing to send and no `EPOLLIN` in its
/// entry: no event came again, and the replies stopped at about 4.4 MB of
/// 12 MB until the idle limit reset the client.
#[test]
fn hostile_lesson_13_edge_triggered_late_reader_gets_every_reply() {
    const LINES: usize = 6_000_000;
    for trigger in [&["--edge"][..], &[][..]] {
        let server = lesson_13(&[&["--idle", "5"], trigger].concat());
        let mut stream =
            connect(server.addr.parse().expect("address")).expect("connect");
        let writer = send_lines(&stream, b"a\n", LINES);
        // The late reader: the server's replies back up meanwhile.
        thread::sleep(Duration::from_secs(1));
        let rss = status_kb(server.pid(), "VmRSS").expect("VmRSS");
        let (got, end) = read_all(&mut stream);
        let sent = writer.join().expect("the writer panicked");
        assert!(
            got.len() == 2 * LINES
                && got.iter().all(|&b| b == b'a' || b == b'\n'),
            "{trigger:?}: {} of {} reply bytes, then {}",
            got.len(),
            2 * LINES,
            end.map_or("EOF".to_string(), |e| e.to_string())
        );
        assert!(end.is_none(), "{trigger:?}: {end:?}");
        assert!(sent.is_ok(), "{trigger:?}: the writer: {sent:?}");
        assert!(rss < L13_RSS_CEILING_KB, "{trigger:?}: VmRSS {rss} kB");
    }
}

/// Issue 13, item 4: a client writes 20 MB of lines and starts reading its
/// replies a second after SIGTERM. Every reply the server queued must
/// reach it, then a clean end of the stream: closing while the client's
/// bytes still arrive sends RST, which throws away the replies still in
/// the server's send queue (lesson 6). The client sees the RST as a reset
/// of its writes (its reads see the end of the stream on Linux, after the
/// bytes that did arrive). Before the fix the writer was reset every time,
/// after about 4.3 MB of replies, and the rest of them were lost.
#[test]
fn hostile_lesson_13_replies_survive_a_graceful_shutdown() {
    const LINE: &[u8] = b"0123456789abcde\n";
    const LINES: usize = 20 * 1024 * 1024 / LINE.len();
    for trigger in [&[][..], &["--edge"][..]] {
        let mut server = lesson_13(&[&["--idle", "5"], trigger].concat());
        let mut stream =
            connect(server.addr.parse().expect("address")).expect("connect");
        let writer = send_lines(&stream, LINE, LINES);
        // Until the server has stopped reading for its replies (lesson 12's
        // HIGH_WATER): its receive queue, as `ss` shows it, holds bytes.
        let pid = server.pid();
        let port = server.addr.rsplit(':').next().expect("port").to_string();
        let port: u16 = port.parse().expect("a port number");
        let backed_up =
            wait_until(|| Ok(unread_by(pid, port)? > 0)).expect("ss");
        assert!(backed_up, "{trigger:?}: the server read everything");
        let rss = status_kb(pid, "VmRSS").expect("VmRSS");
        send_signal(pid, libc::SIGTERM).expect("SIGTERM");
        thread::sleep(Duration::from_secs(1));
        let (got, end) = read_all(&mut stream);
        let sent = writer.join().expect("the writer panicked");
        drop(stream);
        let status = server.wait_exit();
        assert!(sent.is_ok(), "{trigger:?}: the writer: {sent:?}");
        let whole = got.len() / LINE.len() * LINE.len() == got.len()
            && got.chunks(LINE.len()).all(|l| l == LINE);
        assert!(
            end.is_none() && whole && !got.is_empty(),
            "{trigger:?}: {} reply bytes, then {}",
            got.len(),
            end.map_or("EOF".to_string(), |e| e.to_string())
        );
        assert!(status.success(), "{trigger:?}: {status:?}");
        assert!(rss < L13_RSS_CEILING_KB, "{trigger:?}: VmRSS {rss} kB");
        eprintln!(
            "hostile: lesson 13 {trigger:?}: {} reply bytes after SIGTERM, then EOF",
            got.len()
        );
    }
}

/// Bytes waiting in the receive queues of the server's connections (local
/// port `port`), from `/proc/<pid>/net/tcp` (`rx_queue`, as `ss` shows
/// in Recv-Q): the sum over the established ones.
fn unread_by(pid: u32, port: u16) -> Result<u64, String> {
    let table = fs::read_to_string(format!("/proc/{pid}/net/tcp"))
        .map_err(|e| format!("/proc/{pid}/net/tcp: {e}"))?;
    let mut sum = 0;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // st (field 3) 01 is ESTABLISHED; tx_queue:rx_queue is field 4.
        let local = fields.get(1).and_then(|a| a.split(':').nth(1));
        let local = local.and_then(|p| u16::from_str_radix(p, 16).ok());
        if fields.get(3) != Some(&"01") || local != Some(port) {
            continue;
        }
        let rx = fields.get(4).and_then(|q| q.split(':').nth(1));
        sum += rx.and_then(|q| u64::from_str_radix(q, 16).ok()).unwrap_or(0);
    }
    Ok(sum)
}

/// Issue 13, item 5: durations and counts that make no sense are refused
/// with one line and exit status 1, before the server starts.
#[test]
fn hostile_lesson_13_absurd_option_values_are_refused() {
    for (flag, value) in [
        ("--idle", "1e19"),
        ("--idle", "1e-7"),
        ("--idle", "NaN"),
        ("--max-conns", "0"),
    ] {
        let out = Command::new(lesson_13_bin())
            .args(["server", "--addr", "127.0.0.1:0", flag, value])
            .output()
            .expect("run lesson 13");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("lesson-13: {flag}: "))
                && stderr.lines().count() == 1,
            "{flag} {value}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------
// Lesson 12: graceful shutdown against clients that send without end, or
// read late (issue 13, items 1, 4 and 5).
// ---------------------------------------------------------------------

/// The most resident memory lesson 12's server may reach in these cases.
/// It holds at most 64 KiB of replies per connection (`HIGH_WATER`), at
/// shutdown too; a server that reads on without that cap queues megabytes
/// of replies within a second (it grew from 3.9 MB to 103 MB in 11 s).
const L12_RSS_CEILING_KB: u64 = 8 * 1024;

/// Starts lesson 12's server on port 0 with `args`; it dies with the test.
fn lesson_12_server(args: &[&str]) -> Server {
    let mut command = Command::new(bin(12));
    command.args(["server", "--addr", "127.0.0.1:0"]).args(args);
    die_with_this_thread(&mut command);
    Server::start(&mut command)
}

/// Samples the server's VmRSS until the process is gone (a zombie has no
/// VmRSS) or [`PATIENCE`] is up, failing as soon as it passes the ceiling.
/// Returns the highest value seen.
fn lesson_12_rss_until_exit(pid: u32) -> Result<u64, String> {
    let mut peak = 0;
    let deadline = Instant::now() + PATIENCE;
    while let Ok(kb) = status_kb(pid, "VmRSS") {
        peak = peak.max(kb);
        if peak > L12_RSS_CEILING_KB {
            return Err(format!(
                "VmRSS {peak} kB, above the ceiling of {L12_RSS_CEILING_KB} kB"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("still running after {PATIENCE:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
    Ok(peak)
}

/// A client that keeps sending empty lines and never reads, in a thread:
/// returns how many bytes it has sent so far, and a flag that stops it.
fn endless_sender(
    addr: &str,
) -> (Arc<std::sync::atomic::AtomicUsize>, Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stream = TcpStream::connect(addr).expect("connect");
    // A bounded wait per send, so the flag is seen even when it blocks.
    stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
    let (counted, stopped) = (sent.clone(), stop.clone());
    thread::spawn(move || {
        let chunk = [b'\n'; 65536];
        while !stopped.load(Ordering::Relaxed) {
            match (&stream).write(&chunk) {
                Ok(n) => drop(counted.fetch_add(n, Ordering::Relaxed)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    });
    (sent, stop)
}

/// Issue 13, item 1: a client loops sending `\n` x 65536 and never reads,
/// then another sends `shutdown`. The shutdown used to read from it until
/// `EAGAIN` without the 64 KiB cap on replies, which a client that never
/// stops sending never lets come: 100 % CPU, memory without bound, and no
/// exit. Now the server reads no further than the cap, the idle limit
/// drops the sender, and the server exits 0 with its memory bounded.
#[test]
fn hostile_lesson_12_shutdown_beside_an_endless_sender_ends_bounded() {
    use std::sync::atomic::Ordering;
    let mut server = lesson_12_server(&["--idle", "2"]);
    let pid = server.pid();
    let (sent, stop) = endless_sender(&server.addr);
    // Until the server has stopped reading from it: the kernel's buffers
    // on both sides are full, and the sender is held up.
    let filled = wait_until(|| {
        let before = sent.load(Ordering::Relaxed);
        thread::sleep(Duration::from_millis(100));
        Ok(before > 0 && sent.load(Ordering::Relaxed) == before)
    });
    assert_eq!(filled, Ok(true), "the sender was never held up");
    let asking = TcpStream::connect(&server.addr).expect("connect");
    (&asking).write_all(b"shutdown\n").expect("send shutdown");
    let mut reply = Vec::new();
    asking.set_read_timeout(Some(PATIENCE)).unwrap();
    (&asking).read_to_end(&mut reply).expect("the shutdown reply");
    assert_eq!(reply, b"shutdown\n");
    drop(asking);
    let peak = lesson_12_rss_until_exit(pid);
    stop.store(true, Ordering::Relaxed);
    let peak = peak.unwrap_or_else(|e| panic!("lesson 12: {e}"));
    eprintln!("lesson 12: VmRSS at most {peak} kB during the shutdown");
    assert!(server.wait_exit().success());
}

/// Issue 13, item 4: a client writes 20 MB of lines and starts reading
/// 1 s after SIGTERM. Every reply the server queued must reach it, then a
/// clean end of stream: the server closes by lingering (FIN, then drains
/// what still comes) instead of closing on unread bytes, which makes the
/// kernel send RST and drop the replies not yet read. Memory stays under
/// the ceiling (before the cap, the shutdown read all 20 MB and queued
/// their replies).
#[test]
fn hostile_lesson_12_late_reader_at_shutdown_gets_its_replies_and_an_end() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let mut server = lesson_12_server(&["--idle", "5"]);
    let pid = server.pid();
    let stream = TcpStream::connect(&server.addr).expect("connect");
    let writer = stream.try_clone().expect("try_clone");
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    const TOTAL: usize = 20 * 1024 * 1024;
    let sending = thread::spawn(move || -> io::Result<()> {
        let chunk = b"a\n".repeat(32 * 1024);
        while counted.load(Ordering::Relaxed) < TOTAL {
            (&writer).write_all(&chunk)?;
            counted.fetch_add(chunk.len(), Ordering::Relaxed);
        }
        writer.shutdown(Shutdown::Write)
    });
    let going = wait_until(|| Ok(sent.load(Ordering::Relaxed) >= 1 << 20));
    assert_eq!(going, Ok(true), "the writer never got going");
    send_signal(pid, libc::SIGTERM).expect("SIGTERM");
    let watch = thread::spawn(move || lesson_12_rss_until_exit(pid));
    // The scenario: this client reads only a second later.
    thread::sleep(Duration::from_secs(1));
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        match (&stream).read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Some(e),
        }
    };
    let peak = watch.join().expect("the memory watch");
    let sending = sending.join().expect("the writer");
    assert!(
        end.is_none(),
        "after {} reply bytes: {:?} instead of the end of the stream",
        got.len(),
        end
    );
    assert!(!got.is_empty() && got.chunks(2).all(|pair| pair == b"a\n"));
    let peak = peak.unwrap_or_else(|e| panic!("lesson 12: {e}"));
    eprintln!(
        "lesson 12: {} reply bytes then EOF; the writer: {sending:?}; \
         VmRSS at most {peak} kB",
        got.len()
    );
    assert!(server.wait_exit().success());
}

/// Issue 13, item 5: durations and counts no server can use are refused
/// with one line and status 1, before anything is bound.
#[test]
fn hostile_lesson_12_absurd_option_values_are_refused() {
    for args in [
        ["--idle", "1e19"],
        ["--idle", "1e-7"],
        ["--max-conns", "18446744073709551615"],
        ["--max-conns", "0"],
    ] {
        // Bounded: a server that took the value would run until killed.
        let out = crate::support::run(
            12,
            &["server", "--addr", "127.0.0.1:0", args[0], args[1]],
            b"",
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("lesson-12: {}: ", args[0]))
                && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------
// Lesson 14 (UDP): datagrams no client should send, against the echo
// server. No connection to hold, so the cases are the datagrams
// themselves: empty, the largest there is, and a flood from a peer that
// never reads its replies.

/// An empty datagram and a 65,507-byte one come back whole, and a flood
/// of 1,000 from a peer that never reads does not stop the server
/// answering the next one.
#[test]
fn hostile_lesson_14_empty_largest_and_flooding_datagrams() {
    use std::net::UdpSocket;
    let mut server = crate::support::Server::lesson(14, &[]);
    let good = UdpSocket::bind("127.0.0.1:0").unwrap();
    good.connect(&server.addr).unwrap();
    good.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = vec![0u8; 65_536];
    for size in [0, 65_507] {
        let datagram = vec![b'u'; size];
        assert_eq!(good.send(&datagram).unwrap(), size);
        let n = good.recv(&mut buf).expect("the echo");
        assert_eq!(&buf[..n], &datagram[..], "a {size}-byte datagram");
    }

    // Its replies fill this socket's buffer and are dropped there; the
    // server's sendto does not wait for room, so it goes on serving.
    let flooder = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..1000 {
        flooder.send_to(b"flood", &server.addr).unwrap();
    }
    // A datagram sent during the flood may find the server's buffer full
    // and be dropped (this case saw it happen): lesson 14's own client,
    // which asks again, is the good client here.
    let args = ["client", "--addr", &server.addr, "--timeout", "0.2"];
    let out = crate::support::run(
        14,
        &[&args[..], &["--tries", "10"]].concat(),
        b"still there?\n\n",
    );
    let out = crate::support::stdout_of(&out);
    assert!(out.contains("Reply: still there?\n"), "{out}");
    assert!(server.is_running());
    server.wait_for("still there?");
}

// ---------------------------------------------------------------------
// Lesson 15: the Unix-socket line server.
// ---------------------------------------------------------------------

/// A lesson 15 server on a socket file in a new directory of this test's
/// own (never a fixed path: other tests and checkouts run at once).
fn lesson_15_server(tag: &str) -> (Server, std::path::PathBuf) {
    let dir = std::env::temp_dir()
        .join(format!("lesson-15-hostile-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).expect("scratch dir");
    let path = dir.join("s.sock");
    let server = Server::start(
        Command::new(bin(15)).arg("server").arg("--path").arg(&path),
    );
    (server, dir)
}

/// A line that never ends costs the server at most MAX_LINE bytes: it
/// drops that client, and the next one is served.
#[test]
fn hostile_lesson_15_an_endless_line_is_cut_and_the_server_goes_on() {
    use std::os::unix::net::UnixStream;
    let (mut server, dir) = lesson_15_server("long");
    let path = dir.join("s.sock");
    let mut hostile = UnixStream::connect(&path).expect("connect");
    hostile.set_write_timeout(Some(PATIENCE)).unwrap();
    // The server stops reading after 4097 bytes and closes: the rest of
    // this write fails (EPIPE or ECONNRESET) instead of waiting for ever.
    let sent = hostile.write_all(&vec![b'x'; LONG_LINE]);
    assert!(sent.is_err(), "a 1 MiB line was read whole");
    server.wait_for("line over 4096 bytes: closing");

    let mut good = UnixStream::connect(&path).expect("connect");
    good.set_read_timeout(Some(PATIENCE)).unwrap();
    good.write_all(b"still there?\n").unwrap();
    let mut reply = [0u8; 13];
    good.read_exact(&mut reply).expect("the next client's reply");
    assert_eq!(&reply, b"still there?\n");
    assert!(server.is_running());
    let _ = fs::remove_dir_all(&dir);
}

/// A client that connects and says nothing holds one thread, not the
/// server: the next client is answered at once.
#[test]
fn hostile_lesson_15_a_silent_client_does_not_block_the_next() {
    use std::os::unix::net::UnixStream;
    let (mut server, dir) = lesson_15_server("silent");
    let path = dir.join("s.sock");
    let _silent = UnixStream::connect(&path).expect("connect");
    server.wait_for("Connected: pid ");
    let mut good = UnixStream::connect(&path).expect("connect");
    good.set_read_timeout(Some(PATIENCE)).unwrap();
    good.write_all(b"hello\n").unwrap();
    let mut reply = [0u8; 6];
    good.read_exact(&mut reply).expect("served beside a silent client");
    assert_eq!(&reply, b"hello\n");
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------
// Lesson 17: the HTTP/1.1 server. Each case runs a server of its own on a
// directory made for it (`lesson_17::Site`), with a secret beside it.
// ---------------------------------------------------------------------

/// No target leads out of the served directory: `..`, `..` encoded in
/// any case, an encoded slash, a symlink that points out, an absolute
/// URL. Each is refused (400, 403 or 404) and the secret never comes back.
#[test]
fn hostile_lesson_17_no_path_leads_out_of_the_directory() {
    use crate::lesson_17::{SECRET, Site, ask};
    let site = Site::new("traversal", 10);
    let server = site.serve(&[]);
    let targets = [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/x/../../secret.txt",
        "//../secret.txt",
        "/./%2e./secret.txt",
        "/escape.txt",
        "/%65scape.txt",
        "http://localhost/../secret.txt",
        "/%00",
    ];
    for target in targets {
        let request = format!("GET {target} HTTP/1.1\r\n\r\n");
        let (head, body) = ask(&server.addr, &request);
        let status = &head[9..12];
        assert!(["400", "403", "404"].contains(&status), "{target}: {head}");
        let secret = SECRET.as_bytes();
        assert!(!body.windows(secret.len()).any(|w| w == secret), "{target}");
    }
}

/// Slowloris: a head sent a byte every 50 ms is cut at the header
/// deadline (1 s here) with 408, however steadily its bytes come; a good
/// client is served meanwhile, at once.
#[test]
fn hostile_lesson_17_a_slow_head_is_cut_by_its_deadline_with_408() {
    use crate::lesson_17::{Site, ask, response};
    let site = Site::new("slowloris", 10);
    let server = site.serve(&["--header-timeout", "1"]);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    let start = Instant::now();
    let mut writer = slow.try_clone().unwrap();
    let trickle = thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\n");
        // Never the empty line; stops when the server has closed.
        for _ in 0..100 {
            thread::sleep(Duration::from_millis(50));
            if writer.write_all(b"X").is_err() {
                break;
            }
        }
    });
    let served = Instant::now();
    let (head, _) = ask(&server.addr, "GET / HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(served.elapsed() < PROMPT, "the good client waited");
    let (head, _) = response(&mut slow, false);
    let cut = start.elapsed();
    assert!(head.starts_with("HTTP/1.1 408 "), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    assert!(
        cut >= Duration::from_millis(900) && cut < Duration::from_secs(3),
        "cut after {cut:?}"
    );
    let _ = slow.shutdown(Shutdown::Both);
    trickle.join().unwrap();
}

/// At most `--max-conns` connections: beyond them each client is answered
/// 503 and closed, the server's descriptors and memory stay bounded, and
/// once the silent ones are dropped (no request in time) a client is
/// served again.
#[test]
fn hostile_lesson_17_connections_are_bounded() {
    use crate::lesson_17::{Site, ask, ends};
    let site = Site::new("bounded", 10);
    let mut server = site.serve(&["--max-conns", "4", "--header-timeout", "1"]);
    let pid = server.pid();
    let baseline = fd_count(pid).unwrap();
    let rss_before = status_kb(pid, "VmRSS").unwrap();
    let silent: Vec<TcpStream> =
        (0..4).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    for _ in 0..4 {
        server.wait_for("Connected with");
    }
    for _ in 0..50 {
        let mut extra = TcpStream::connect(&server.addr).unwrap();
        extra.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut got = [0u8; 12];
        extra.read_exact(&mut got).expect("a 503");
        assert_eq!(&got, b"HTTP/1.1 503");
        assert!(ends(&mut extra));
        assert!(fd_count(pid).unwrap() <= baseline + 4);
    }
    let peak = status_kb(pid, "VmHWM").unwrap();
    assert!(peak.saturating_sub(rss_before) < MEMORY_GROWTH_LIMIT_KB);
    wait_for_fds(pid, baseline).unwrap();
    let (head, _) = ask(&server.addr, "GET / HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    drop(silent);
}

/// Ctrl-C with a large response half sent, a kept-alive client idle and
/// a head half received: the response is finished to its last byte, the
/// others see their connection end, and the server exits with status 0.
#[test]
fn hostile_lesson_17_a_graceful_shutdown_finishes_responses_in_flight() {
    use crate::lesson_17::{Site, ends, response};
    const BIG: usize = 8 * 1024 * 1024;
    let site = Site::new("shutdown", BIG);
    let mut server = site.serve(&[]);
    let mut big = TcpStream::connect(&server.addr).unwrap();
    big.write_all(b"GET /big.bin HTTP/1.1\r\n\r\n").unwrap();
    let mut first = vec![0u8; 64 * 1024];
    big.read_exact(&mut first).unwrap();
    server.wait_for("GET /big.bin -> 200");
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let (head, _) = response(&mut idle, false);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut half = TcpStream::connect(&server.addr).unwrap();
    half.write_all(b"GET / HTTP/1.1\r\nHost: x").unwrap();
    server.wait_for("GET / -> 200");
    send_signal(server.pid(), libc::SIGINT).unwrap();
    let mut rest = Vec::new();
    big.set_read_timeout(Some(PATIENCE)).unwrap();
    big.read_to_end(&mut rest).unwrap();
    let head_len = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(first.len() - head_len + rest.len(), BIG, "the whole body");
    assert!(ends(&mut idle));
    assert!(ends(&mut half));
    drop((big, idle, half));
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
}

/// A head that never ends (1 MiB of one header) is refused with 431
/// after `MAX_HEAD` bytes, and a client that pipelines thousands of
/// requests without reading the answers is held at `HIGH_WATER`: the
/// server's memory grows by less than either sent, and it serves on.
#[test]
fn hostile_lesson_17_endless_heads_and_unread_pipelines_stay_bounded() {
    use crate::lesson_17::{Site, ask, response};
    let site = Site::new("memory", 10);
    let server = site.serve(&[]);
    let pid = server.pid();
    let rss_before = status_kb(pid, "VmRSS").unwrap();

    let mut endless = TcpStream::connect(&server.addr).unwrap();
    endless.set_write_timeout(Some(PATIENCE)).unwrap();
    let reader = endless.try_clone().unwrap();
    let sent = thread::spawn(move || {
        let _ = endless.write_all(b"GET / HTTP/1.1\r\nX: ");
        // Fails (reset) once the server has closed; the 431 came first.
        let _ = endless.write_all(&vec![b'y'; LONG_LINE]);
    });
    let mut reader = reader;
    let (head, _) = response(&mut reader, false);
    assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
    sent.join().unwrap();

    // 200,000 requests sent, none of the answers read: the server stops
    // reading at HIGH_WATER, so this write stops too (its timeout ends it).
    let mut greedy = TcpStream::connect(&server.addr).unwrap();
    greedy.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let many = b"GET /index.html HTTP/1.1\r\n\r\n".repeat(200_000);
    let _ = greedy.write_all(&many);
    let peak = status_kb(pid, "VmHWM").unwrap();
    eprintln!(
        "hostile: lesson 17: VmRSS {rss_before} kB before, peak {peak} kB"
    );
    assert!(
        peak.saturating_sub(rss_before) < MEMORY_GROWTH_LIMIT_KB,
        "memory grew from {rss_before} kB to a peak of {peak} kB"
    );
    let (head, _) = ask(&server.addr, "GET / HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    drop(greedy);
}

/// Forged `If-Modified-Since` dates: a year past any integer, a negative
/// one, a month that is not one, a time past midnight, bytes that are not
/// text. The server's date parser must neither overflow nor panic (the
/// tests run a debug build, where an overflow panics): each gets the
/// whole file, as a date it cannot read should, and the server goes on.
#[test]
fn hostile_lesson_17_forged_if_modified_since_dates_get_the_whole_file() {
    use crate::lesson_17::{INDEX, Site, ask};
    let site = Site::new("forged-dates", 10);
    let server = site.serve(&[]);
    let dates = [
        "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
        "Sun, 06 Nov 9223372036854775807 08:49:37 GMT",
        "Sun, 06 Nov -9223372036854775808 08:49:37 GMT",
        "Sun, 99 Foo 2026 08:49:37 GMT",
        "Sun, 06 Nov 2026 99:99:99 GMT",
        "Sun, 06 Nov 2026 18446744073709551615:0:0 GMT",
        "\u{ff}\u{fe}, , , ,",
        "",
    ];
    for date in dates {
        let request =
            format!("GET / HTTP/1.1\r\nIf-Modified-Since: {date}\r\n\r\n");
        let (head, body) = ask(&server.addr, &request);
        assert!(head.starts_with("HTTP/1.1 200 "), "{date:?}: {head}");
        assert_eq!(body, INDEX.as_bytes(), "{date:?}");
    }
}
