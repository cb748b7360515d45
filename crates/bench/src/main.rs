//! # The bench: lessons 10-13 against what a user would pick instead
//!
//! Starts each multi-client server of the course (lessons 10-13, whichever
//! exist, and lesson 2 at one connection) and a tokio `current_thread` echo
//! server of the same line protocol, drives each with 1, 100 and 1000
//! ping-pong connections from epoll threads, and reports requests/s, p50
//! and p99 latency, the server's CPU time per request and its memory per
//! idle connection, each also as a ratio to tokio measured in the same run.
//!
//! Every point is measured in several rounds (5 by default), each on a
//! fresh server process; within a round the servers at one connection
//! count run back to back, in an order that moves by one server each
//! round. A figure is the median of its rounds, and a ratio to tokio the
//! median of the rounds' ratios, each taken between two runs of the same
//! round. A round whose tokio figure is far from tokio's median is
//! disturbed: marked in the tables and the plot, never dropped.
//!
//! The server runs pinned to one CPU and the generator on the others (on a
//! 2-CPU machine: CPU 0 and CPU 1), so that the two never compete for a
//! core, and the generator's CPU use and the server's core's idle time show
//! whether the generator, rather than the server, set the pace.
//!
//! Then the HTTP row (`http.rs`): lesson 17's static file server against a
//! hyper static file server (`src/bin/hyper-files.rs`) on the same runtime,
//! both serving the same two pages of the book to the same generator
//! speaking HTTP/1.1 keep-alive `GET`s, at the same connection counts, by
//! the same method: fresh server per measurement, interleaved rounds,
//! medians, ratios to hyper within a round, the rounds' spread. Its table
//! is results-http.md.
//!
//! `--smoke` checks instead that every server answers a few hundred requests
//! correctly, and measures nothing.

mod http;
mod load;
mod plot;
mod report;
mod server;
mod sys;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;

use load::{Protocol, Stop};
use report::{IdleRow, LoadRow, Report};
use server::{Server, ServerCmd};

/// Where the server and the generator run.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    /// The CPU every server is pinned to.
    pub server_cpu: Option<usize>,
    /// One generator thread on each of these CPUs (at most one per
    /// connection); none: one thread, wherever the scheduler puts it.
    pub generator_cpus: Vec<usize>,
}

/// The defaults a full run uses; a run with fewer rounds or shorter windows
/// is marked as a short one in its results.
pub const DEFAULT_SECONDS: f64 = 2.0;
pub const DEFAULT_WARMUP: f64 = 0.5;
pub const DEFAULT_ROUNDS: u16 = 5;
pub const DEFAULT_TURNS: u16 = 16;

/// How long opening one connection and its first round trip may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Traffic before each later turn's window: the server has sat idle while
/// the others took theirs, and the ACKs the clients delayed at the end of
/// the last turn (by 40 ms at the least, Linux's shortest delay) are still
/// due.
const TURN_SETTLE: f64 = 0.1;

#[derive(Parser)]
#[command(
    name = "bench",
    bin_name = "bench",
    about = "Measure lessons 10-13's servers against a tokio current_thread echo server, and lesson 17 against a hyper static file server"
)]
struct Cli {
    /// Only check that every server answers a few hundred requests correctly: no timing, nothing written to the book
    #[arg(long)]
    smoke: bool,
    /// Seconds measured for each server at each connection count
    #[arg(long, default_value_t = DEFAULT_SECONDS)]
    seconds: f64,
    /// Seconds of traffic before each measurement starts
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    warmup: f64,
    /// Measure every point this many times, interleaved (at least 5 for a figure to trust); each figure is the median of the rounds, each ratio the median of the rounds' ratios
    #[arg(long, default_value_t = DEFAULT_ROUNDS, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// A round is disturbed when tokio's requests/s or CPU µs/request in it is more than this many percent from tokio's median; disturbed rounds are marked, never dropped
    #[arg(long, default_value_t = 15.0)]
    disturbed_above: f64,
    /// Cut each server's window into this many turns, taken in alternation with the other servers at the same connection count (1: one whole window after another)
    #[arg(long, default_value_t = DEFAULT_TURNS, value_parser = clap::value_parser!(u16).range(1..))]
    turns: u16,
    /// Connection counts to measure at
    #[arg(long, value_delimiter = ',', default_values_t = [1, 100, 1000])]
    connections: Vec<usize>,
    /// Idle connections for the memory figure; 0 skips it
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Only these lessons (lesson-02, lesson-10, ..., lesson-17 for the HTTP row alone); the references always run, the ratios need them
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also measure this server: NAME=BINARY [ARG...], run as `BINARY server --addr 127.0.0.1:0 ARG...` ({conns} in an ARG stands for the connection count); any server of the line protocol will do
    #[arg(long = "server", value_name = "NAME=BINARY [ARG...]")]
    servers: Vec<String>,
    /// Let the scheduler place the server and the generator
    #[arg(long)]
    no_pin: bool,
    /// The CPU to pin the servers to (default: the first this process may use)
    #[arg(long)]
    server_cpu: Option<usize>,
    /// CPUs for the generator, one thread each (default: every other CPU this process may use)
    #[arg(long, value_delimiter = ',')]
    generator_cpus: Vec<usize>,
    /// Run the generator and the servers at this nice value (-20..19; below 0 needs root), so that other work on the machine disturbs the figures less
    #[arg(long, allow_hyphen_values = true, value_parser = clap::value_parser!(i32).range(-20..=19))]
    nice: Option<i32>,
    /// Folder for results.md, results.json and results.svg
    #[arg(long, default_value_os_t = workspace_root().join("book/src/bench"))]
    out: PathBuf,
}

/// A server the bench measures.
#[derive(Clone, Debug)]
pub struct Subject {
    /// `tokio` or `lesson-NN`.
    pub key: String,
    /// What it is, for the table.
    pub what: String,
    pub cmd: ServerCmd,
    /// Arguments after `server --addr 127.0.0.1:0`; `{conns}` stands for
    /// the number of connections of the run.
    pub extra: Vec<String>,
    /// Lesson 2 serves one client at a time: more connections would wait.
    pub one_client_only: bool,
    /// A process per connection: its memory per idle connection would
    /// take 10,000 processes and is not measured (its CPU time is not read
    /// either, see `load::Probe::forks`; its processes' switches are summed).
    pub forks: bool,
}

impl Subject {
    /// Whether its memory per idle connection is measured: not for a
    /// server of one client at a time, nor a process per connection (see
    /// the fields), nor tokio's second run, which would only repeat the
    /// reference's figure.
    pub fn measures_idle(&self) -> bool {
        !self.one_client_only
            && !self.forks
            && self.key != report::REFERENCE_AGAIN
    }

    /// The command for a run with `conns` connections.
    pub fn command(&self, conns: usize) -> ServerCmd {
        let mut cmd = self.cmd.clone();
        cmd.args.extend(
            self.extra
                .iter()
                .map(|arg| arg.replace("{conns}", &conns.to_string())),
        );
        cmd
    }
}

/// A lesson the bench knows.
pub struct Lesson {
    pub number: u32,
    /// The lesson's command that runs this server: `server`, or `fork`
    /// for lesson 10's process per connection.
    pub command: &'static str,
    pub what: &'static str,
    /// See [`Subject::extra`].
    pub extra: &'static [&'static str],
}

impl Lesson {
    /// `lesson-NN`, or `lesson-NN-fork` for a command other than `server`.
    pub fn key(&self) -> String {
        match self.command {
            "server" => format!("lesson-{:02}", self.number),
            other => format!("lesson-{:02}-{other}", self.number),
        }
    }
}

/// Lesson 2 as the single-client baseline, then the multi-client servers.
pub const LESSONS: &[Lesson] = &[
    Lesson {
        number: 2,
        command: "server",
        what: "one client at a time",
        extra: &[],
    },
    Lesson {
        number: 10,
        command: "server",
        what: "thread per connection",
        extra: &[],
    },
    // Beside lesson 10: the classic design, a process per connection.
    Lesson {
        number: 10,
        command: "fork",
        what: "process per connection (fork)",
        extra: &[],
    },
    // A worker serves one connection until the client leaves, and a
    // ping-pong client stays for the whole run: each needs a worker of its
    // own, or it waits for one that never comes free.
    Lesson {
        number: 11,
        command: "server",
        what: "bounded thread pool",
        extra: &["--workers", "{conns}", "--max-conns", "{conns}"],
    },
    // Lessons 12 and 13 limit open connections to 1024 by default, below
    // the idle test's 10,000; the limit is lesson 11's idea, not measured.
    Lesson {
        number: 12,
        command: "server",
        what: "poll",
        extra: &["--max-conns", "{conns}"],
    },
    Lesson {
        number: 13,
        command: "server",
        what: "epoll",
        extra: &["--max-conns", "{conns}"],
    },
];

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<bool, String> {
    if !(cli.disturbed_above.is_finite() && cli.disturbed_above > 0.0) {
        return Err(format!(
            "--disturbed-above {}: expected a percentage above 0",
            cli.disturbed_above
        ));
    }
    if cfg!(debug_assertions) && !cli.smoke {
        eprintln!(
            "bench: warning: a debug build; measure with `cargo run -p bench --release`"
        );
    }
    let subjects = subjects(cli)?;
    let http_subjects = http_subjects(cli)?;
    // After building the lessons, so that the build is not what it sees.
    let machine = report::Machine::read(!cli.smoke);
    // After building, like the pinning below: the servers inherit both.
    if let Some(nice) = cli.nice {
        sys::set_nice(nice).map_err(|e| format!("setpriority {nice}: {e}"))?;
    }
    // Pin only after building: cargo would otherwise get one CPU.
    let placement = place(cli)?;
    // Each connection is a descriptor in the generator and one in the
    // server (which inherits the limit), plus a margin for everything else.
    let most = if cli.smoke {
        20
    } else {
        cli.connections.iter().copied().max().unwrap_or(1)
    };
    // Measured in turns, every server's connections are open at once.
    let most = most * subjects.len();
    sys::raise_open_files(most as u64 + 256)?;
    let idle = match if cli.smoke { 100 } else { cli.idle } {
        0 => None,
        n => match sys::raise_open_files(n as u64 + 256) {
            Ok(_) => Some(n),
            Err(err) => {
                println!("memory per idle connection skipped: {err}");
                None
            }
        },
    };
    if cli.smoke {
        let lines_ok = smoke(&subjects, &placement, idle, &machine)?;
        let Some((files, http_subjects)) = http_subjects else {
            return Ok(lines_ok);
        };
        let (report, http_ok) = http::smoke(&http_subjects, &files, &placement);
        let path =
            report.write(&workspace_root().join("target/bench-smoke"))?;
        println!(
            "smoke: HTTP row {}; report drawn to {}",
            if http_ok { "every response correct" } else { "FAILED" },
            path.display()
        );
        return Ok(lines_ok && http_ok);
    }
    // `--only lesson-17` measures the HTTP row alone.
    let lines_wanted = cli.only.is_empty()
        || cli.only.iter().any(|k| k != "lesson-17")
        || !cli.servers.is_empty();
    let lines_ok = !lines_wanted
        || measure_all(cli, &subjects, &placement, idle, &machine)?;
    if let Some((files, http_subjects)) = http_subjects {
        let report = http::measure_all(
            &http_subjects,
            &files,
            &cli.connections,
            usize::from(cli.rounds),
            Timing::of(cli),
            &placement,
            cli.disturbed_above / 100.0,
        );
        println!();
        print!("{}", report.terminal());
        let path = report.write(&cli.out)?;
        println!("\nwrote {}", path.display());
    }
    Ok(lines_ok)
}

/// The HTTP row's files and its servers.
type HttpRow = (Vec<http::File>, Vec<Subject>);

/// The HTTP row's files and servers (built), unless `--only` leaves
/// lesson 17 out or its crate does not exist yet.
fn http_subjects(cli: &Cli) -> Result<Option<HttpRow>, String> {
    let wanted =
        cli.only.is_empty() || cli.only.iter().any(|k| k == "lesson-17");
    if !wanted || !lesson_crate_exists("lesson-17") {
        return Ok(None);
    }
    let root = workspace_root();
    let status =
        Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(&root)
            .args(["build", "--release", "--quiet", "-p", "lesson-17"])
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("building lesson 17 failed ({status})"));
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from);
    let served = root.join("book/src");
    let files = http::files(&served)?;
    let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bench_dir = exe.parent().ok_or("current_exe has no folder")?;
    Ok(Some((
        files,
        http::subjects(bench_dir, &target.join("release"), &served),
    )))
}

/// Pins this thread (and so the threads it starts) to the generator's first
/// CPU and says where servers and generator threads go.
fn place(cli: &Cli) -> Result<Placement, String> {
    if cli.no_pin {
        return Ok(Placement::default());
    }
    let allowed =
        sys::allowed_cpus().map_err(|e| format!("sched_getaffinity: {e}"))?;
    let server_cpu = cli
        .server_cpu
        .or(allowed.first().copied())
        .ok_or("no CPU to run on")?;
    let generator_cpus: Vec<usize> = if cli.generator_cpus.is_empty() {
        allowed.iter().copied().filter(|&c| c != server_cpu).collect()
    } else {
        cli.generator_cpus.clone()
    };
    let Some(&first) = generator_cpus.first() else {
        println!("only one CPU: the server and the generator are not pinned");
        return Ok(Placement::default());
    };
    if generator_cpus.contains(&server_cpu) {
        println!(
            "warning: the generator shares CPU {server_cpu} with the servers"
        );
    }
    sys::pin_to_cpu(first)
        .map_err(|e| format!("sched_setaffinity {first}: {e}"))?;
    Ok(Placement { server_cpu: Some(server_cpu), generator_cpus })
}

/// The tokio reference and the lessons that exist, built in release mode.
fn subjects(cli: &Cli) -> Result<Vec<Subject>, String> {
    let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bin_dir = exe.parent().ok_or("current_exe has no folder")?;
    let tokio_echo = bin_dir.join("tokio-echo");
    // `cargo run -p bench` builds only the binary it runs: build the
    // reference server beside it (a no-op when it is up to date).
    let status =
        Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "bench",
                "--bin",
                "tokio-echo",
                "--bin",
                "hyper-files",
            ])
            .status()
            .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() || !tokio_echo.exists() {
        return Err(format!(
            "building {} failed ({status})",
            tokio_echo.display()
        ));
    }
    let server_args =
        || vec!["server".to_string(), "--addr".into(), "127.0.0.1:0".into()];
    let reference = |key: &str, what: &str| Subject {
        key: key.into(),
        what: what.into(),
        cmd: ServerCmd { binary: tokio_echo.clone(), args: server_args() },
        extra: Vec::new(),
        one_client_only: false,
        forks: false,
    };
    let mut subjects = vec![
        reference(report::REFERENCE, "tokio current_thread (reference)"),
        // The same server measured as if it were another: how far from 1
        // its ratios stray is how far the bench's noise alone moves one.
        reference(
            report::REFERENCE_AGAIN,
            "the same tokio server again: the reference against itself",
        ),
    ];

    let root = workspace_root();
    let crates = fs::read_dir(root.join("crates"))
        .map_err(|e| format!("read crates/: {e}"))?;
    let mut present: Vec<u32> = crates
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| {
            name.get(..2)?
                .parse::<u32>()
                .ok()
                .filter(|_| name.get(2..3) == Some("-"))
        })
        .collect();
    present.sort_unstable();
    let wanted =
        |key: &str| cli.only.is_empty() || cli.only.iter().any(|k| k == key);
    let lessons: Vec<&Lesson> = LESSONS
        .iter()
        .filter(|lesson| present.contains(&lesson.number))
        .filter(|lesson| wanted(&lesson.key()))
        .collect();
    present = lessons.iter().map(|lesson| lesson.number).collect();
    present.dedup();

    if !present.is_empty() {
        // The lessons are measured as a user would run them: optimised.
        let mut build = Command::new(
            env::var_os("CARGO").unwrap_or_else(|| "cargo".into()),
        );
        build.current_dir(&root).args(["build", "--release", "--quiet"]);
        for n in &present {
            build.args(["-p", &format!("lesson-{n:02}")]);
        }
        let status = build.status().map_err(|e| format!("cargo build: {e}"))?;
        if !status.success() {
            return Err(format!("building the lessons failed ({status})"));
        }
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from);
    for lesson in lessons {
        let mut args = server_args();
        args[0] = lesson.command.into();
        let crate_name = format!("lesson-{:02}", lesson.number);
        subjects.push(Subject {
            cmd: ServerCmd {
                binary: target.join("release").join(crate_name),
                args,
            },
            key: lesson.key(),
            what: lesson.what.into(),
            extra: lesson.extra.iter().map(|a| a.to_string()).collect(),
            one_client_only: lesson.number == 2,
            forks: lesson.command == "fork",
        });
    }
    for spec in &cli.servers {
        subjects.push(command_line_server(spec)?);
    }
    let missing: Vec<String> = LESSONS
        .iter()
        .filter(|l| {
            l.number >= 10 && !subjects.iter().any(|s| s.key == l.key())
        })
        .map(|l| format!("{} ({})", l.key(), l.what))
        .collect();
    if !missing.is_empty() && cli.only.is_empty() {
        println!("not measured, no crate yet: {}", missing.join(", "));
    }
    Ok(subjects)
}

/// A server named on the command line: `NAME=BINARY [ARG...]`.
fn command_line_server(spec: &str) -> Result<Subject, String> {
    let (key, rest) = spec
        .split_once('=')
        .ok_or(format!("--server {spec:?}: expected NAME=BINARY [ARG...]"))?;
    let mut words = rest.split_whitespace();
    let binary = words.next().ok_or(format!("--server {spec:?}: no binary"))?;
    Ok(Subject {
        key: key.to_string(),
        what: format!("{binary}, given with --server"),
        cmd: ServerCmd {
            binary: binary.into(),
            args: vec![
                "server".to_string(),
                "--addr".into(),
                "127.0.0.1:0".into(),
            ],
        },
        extra: words.map(String::from).collect(),
        one_client_only: false,
        forks: false,
    })
}

/// Whether the crate of lesson `key` (`lesson-NN`) is in the workspace.
pub fn lesson_crate_exists(key: &str) -> bool {
    let Some(number) = key.strip_prefix("lesson-") else { return false };
    let number = number.get(..2).unwrap_or(number);
    fs::read_dir(workspace_root().join("crates")).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|name| name.starts_with(&format!("{number}-")))
    })
}

/// Connection counts a subject is measured at.
fn counts_for(subject: &Subject, counts: &[usize]) -> Vec<usize> {
    counts
        .iter()
        .copied()
        .filter(|&n| !subject.one_client_only || n == 1)
        .collect()
}

fn measure_all(
    cli: &Cli,
    subjects: &[Subject],
    placement: &Placement,
    idle: Option<usize>,
    machine: &report::Machine,
) -> Result<bool, String> {
    let started = Instant::now();
    let rounds = usize::from(cli.rounds);
    // (round, key, connections, place in the round's order, figures)
    let mut samples = Vec::new();
    for round in 0..rounds {
        // Interleaved: a slow spell on the machine hits every server, not
        // one. Within a round the servers at one connection count run back
        // to back, and the ratios to tokio are taken within the round.
        for &conns in &cli.connections {
            let mut order: Vec<&Subject> = subjects
                .iter()
                .filter(|s| counts_for(s, &[conns]).contains(&conns))
                .collect();
            // Each round starts one server later: no server is always
            // first (after the previous count's teardown) or always next
            // to the same neighbour, so the order is no server's bias.
            let turn = round % order.len().max(1);
            order.rotate_left(turn);
            let measured = measure_in_turns(
                &order,
                conns,
                &Protocol::Line,
                Timing::of(cli),
                placement,
            );
            for (place, (subject, row)) in
                order.into_iter().zip(measured).enumerate()
            {
                match &row {
                    Ok(r) => println!(
                        "round {}/{rounds}  {:<10} {conns:>5} connections: {:>8.0} requests/s, {} CPU µs/request, {:.2} server switches/request, server CPU {:>5} (its core idle {}), generator CPU {:>3.0} %",
                        round + 1,
                        subject.key,
                        r.requests_per_s,
                        report::figure(r.cpu_us_per_request),
                        r.switches_per_request,
                        report::percent(r.server_cpu_pct),
                        r.server_core_idle_pct
                            .map_or("–".to_string(), |p| format!("{p:.0} %")),
                        r.generator_cpu_pct
                    ),
                    Err(err) => println!(
                        "round {}/{rounds}  {:<10} {conns:>5} connections: FAILED: {err}",
                        round + 1,
                        subject.key
                    ),
                }
                samples.push((
                    round,
                    subject.key.clone(),
                    conns,
                    place + 1,
                    row,
                ));
            }
        }
    }
    let mut rows = Vec::new();
    for subject in subjects {
        for conns in counts_for(subject, &cli.connections) {
            let of_this: Vec<(usize, &Result<LoadRow, String>)> = samples
                .iter()
                .filter(|(_, k, c, _, _)| *k == subject.key && *c == conns)
                .map(|(_, _, _, place, r)| (*place, r))
                .collect();
            rows.push(report::gather(&subject.key, conns, &of_this));
        }
    }
    let mut idle_rows = Vec::new();
    if let Some(count) = idle {
        for subject in subjects.iter().filter(|s| s.measures_idle()) {
            let row = idle_memory(subject, count, placement);
            match &row.result {
                Ok(_) => println!(
                    "{:<10} {count} idle connections: {:.0} bytes each",
                    subject.key,
                    row.bytes_per_conn().unwrap_or(f64::NAN)
                ),
                Err(err) => println!(
                    "{:<10} {count} idle connections: FAILED: {err}",
                    subject.key
                ),
            }
            idle_rows.push(row);
        }
    }
    let report = Report {
        machine: machine.clone(),
        subjects: subjects.to_vec(),
        rows,
        idle_rows,
        idle_count: idle,
        seconds: cli.seconds,
        warmup: cli.warmup,
        turns: usize::from(cli.turns),
        rounds,
        disturbed_above: cli.disturbed_above / 100.0,
        placement: placement.clone(),
        nice: cli.nice,
        smoke: false,
        // Only a run with the same rounds, window and turns is the same bench run
        // twice; a short trial run says nothing about a full one.
        previous: report::Previous::read(&cli.out.join("results.json")).filter(
            |p| {
                p.rounds == rounds
                    && p.seconds == cli.seconds
                    && p.turns == usize::from(cli.turns)
            },
        ),
    };
    println!();
    print!("{}", report.terminal());
    report.write(&cli.out)?;
    println!(
        "\nwrote {} (results.md, results.json, results.svg) in {:.0} s",
        cli.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// Where a run reads the server's CPU time, its core's idle time and its
/// threads' context switches.
fn probe(
    server: &Server,
    subject: &Subject,
    placement: &Placement,
) -> load::Probe {
    load::Probe {
        server_pid: server.pid,
        forks: subject.forks,
        server_cpu: placement.server_cpu,
        generator_cpus: placement.generator_cpus.clone(),
    }
}

/// How each point is timed: the warm-up, the window, and the turns the
/// window is cut into.
#[derive(Clone, Copy)]
pub struct Timing {
    pub warmup: f64,
    pub seconds: f64,
    pub turns: usize,
}

impl Timing {
    fn of(cli: &Cli) -> Timing {
        Timing {
            warmup: cli.warmup,
            seconds: cli.seconds,
            turns: usize::from(cli.turns),
        }
    }
}

/// Every server in `order` at one connection count, each on a fresh
/// process, all started at once and measured in turns: each server's
/// window is cut into `timing.turns` short ones, and the servers take
/// them in alternation. The machine's speed changes from one second to
/// the next (other virtual machines on the same host); in short turns
/// every server sees the same mix of fast and slow spells, and the ratios
/// between them keep only what the servers themselves cost.
pub fn measure_in_turns(
    order: &[&Subject],
    conns: usize,
    protocol: &Protocol,
    timing: Timing,
    placement: &Placement,
) -> Vec<Result<LoadRow, String>> {
    let mut live: Vec<Result<(Server, Vec<load::Conn>), String>> = order
        .iter()
        .map(|subject| {
            let mut server =
                Server::start(&subject.command(conns), placement.server_cpu)?;
            let clients =
                load::connect_all(server.addr, conns, SETUP_TIMEOUT, protocol)
                    .map_err(|err| format!("{err}{}", server.exit_note()))?;
            Ok((server, clients))
        })
        .collect();
    let mut runs: Vec<Option<Result<load::Run, String>>> =
        order.iter().map(|_| None).collect();
    let measure = Duration::from_secs_f64(timing.seconds / timing.turns as f64);
    for turn in 0..timing.turns {
        // Forward, then backward: on average every server sits at the same
        // place in the sequence, and follows each of its neighbours.
        let mut sequence: Vec<usize> = (0..order.len()).collect();
        if turn % 2 == 1 {
            sequence.reverse();
        }
        for i in sequence {
            let Ok((server, clients)) = &mut live[i] else { continue };
            if let Some(Err(_)) = runs[i] {
                continue;
            }
            let warmup = if turn == 0 { timing.warmup } else { TURN_SETTLE };
            let stop = Stop::Window {
                warmup: Duration::from_secs_f64(warmup),
                measure,
            };
            let run = load::ping_pong(
                clients,
                stop,
                &probe(server, order[i], placement),
                &placement.generator_cpus,
            );
            runs[i] = Some(match (runs[i].take(), run) {
                (_, Err(err)) => Err(err),
                (Some(Ok(mut sum)), Ok(run)) => {
                    sum.absorb(run);
                    Ok(sum)
                }
                (_, Ok(run)) => Ok(run),
            });
        }
    }
    live.into_iter()
        .zip(runs)
        .map(|(live, run)| {
            let (mut server, clients) = live?;
            let run = run.unwrap_or_else(|| Err("not measured".into()))?;
            let note = server.exit_note();
            drop(clients);
            if !note.is_empty() {
                return Err(format!("during the run{note}"));
            }
            Ok(LoadRow::from_run(&run))
        })
        .collect()
}

/// The server's resident memory before and after `count` connections that
/// were each answered once and then left idle.
fn idle_memory(
    subject: &Subject,
    count: usize,
    placement: &Placement,
) -> IdleRow {
    let result = (|| {
        let mut server =
            Server::start(&subject.command(count), placement.server_cpu)?;
        let before = server.rss_bytes()?;
        let clients = load::connect_all(
            server.addr,
            count,
            SETUP_TIMEOUT,
            &Protocol::Line,
        )
        .map_err(|err| format!("{err}{}", server.exit_note()))?;
        let after = server.rss_bytes()?;
        drop(clients);
        Ok((before, after))
    })();
    IdleRow::new(&subject.key, count, result)
}

/// Every server answers a few hundred requests correctly, alone and, for
/// the multi-client servers, on 20 connections at once.
fn smoke(
    subjects: &[Subject],
    placement: &Placement,
    idle: Option<usize>,
    machine: &report::Machine,
) -> Result<bool, String> {
    let started = Instant::now();
    let mut ok = true;
    let mut rows = Vec::new();
    let mut idle_rows = Vec::new();
    for subject in subjects {
        for conns in counts_for(subject, &[1, 20]) {
            let per_connection = 300 / conns as u64;
            let stop = Stop::Requests {
                per_connection,
                limit: Duration::from_secs(20),
            };
            let result = (|| {
                let mut server = Server::start(
                    &subject.command(conns),
                    placement.server_cpu,
                )?;
                let mut clients = load::connect_all(
                    server.addr,
                    conns,
                    SETUP_TIMEOUT,
                    &Protocol::Line,
                )
                .map_err(|err| format!("{err}{}", server.exit_note()))?;
                let run = load::ping_pong(
                    &mut clients,
                    stop,
                    &probe(&server, subject, placement),
                    &placement.generator_cpus,
                )?;
                let answered: u64 =
                    clients.iter().map(load::Conn::answered).sum();
                let expected = conns as u64 * (per_connection + 1);
                let note = server.exit_note();
                if run.errors > 0 || answered != expected || !note.is_empty() {
                    return Err(format!(
                        "{answered} of {expected} requests answered correctly; {} errors: {}{note}",
                        run.errors,
                        run.first_errors.join("; ")
                    ));
                }
                Ok((answered, run))
            })();
            match result {
                Ok((answered, run)) => {
                    println!(
                        "smoke {:<10} {conns:>2} connections: {answered} requests, every reply correct",
                        subject.key
                    );
                    let row = Ok(LoadRow::from_run(&run));
                    rows.push(report::gather(
                        &subject.key,
                        conns,
                        &[(1, &row)],
                    ));
                }
                Err(err) => {
                    println!(
                        "smoke {:<10} {conns:>2} connections: FAILED: {err}",
                        subject.key
                    );
                    ok = false;
                    rows.push(report::gather(
                        &subject.key,
                        conns,
                        &[(1, &Err(err))],
                    ));
                }
            }
        }
        if let (Some(count), true) = (idle, subject.measures_idle()) {
            let row = idle_memory(subject, count, placement);
            if let Err(err) = &row.result {
                println!(
                    "smoke {:<10} {count} idle connections: FAILED: {err}",
                    subject.key
                );
                ok = false;
            } else {
                println!(
                    "smoke {:<10} {count} idle connections: opened, answered once, memory read",
                    subject.key
                );
            }
            idle_rows.push(row);
        }
    }
    // The report and the plot are drawn from the smoke figures too (to a
    // scratch folder, not the book), so CI runs that code.
    let report = Report {
        machine: machine.clone(),
        subjects: subjects.to_vec(),
        rows,
        idle_rows,
        idle_count: idle,
        seconds: 0.0,
        warmup: 0.0,
        turns: 1,
        rounds: 1,
        disturbed_above: 0.15,
        placement: placement.clone(),
        nice: None,
        smoke: true,
        previous: None,
    };
    let scratch = workspace_root().join("target/bench-smoke");
    report.write(&scratch)?;
    println!(
        "smoke: {} servers, {} in {:.1} s; report drawn to {}",
        subjects.len(),
        if ok { "every reply correct" } else { "FAILED" },
        started.elapsed().as_secs_f64(),
        scratch.display()
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_run_gets_the_lessons_arguments_for_its_connection_count() {
        let pool = LESSONS.iter().find(|l| l.number == 11).unwrap();
        let subject = Subject {
            key: "lesson-11".into(),
            what: pool.what.into(),
            cmd: ServerCmd {
                binary: "lesson-11".into(),
                args: vec!["server".into()],
            },
            extra: pool.extra.iter().map(|a| a.to_string()).collect(),
            one_client_only: false,
            forks: false,
        };
        assert_eq!(
            subject.command(100).args,
            ["server", "--workers", "100", "--max-conns", "100"]
        );
    }

    #[test]
    fn any_line_server_can_be_named_on_the_command_line() {
        let subject = command_line_server(
            "mine=/usr/local/bin/echo-server --limit {conns}",
        )
        .unwrap();
        assert_eq!(subject.key, "mine");
        assert_eq!(
            subject.cmd.binary,
            std::path::PathBuf::from("/usr/local/bin/echo-server")
        );
        assert_eq!(
            subject.command(1000).args,
            ["server", "--addr", "127.0.0.1:0", "--limit", "1000"]
        );
        assert!(command_line_server("no-binary=").is_err());
        assert!(command_line_server("/bin/echo").is_err());
    }
}
