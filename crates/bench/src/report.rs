//! Figures, ratios to tokio, targets, and the files the book shows: a
//! Markdown table (results.md), the same numbers as JSON (results.json) and
//! a plot (results.svg).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Subject;
use crate::load::{Run, percentile};
use crate::sys::ticks_per_second;

/// The reference every ratio is taken against.
pub const REFERENCE: &str = "tokio";
/// The reference, started and measured a second time as one more server.
pub const REFERENCE_AGAIN: &str = "tokio-again";

/// One figure of a round: requests/s, p99 µs...
type Figure = fn(&LoadRow) -> f64;

/// One server at one connection count, in one round.
#[derive(Clone, Debug)]
pub struct LoadRow {
    pub requests_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_request: f64,
    /// Context switches of all the server's threads per request: each is
    /// a thread put to sleep or taken off the core, and another put on.
    pub switches_per_request: f64,
    /// The server's threads, and how many ended during the run (their
    /// switches are not counted: see [`crate::load::Switches`]).
    pub server_threads: usize,
    pub server_threads_gone: usize,
    /// How long reading every server thread's counters took, at the
    /// slower of the two reads, in milliseconds.
    pub switch_read_ms: f64,
    /// Share of one CPU the server used over the window.
    pub server_cpu_pct: f64,
    /// Share of the server's CPU time spent in the kernel (system time):
    /// its system calls, and on loopback the TCP path they run through.
    pub server_kernel_pct: f64,
    /// Share of one CPU the generator (this process) used, all its threads
    /// together.
    pub generator_cpu_pct: f64,
    /// Generator threads, each on a CPU of its own when pinned.
    pub generator_threads: usize,
    /// CPU time that other work (other processes, the hypervisor) took on
    /// the server's and the generator's CPUs, as a share of one CPU.
    pub other_work_pct: Option<f64>,
    /// The generator's CPU time per request: when it is not below the
    /// server's, the generator cannot outpace that server.
    pub generator_us_per_request: f64,
    /// Share of the window the server's CPU sat idle (pinned runs only):
    /// near 0 means the server never waited for a request, so nothing
    /// outside it (the generator included) held it back.
    pub server_core_idle_pct: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub unanswered: u64,
}

impl LoadRow {
    pub fn from_run(run: &Run) -> LoadRow {
        let seconds = run.window.as_secs_f64().max(1e-9);
        let mut latencies = run.latencies_ns.clone();
        latencies.sort_unstable();
        let us = |ns: Option<u64>| ns.map_or(f64::NAN, |ns| ns as f64 / 1000.0);
        let tick_us = 1e6 / ticks_per_second() as f64;
        LoadRow {
            requests_per_s: run.requests as f64 / seconds,
            p50_us: us(percentile(&latencies, 50.0)),
            p99_us: us(percentile(&latencies, 99.0)),
            // No tick at all in the window is below what the clock can
            // tell (a server starved by other work), not a free request.
            cpu_us_per_request: if run.requests == 0 || run.server_ticks == 0 {
                f64::NAN
            } else {
                run.server_ticks as f64 * tick_us / run.requests as f64
            },
            // Switches per second over the span between the reads, divided
            // by requests per second over the window (the same figure as
            // switches / requests when the two coincide).
            switches_per_request: if run.requests == 0 {
                f64::NAN
            } else {
                let span = run.server_switches.span.as_secs_f64().max(1e-9);
                (run.server_switches.count as f64 / span)
                    / (run.requests as f64 / seconds)
            },
            server_threads: run.server_switches.threads,
            server_threads_gone: run.server_switches.threads_gone,
            switch_read_ms: run.server_switches.read_time.as_secs_f64() * 1e3,
            // No tick at all: not read (a process per connection) or below
            // what the clock can tell, not an idle server.
            server_cpu_pct: if run.server_ticks == 0 {
                f64::NAN
            } else {
                run.server_ticks as f64 * tick_us / 1e6 / seconds * 100.0
            },
            server_kernel_pct: if run.server_ticks == 0 {
                f64::NAN
            } else {
                run.server_system_ticks as f64 / run.server_ticks as f64 * 100.0
            },
            generator_cpu_pct: run.own_ticks as f64 * tick_us / 1e6 / seconds
                * 100.0,
            generator_threads: run.threads.max(1),
            other_work_pct: run
                .other_ticks
                .map(|t| t as f64 * tick_us / 1e6 / seconds * 100.0),
            generator_us_per_request: if run.requests == 0 {
                f64::NAN
            } else {
                run.own_ticks as f64 * tick_us / run.requests as f64
            },
            server_core_idle_pct: run
                .server_core_idle_ticks
                .map(|t| t as f64 * tick_us / 1e6 / seconds * 100.0),
            requests: run.requests,
            errors: run.errors,
            first_errors: run.first_errors.clone(),
            unanswered: run.unanswered,
        }
    }

    /// Why this round does not count, if it does not.
    fn problem(&self) -> Option<String> {
        if self.errors > 0 || self.unanswered > 0 {
            Some(format!(
                "{} errors, {} requests unanswered: {}",
                self.errors,
                self.unanswered,
                self.first_errors.join("; ")
            ))
        } else if self.requests == 0 {
            Some("no request answered in the window".to_string())
        } else {
            None
        }
    }
}

/// The figures for one server at one connection count, from every round.
#[derive(Clone, Debug)]
pub struct Measured {
    pub key: String,
    pub conns: usize,
    /// The rounds, or why the figure failed: a wrong reply, a lost
    /// connection or a crash in any round fails it.
    pub result: Result<Figures, String>,
}

/// Every round's figures, and their medians.
#[derive(Clone, Debug)]
pub struct Figures {
    /// Each field the median of that field over the rounds.
    pub median: LoadRow,
    /// In round order, disturbed rounds included.
    pub rounds: Vec<LoadRow>,
    /// Where the server came in each round's order (1: first).
    pub positions: Vec<usize>,
}

/// The median of the finite values (the mean of the middle two for an
/// even count); `None` if there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> =
        values.into_iter().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

/// The lowest and the highest of the finite values.
pub fn range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().filter(|v| v.is_finite()).fold(None, |span, v| {
        let (low, high) = span.unwrap_or((v, v));
        Some((low.min(v), high.max(v)))
    })
}

impl LoadRow {
    /// Each figure's median over `rounds`; counts (requests, errors) are
    /// summed, thread counts taken from the last round.
    fn median_of(rounds: &[LoadRow]) -> Option<LoadRow> {
        let last = rounds.last()?;
        let of = |value: Figure| {
            median(rounds.iter().map(value)).unwrap_or(f64::NAN)
        };
        let of_some = |value: fn(&LoadRow) -> Option<f64>| {
            median(rounds.iter().filter_map(value))
        };
        Some(LoadRow {
            requests_per_s: of(|r| r.requests_per_s),
            p50_us: of(|r| r.p50_us),
            p99_us: of(|r| r.p99_us),
            cpu_us_per_request: of(|r| r.cpu_us_per_request),
            switches_per_request: of(|r| r.switches_per_request),
            switch_read_ms: of(|r| r.switch_read_ms),
            server_cpu_pct: of(|r| r.server_cpu_pct),
            server_kernel_pct: of(|r| r.server_kernel_pct),
            generator_cpu_pct: of(|r| r.generator_cpu_pct),
            other_work_pct: of_some(|r| r.other_work_pct),
            generator_us_per_request: of(|r| r.generator_us_per_request),
            server_core_idle_pct: of_some(|r| r.server_core_idle_pct),
            requests: rounds.iter().map(|r| r.requests).sum(),
            errors: rounds.iter().map(|r| r.errors).sum(),
            unanswered: rounds.iter().map(|r| r.unanswered).sum(),
            ..last.clone()
        })
    }
}

/// Gathers one server's rounds at one connection count, given as (its
/// place in the round's order, what the round measured); a failed round
/// fails the figure.
pub fn gather(
    key: &str,
    conns: usize,
    rounds: &[(usize, &Result<LoadRow, String>)],
) -> Measured {
    let mut good = Vec::new();
    let mut positions = Vec::new();
    let mut failure = None;
    for (i, (position, round)) in rounds.iter().enumerate() {
        let problem = match round {
            Ok(row) => row.problem(),
            Err(err) => Some(err.clone()),
        };
        match (problem, round) {
            (None, Ok(row)) => {
                good.push(row.clone());
                positions.push(*position);
            }
            (problem, _) => {
                failure = failure.or(problem.map(|p| {
                    format!("round {} of {}: {p}", i + 1, rounds.len())
                }))
            }
        }
    }
    let result = match (failure, LoadRow::median_of(&good)) {
        (Some(err), _) => Err(err),
        (None, None) => Err("not measured".to_string()),
        (None, Some(median)) => Ok(Figures { median, rounds: good, positions }),
    };
    Measured { key: key.to_string(), conns, result }
}

impl Measured {
    /// The rounds, if the figure did not fail.
    pub fn rounds(&self) -> &[LoadRow] {
        self.result.as_ref().map_or(&[], |f| f.rounds.as_slice())
    }
}

/// `low–high` with `digits` decimals, or `–` for fewer than two values.
fn span_cell(values: &[f64], digits: usize) -> String {
    match range(values.iter().copied()) {
        Some((low, high)) if values.len() >= 2 => {
            format!("{low:.digits$}–{high:.digits$}")
        }
        _ => "–".to_string(),
    }
}

/// `1 connection`, `100 connections`.
fn connections(n: usize) -> String {
    if n == 1 { "1 connection".into() } else { format!("{n} connections") }
}

/// The previous run's median ratios to tokio, read back from the
/// results.json it left, to show how far two runs of the bench differ.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Previous {
    pub date: String,
    pub rounds: usize,
    pub seconds: f64,
    /// Turns each window was cut into; 1 for a run written before turns.
    pub turns: usize,
    /// (server, connections, requests/s × tokio, CPU µs/request × tokio).
    pub ratios: Vec<(String, usize, f64, f64)>,
}

impl Previous {
    /// The previous run in `path`, if there is one this bench wrote with
    /// rounds (a smoke run or an older format gives `None`).
    pub fn read(path: &Path) -> Option<Previous> {
        Previous::parse(&fs::read_to_string(path).ok()?)
    }

    /// Reads the lines [`Report::json`] writes: the date, the settings,
    /// then one line per server and connection count.
    fn parse(json: &str) -> Option<Previous> {
        // The text after `name` up to the next `,` or `}`.
        fn after<'a>(line: &'a str, name: &str) -> Option<&'a str> {
            let (_, rest) = line.split_once(name)?;
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            Some(rest[..end].trim().trim_matches('"'))
        }
        let mut previous = Previous::default();
        for line in json.lines() {
            if let Some(date) = after(line, "\"date\": ") {
                previous.date = date.to_string();
            } else if line.contains("\"settings\": {") {
                if after(line, "\"smoke\": ")? != "false" {
                    return None;
                }
                previous.rounds = after(line, "\"rounds\": ")?.parse().ok()?;
                previous.seconds =
                    after(line, "{\"seconds\": ")?.parse().ok()?;
                // A run written before the bench took turns had one each.
                previous.turns = match after(line, "\"turns\": ") {
                    Some(turns) => turns.parse().ok()?,
                    None => 1,
                };
            } else if line.contains("{\"server\": ")
                && line.contains("\"median\": {")
            {
                let (_, ratios) = line.split_once("\"ratio_to_tokio\": {")?;
                let ratio = |name| after(ratios, name)?.parse::<f64>().ok();
                if let (Some(rps), Some(cpu)) = (
                    ratio("\"requests_per_s\": "),
                    ratio("\"cpu_us_per_request\": "),
                ) {
                    previous.ratios.push((
                        after(line, "{\"server\": ")?.to_string(),
                        after(line, "\"connections\": ")?.parse().ok()?,
                        rps,
                        cpu,
                    ));
                }
            }
        }
        (!previous.ratios.is_empty()).then_some(previous)
    }

    /// Both ratios of `key` at `conns` in the previous run.
    fn ratios(&self, key: &str, conns: usize) -> Option<(f64, f64)> {
        self.ratios
            .iter()
            .find(|(k, n, _, _)| k == key && *n == conns)
            .map(|&(_, _, rps, cpu)| (rps, cpu))
    }
}

/// One ratio pair in this run and in the previous one.
struct Change<'a> {
    key: &'a str,
    conns: usize,
    /// (requests/s × tokio, CPU µs/request × tokio).
    now: (f64, f64),
    before: (f64, f64),
    /// now / before - 1, for each.
    change: (f64, f64),
}

/// A share as a signed whole percentage: `+2 %`, `-15 %`, `+0 %`.
fn signed_percent(share: f64) -> String {
    if !share.is_finite() {
        return "–".to_string();
    }
    // Adding 0.0 turns a -0 (a small negative share rounded) into +0.
    format!("{:+.0} %", (share * 100.0).round() + 0.0)
}

/// How far a round of tokio was from its medians: `+2 % · -1 %`
/// (requests/s, then CPU µs/request).
fn offset_cell(o: &Offset) -> String {
    format!(
        "{} · {}",
        signed_percent(o.requests_per_s),
        signed_percent(o.cpu_us_per_request)
    )
}

/// Memory with many idle connections.
#[derive(Clone, Debug)]
pub struct IdleRow {
    pub key: String,
    pub count: usize,
    /// RSS before and after opening the connections, in bytes.
    pub result: Result<(u64, u64), String>,
}

impl IdleRow {
    pub fn new(
        key: &str,
        count: usize,
        result: Result<(u64, u64), String>,
    ) -> IdleRow {
        IdleRow { key: key.to_string(), count, result }
    }

    /// (RSS after - RSS before) / connections; negative if the server
    /// returned memory to the system meanwhile.
    pub fn bytes_per_conn(&self) -> Option<f64> {
        let (before, after) = *self.result.as_ref().ok()?;
        Some((after as f64 - before as f64) / self.count as f64)
    }
}

/// The machine the figures come from.
#[derive(Clone, Debug)]
pub struct Machine {
    pub date: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// How busy the machine's CPUs were, in percent, over the second
    /// before the measurements: other work lowers and scatters the figures.
    pub busy_before: Option<f64>,
}

impl Machine {
    /// Reads the machine's description; with `sample_busy`, also watches
    /// the CPUs for one second to see how busy other work keeps them.
    pub fn read(sample_busy: bool) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpus =
            cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or("unknown".to_string(), |k| k.trim().to_string());
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400) as i64;
        let (y, m, d) = transcript::calendar::civil_from_days(days);
        let busy_before = sample_busy.then(busy_share).flatten();
        Machine {
            date: format!("{y:04}-{m:02}-{d:02}"),
            cpus,
            cpu_model,
            kernel,
            busy_before,
        }
    }
}

/// The share of all CPUs' time that was not idle over the next second
/// (/proc/stat's `cpu` line, `man 5 proc`). Unlike the load average, which
/// counts every thread that was runnable, this is time really used.
fn busy_share() -> Option<f64> {
    let totals = || -> Option<(u64, u64)> {
        let stat = fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let idle = fields.get(3)? + fields.get(4)?;
        Some((idle, fields.iter().sum()))
    };
    let (idle0, total0) = totals()?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (idle1, total1) = totals()?;
    let total = total1.checked_sub(total0).filter(|&t| t > 0)?;
    Some(100.0 * (1.0 - idle1.saturating_sub(idle0) as f64 / total as f64))
}

/// A target the course sets for a server, checked against ratios to tokio
/// in the same run (the idle memory in bytes).
struct Target {
    key: &'static str,
    metric: Metric,
    conns: usize,
    at_least: bool,
    bound: f64,
}

#[derive(Clone, Copy)]
enum Metric {
    RequestsRatio,
    CpuRatio,
    IdleBytes,
}

/// The course's target for `key`'s bytes per idle connection, if it has
/// one (the plot draws it as a line).
pub fn idle_target(key: &str) -> Option<f64> {
    TARGETS
        .iter()
        .find(|t| t.key == key && matches!(t.metric, Metric::IdleBytes))
        .map(|t| t.bound)
}

const TARGETS: &[Target] = &[
    Target {
        key: "lesson-13",
        metric: Metric::RequestsRatio,
        conns: 100,
        at_least: true,
        bound: 1.05,
    },
    Target {
        key: "lesson-13",
        metric: Metric::RequestsRatio,
        conns: 1000,
        at_least: true,
        bound: 1.05,
    },
    Target {
        key: "lesson-13",
        metric: Metric::CpuRatio,
        conns: 100,
        at_least: false,
        bound: 0.95,
    },
    Target {
        key: "lesson-13",
        metric: Metric::CpuRatio,
        conns: 1000,
        at_least: false,
        bound: 1.0,
    },
    Target {
        key: "lesson-13",
        metric: Metric::IdleBytes,
        conns: 0,
        at_least: false,
        bound: 128.0,
    },
    Target {
        key: "lesson-12",
        metric: Metric::RequestsRatio,
        conns: 100,
        at_least: true,
        bound: 0.8,
    },
    Target {
        key: "lesson-11",
        metric: Metric::RequestsRatio,
        conns: 100,
        at_least: true,
        bound: 0.75,
    },
    Target {
        key: "lesson-10",
        metric: Metric::RequestsRatio,
        conns: 100,
        at_least: true,
        bound: 0.7,
    },
];

/// A figure with two decimals, or "–" where it was not measured.
pub fn figure(value: f64) -> String {
    if value.is_finite() { format!("{value:.2}") } else { "–".to_string() }
}

/// A share in whole per cent, or "–" when it could not be read (the
/// process-per-connection server's CPU time).
pub fn percent(value: f64) -> String {
    if value.is_finite() { format!("{value:.0} %") } else { "–".to_string() }
}

/// One target and how it came out.
pub struct Checked {
    pub what: String,
    /// The measured value, or why there is none.
    pub measured: Result<f64, String>,
    pub met: bool,
    /// Set when a server's core sat idle in a run the ratio comes from:
    /// something outside the server (the generator, other work on the
    /// machine) set the pace, so the ratio is not the servers' alone.
    pub caveat: Option<String>,
}

/// A server that used less of its core than this, with requests always
/// waiting for it, was not what limited its run: it waited for requests
/// (its core idle) or other work took its core.
pub const SERVER_BOUND_CPU_PCT: f64 = 90.0;

/// Other work taking more than this share of a CPU from the server and the
/// generator disturbs a run enough to say so.
pub const OTHER_WORK_LIMIT_PCT: f64 = 10.0;

/// How a window was cut: "in 8 turns of 0.25 s", or "in one piece".
pub fn in_turns(seconds: f64, turns: usize) -> String {
    match turns {
        0 | 1 => "in one piece".to_string(),
        n => format!("in {n} turns of {} s", seconds / n as f64),
    }
}

pub struct Report {
    pub machine: Machine,
    pub subjects: Vec<Subject>,
    pub rows: Vec<Measured>,
    pub idle_rows: Vec<IdleRow>,
    pub idle_count: Option<usize>,
    pub seconds: f64,
    pub warmup: f64,
    /// Turns each window was cut into (see `measure_in_turns`).
    pub turns: usize,
    pub rounds: usize,
    /// A round is disturbed when the reference's requests/s or CPU
    /// µs/request in it is further than this share from the reference's
    /// median (0.15: 15 %).
    pub disturbed_above: f64,
    pub placement: crate::Placement,
    pub nice: Option<i32>,
    /// Smoke figures: correct replies, meaningless timing.
    pub smoke: bool,
    /// The run before this one, from the results it left in the folder.
    pub previous: Option<Previous>,
}

/// How far the reference's round is from its median, as shares (-0.2:
/// 20 % below): requests/s, then CPU µs/request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Offset {
    pub requests_per_s: f64,
    pub cpu_us_per_request: f64,
}

impl Offset {
    fn beyond(&self, limit: f64) -> bool {
        self.requests_per_s.abs() > limit
            || self.cpu_us_per_request.abs() > limit
    }
}

impl Report {
    /// The medians of `key`'s rounds at `conns`.
    pub fn row(&self, key: &str, conns: usize) -> Option<&LoadRow> {
        Some(&self.figures(key, conns)?.median)
    }

    pub fn figures(&self, key: &str, conns: usize) -> Option<&Figures> {
        self.rows
            .iter()
            .find(|r| r.key == key && r.conns == conns)?
            .result
            .as_ref()
            .ok()
    }

    fn idle(&self, key: &str) -> Option<f64> {
        self.idle_rows.iter().find(|r| r.key == key)?.bytes_per_conn()
    }

    /// Round by round, `value` of `key` over `value` of tokio in the same
    /// round at the same connection count: the two were measured minutes
    /// apart at most, under the same conditions.
    pub fn round_ratios(
        &self,
        key: &str,
        conns: usize,
        value: impl Fn(&LoadRow) -> f64,
    ) -> Vec<Option<f64>> {
        let (Some(of), Some(reference)) =
            (self.figures(key, conns), self.figures(REFERENCE, conns))
        else {
            return Vec::new();
        };
        of.rounds
            .iter()
            .zip(&reference.rounds)
            .map(|(o, r)| Some(value(o) / value(r)).filter(|x| x.is_finite()))
            .collect()
    }

    /// The median of the per-round ratios to tokio.
    pub fn ratio(
        &self,
        key: &str,
        conns: usize,
        value: impl Fn(&LoadRow) -> f64,
    ) -> Option<f64> {
        median(self.round_ratios(key, conns, value).into_iter().flatten())
    }

    /// The lowest and the highest per-round ratio to tokio.
    pub fn ratio_range(
        &self,
        key: &str,
        conns: usize,
        value: impl Fn(&LoadRow) -> f64,
    ) -> Option<(f64, f64)> {
        range(self.round_ratios(key, conns, value).into_iter().flatten())
    }

    /// For each round at `conns`, how far tokio's figures were from their
    /// medians.
    pub fn offsets(&self, conns: usize) -> Vec<Offset> {
        let Some(reference) = self.figures(REFERENCE, conns) else {
            return Vec::new();
        };
        let m = &reference.median;
        reference
            .rounds
            .iter()
            .map(|r| Offset {
                requests_per_s: r.requests_per_s / m.requests_per_s - 1.0,
                cpu_us_per_request: r.cpu_us_per_request / m.cpu_us_per_request
                    - 1.0,
            })
            .collect()
    }

    /// Which rounds at `conns` were disturbed: tokio's figure in them far
    /// from its median. Other work that slowed that round slowed it for
    /// every server measured back to back with it, or for some of them
    /// only: either way, that round's ratios are less to be trusted.
    pub fn disturbed(&self, conns: usize) -> Vec<bool> {
        self.offsets(conns)
            .iter()
            .map(|o| !self.smoke && o.beyond(self.disturbed_above))
            .collect()
    }

    /// The connection counts measured, lowest first.
    pub fn counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> =
            self.rows.iter().map(|r| r.conns).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// Every disturbed round, as (round, connections, offset), and how
    /// many rounds there were in all (one per round and connection count).
    pub fn disturbed_rounds(&self) -> (Vec<(usize, usize, Offset)>, usize) {
        let mut found = Vec::new();
        let mut all = 0;
        for conns in self.counts() {
            let offsets = self.offsets(conns);
            all += offsets.len();
            for (i, (o, bad)) in
                offsets.iter().zip(self.disturbed(conns)).enumerate()
            {
                if bad {
                    found.push((i + 1, conns, *o));
                }
            }
        }
        (found, all)
    }

    pub fn idle_ratio(&self, key: &str) -> Option<f64> {
        let ratio = self.idle(key)? / self.idle(REFERENCE)?;
        ratio.is_finite().then_some(ratio)
    }

    pub fn what(&self, key: &str) -> &str {
        self.subjects
            .iter()
            .find(|s| s.key == key)
            .map_or("", |s| s.what.as_str())
    }

    pub fn targets(&self) -> Vec<Checked> {
        TARGETS
            .iter()
            .map(|t| {
                let (name, unit) = match t.metric {
                    Metric::RequestsRatio => (
                        format!("requests/s at {} connections", t.conns),
                        "× tokio",
                    ),
                    Metric::CpuRatio => (
                        format!("CPU µs/request at {} connections", t.conns),
                        "× tokio",
                    ),
                    Metric::IdleBytes => {
                        ("bytes per idle connection".to_string(), "bytes")
                    }
                };
                let what = format!(
                    "{} ({}): {name} {} {} {unit}",
                    t.key,
                    self.what_or_lesson(t.key),
                    if t.at_least { "≥" } else { "≤" },
                    t.bound
                );
                let exists = self.subjects.iter().any(|s| s.key == t.key);
                let measured = if !exists {
                    let why = if crate::lesson_crate_exists(t.key) {
                        "left out of this run (--only)"
                    } else {
                        "does not exist yet"
                    };
                    Err(format!("not measured: {} {why}", t.key))
                } else {
                    let value = match t.metric {
                        Metric::RequestsRatio => {
                            self.ratio(t.key, t.conns, |r| r.requests_per_s)
                        }
                        Metric::CpuRatio => {
                            self.ratio(t.key, t.conns, |r| r.cpu_us_per_request)
                        }
                        Metric::IdleBytes => self.idle(t.key),
                    };
                    value.ok_or_else(|| match t.metric {
                        Metric::IdleBytes if self.idle_count.is_none() => {
                            "not measured: the run skipped the idle connections (--idle 0)"
                                .to_string()
                        }
                        _ => "not measured: see the tables".to_string(),
                    })
                };
                let met = measured.as_ref().is_ok_and(|&v| {
                    if t.at_least { v >= t.bound } else { v <= t.bound }
                });
                let caveat = match (t.metric, &measured) {
                    (Metric::IdleBytes, _) | (_, Err(_)) => None,
                    (metric, _) => {
                        let notes: Vec<String> = [
                            self.pace_caveat(t.key, t.conns),
                            self.rounds_straddle(t, metric),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        (!notes.is_empty()).then(|| notes.join("; "))
                    }
                };
                Checked { what, measured, met, caveat }
            })
            .collect()
    }

    /// When some rounds meet the target and others do not, says how many
    /// do and the range of their ratios: the median alone would hide that
    /// one more run could come out on the other side.
    fn rounds_straddle(&self, t: &Target, metric: Metric) -> Option<String> {
        let ratios: Vec<f64> = match metric {
            Metric::RequestsRatio => {
                self.round_ratios(t.key, t.conns, |r| r.requests_per_s)
            }
            Metric::CpuRatio => {
                self.round_ratios(t.key, t.conns, |r| r.cpu_us_per_request)
            }
            Metric::IdleBytes => return None,
        }
        .into_iter()
        .flatten()
        .collect();
        let meeting = ratios
            .iter()
            .filter(|&&v| if t.at_least { v >= t.bound } else { v <= t.bound })
            .count();
        let (low, high) = range(ratios.iter().copied())?;
        (0 < meeting && meeting < ratios.len()).then(|| {
            format!(
                "the rounds straddle the target: {meeting} of {} rounds meet it, their ratios range {low:.2}–{high:.2}",
                ratios.len()
            )
        })
    }

    /// Which of the two runs behind a ratio left its server's core idle.
    fn pace_caveat(&self, key: &str, conns: usize) -> Option<String> {
        let limits: Vec<String> = [key, REFERENCE]
            .iter()
            .filter_map(|k| {
                let row = self.row(k, conns)?;
                let other =
                    row.other_work_pct.filter(|&o| o > OTHER_WORK_LIMIT_PCT);
                (row.server_cpu_pct < SERVER_BOUND_CPU_PCT || other.is_some())
                    .then(|| {
                        let idle = row
                            .server_core_idle_pct
                            .map_or(String::new(), |i| {
                                format!(", its core idle {i:.0} %")
                            });
                        let other = other.map_or(String::new(), |o| {
                            format!(", other work {o:.0} % of a CPU")
                        });
                        format!(
                            "{k} used {:.0} % of its core{idle}{other}",
                            row.server_cpu_pct
                        )
                    })
            })
            .collect();
        (!limits.is_empty()).then(|| {
            format!(
                "{}: the server was not the limit, or other work on the machine disturbed the run",
                limits.join("; ")
            )
        })
    }

    fn what_or_lesson(&self, key: &str) -> String {
        let what = self.what(key);
        if what.is_empty() {
            crate::LESSONS
                .iter()
                .find(|l| format!("lesson-{:02}", l.number) == key)
                .map_or(String::new(), |l| l.what.to_string())
        } else {
            what.to_string()
        }
    }

    /// A timed run with fewer rounds or shorter windows than the defaults:
    /// a trial of the bench, not figures to conclude from.
    pub fn short(&self) -> bool {
        !self.smoke
            && (self.seconds < crate::DEFAULT_SECONDS
                || self.warmup < crate::DEFAULT_WARMUP
                || self.rounds < usize::from(crate::DEFAULT_ROUNDS))
    }

    /// The conditions, in one paragraph.
    fn conditions(&self) -> String {
        let m = &self.machine;
        let p = &self.placement;
        let pinning = match p.server_cpu {
            Some(server) => {
                let cpus: Vec<String> =
                    p.generator_cpus.iter().map(|c| c.to_string()).collect();
                let threads = if cpus.len() == 1 {
                    format!(
                        "the load generator (one thread) to CPU {}",
                        cpus[0]
                    )
                } else {
                    format!(
                        "the load generator to CPUs {}, one thread each",
                        cpus.join(", ")
                    )
                };
                format!("each server pinned to CPU {server} and {threads}")
            }
            None => "server and generator not pinned".to_string(),
        };
        let warning = if self.short() {
            "**A short run** (fewer rounds or shorter windows than `just bench` uses by default): its figures show what the bench writes, not what the servers cost. "
        } else {
            ""
        };
        let how = if self.smoke {
            "a smoke run: a few hundred requests per server, checked for correctness; its timing means nothing".to_string()
        } else {
            format!(
                "{} rounds; in each round every server is measured once at each connection count, each time on a fresh server process, {} s of warm-up then {} s measured, {}, taken in alternation with the other servers at that count, in an order that moves by one server from round to round; each figure is the median of the rounds, each × tokio the median of the rounds' ratios (the server's figure over tokio's in the same round), with the range of those ratios",
                self.rounds,
                self.warmup,
                self.seconds,
                in_turns(self.seconds, self.turns)
            )
        };
        let nice =
            self.nice.map_or(String::new(), |n| format!(", at nice {n}"));
        let busy = m.busy_before.map_or(String::new(), |b| {
            format!(", {b:.0} % busy with other work in the second before")
        });
        format!(
            "{warning}Measured on {} on Linux {}, {} CPUs ({}){busy}; {pinning}{nice}; {how}; 64-byte request lines, one request in flight per connection.",
            m.date, m.kernel, m.cpus, m.cpu_model
        )
    }

    /// How many rounds were disturbed, and which.
    pub fn disturbed_summary(&self) -> String {
        if self.smoke {
            return "Smoke figures: no round is judged disturbed.".into();
        }
        let (found, all) = self.disturbed_rounds();
        let rule = format!(
            "A round is disturbed when tokio's requests/s or CPU µs/request in it is more than {:.0} % from tokio's median at that connection count",
            self.disturbed_above * 100.0
        );
        // A round measures tokio once at each connection count.
        let counts = all / self.rounds.max(1);
        let of = match counts {
            1 => format!("{all} measurements of tokio (one a round)"),
            _ => format!(
                "{all} measurements of tokio ({} at each of {counts} connection counts)",
                self.rounds
            ),
        };
        if found.is_empty() {
            return format!("{rule}: none of the {of} was.");
        }
        let which: Vec<String> = found
            .iter()
            .map(|(round, conns, o)| {
                format!(
                    "round {round} at {} ({})",
                    connections(*conns),
                    offset_cell(o)
                )
            })
            .collect();
        format!(
            "{rule}: {} of the {of} {}: {}. Their rounds stay in every median and range, and are marked in the rounds table and the plot.",
            found.len(),
            if found.len() == 1 { "was" } else { "were" },
            which.join(", ")
        )
    }

    /// The main table's cells, one row per server and connection count.
    fn load_cells(&self) -> Vec<Vec<String>> {
        let mut cells = Vec::new();
        for row in &self.rows {
            let key = &row.key;
            let n = row.conns;
            let ratio = |value: Figure| {
                self.ratio(key, n, value)
                    .map_or("–".to_string(), |r| format!("{r:.2}"))
            };
            let ratios = |value: Figure| {
                let all: Vec<f64> = self
                    .round_ratios(key, n, value)
                    .into_iter()
                    .flatten()
                    .collect();
                span_cell(&all, 2)
            };
            let all = |value: Figure, digits| {
                let all: Vec<f64> = row.rounds().iter().map(value).collect();
                span_cell(&all, digits)
            };
            let mut line = vec![key.clone(), n.to_string()];
            match &row.result {
                Ok(f) => {
                    let r = &f.median;
                    line.extend([
                        format!("{:.0}", r.requests_per_s),
                        all(|r| r.requests_per_s, 0),
                        ratio(|r| r.requests_per_s),
                        ratios(|r| r.requests_per_s),
                        format!("{:.1}", r.p50_us),
                        ratio(|r| r.p50_us),
                        format!("{:.1}", r.p99_us),
                        ratio(|r| r.p99_us),
                        figure(r.cpu_us_per_request),
                        all(|r| r.cpu_us_per_request, 2),
                        ratio(|r| r.cpu_us_per_request),
                        ratios(|r| r.cpu_us_per_request),
                    ])
                }
                Err(err) => {
                    line.push(format!("failed: {err}"));
                    line.extend(std::iter::repeat_n(
                        String::new(),
                        Self::LOAD_HEAD.len() - 3,
                    ));
                }
            }
            cells.push(line);
        }
        cells
    }

    const LOAD_HEAD: [&'static str; 14] = [
        "server",
        "connections",
        "requests/s",
        // Every round's figure, lowest to highest: the noise to read the
        // ratios against.
        "all rounds",
        "× tokio",
        // The lowest and highest ratio of a round: where one more run
        // could put the ratio.
        "× tokio, rounds",
        "p50 µs",
        "× tokio",
        "p99 µs",
        "× tokio",
        "server CPU µs/request",
        "all rounds",
        "× tokio",
        "× tokio, rounds",
    ];

    /// The figures that say whether the server set the pace of its run.
    fn limit_cells(&self) -> Vec<Vec<String>> {
        let pct = |p: Option<f64>| percent(p.unwrap_or(f64::NAN));
        self.rows
            .iter()
            .filter_map(|row| {
                let r = &row.result.as_ref().ok()?.median;
                Some(vec![
                    row.key.clone(),
                    row.conns.to_string(),
                    format!("{:.2}", r.switches_per_request),
                    pct(Some(r.server_cpu_pct)),
                    pct(Some(r.server_kernel_pct).filter(|p| p.is_finite())),
                    pct(r.server_core_idle_pct),
                    pct(Some(r.generator_cpu_pct)),
                    format!("{:.2}", r.generator_us_per_request),
                    pct(r.other_work_pct),
                ])
            })
            .collect()
    }

    const LIMIT_HEAD: [&'static str; 9] = [
        "server",
        "connections",
        // No ratio: tokio's figure is close to 0 at 100 connections and
        // more, and a ratio to it would swing with every run.
        "server switches/request",
        "server CPU",
        // Of the server's CPU time, the part in the kernel (system time).
        "of it in the kernel",
        "server's core idle",
        "generator CPU",
        "generator CPU µs/request",
        "other work",
    ];

    /// The servers other than tokio, in the report's order.
    fn others(&self) -> Vec<&str> {
        self.subjects
            .iter()
            .map(|s| s.key.as_str())
            .filter(|&k| k != REFERENCE)
            .collect()
    }

    /// One row per round and connection count: tokio's figures, how far
    /// they were from its medians, and every other server's ratios.
    fn round_cells(&self) -> Vec<Vec<String>> {
        let mut cells = Vec::new();
        for conns in self.counts() {
            let Some(reference) = self.figures(REFERENCE, conns) else {
                continue;
            };
            let offsets = self.offsets(conns);
            let disturbed = self.disturbed(conns);
            // Per server: (requests/s, CPU µs/request) ratios by round.
            let ratios: Vec<[Vec<Option<f64>>; 2]> = self
                .others()
                .iter()
                .map(|k| {
                    [
                        self.round_ratios(k, conns, |r| r.requests_per_s),
                        self.round_ratios(k, conns, |r| r.cpu_us_per_request),
                    ]
                })
                .collect();
            for (i, r) in reference.rounds.iter().enumerate() {
                let mut off = offset_cell(&offsets[i]);
                if disturbed[i] {
                    off = format!("**disturbed**: {off}");
                }
                let mut line = vec![
                    (i + 1).to_string(),
                    conns.to_string(),
                    format!("{:.0}", r.requests_per_s),
                    figure(r.cpu_us_per_request),
                    off,
                ];
                for [rps, cpu] in &ratios {
                    line.push(match (rps.get(i), cpu.get(i)) {
                        (Some(Some(a)), Some(Some(b))) => {
                            format!("{a:.2} · {b:.2}")
                        }
                        _ => "–".to_string(),
                    });
                }
                cells.push(line);
            }
        }
        cells
    }

    fn round_head(&self) -> Vec<&str> {
        let mut head = vec![
            "round",
            "connections",
            "tokio requests/s",
            "tokio CPU µs/request",
            "tokio from its medians",
        ];
        head.extend(self.others());
        head
    }

    /// This run's median ratios to tokio next to the previous run's, and
    /// how far apart they are.
    fn previous_cells(&self) -> Vec<Vec<String>> {
        self.changes()
            .into_iter()
            .map(|c| {
                vec![
                    c.key.to_string(),
                    c.conns.to_string(),
                    format!("{:.2}", c.now.0),
                    format!("{:.2}", c.before.0),
                    signed_percent(c.change.0),
                    format!("{:.2}", c.now.1),
                    format!("{:.2}", c.before.1),
                    signed_percent(c.change.1),
                ]
            })
            .collect()
    }

    const PREVIOUS_HEAD: [&'static str; 8] = [
        "server",
        "connections",
        "requests/s × tokio",
        "previous run",
        "change",
        "CPU µs/request × tokio",
        "previous run",
        "change",
    ];

    /// Every ratio both runs have: (requests/s, CPU µs/request) now,
    /// before, and the relative change.
    fn changes(&self) -> Vec<Change<'_>> {
        let Some(previous) = &self.previous else { return Vec::new() };
        self.rows
            .iter()
            .filter(|row| row.key != REFERENCE)
            .filter_map(|row| {
                let (key, conns) = (row.key.as_str(), row.conns);
                let before = previous.ratios(key, conns)?;
                let now = (
                    self.ratio(key, conns, |r| r.requests_per_s)?,
                    self.ratio(key, conns, |r| r.cpu_us_per_request)?,
                );
                let change = (now.0 / before.0 - 1.0, now.1 / before.1 - 1.0);
                Some(Change { key, conns, now, before, change })
            })
            .collect()
    }

    /// How far the previous run's ratios are from this run's, at most.
    fn previous_finding(&self) -> Option<String> {
        let previous = self.previous.as_ref()?;
        let changes = self.changes();
        let most = |pick: fn(&Change) -> f64| {
            let c = changes
                .iter()
                .max_by(|a, b| pick(a).abs().total_cmp(&pick(b).abs()))?;
            Some(format!(
                "{:.0} % ({} at {})",
                pick(c).abs() * 100.0,
                c.key,
                connections(c.conns)
            ))
        };
        Some(format!(
            "the median ratios to tokio differ from the previous run's ({}, {} rounds of {} s) by at most {} for requests/s and {} for CPU µs/request",
            previous.date,
            previous.rounds,
            previous.seconds,
            most(|c| c.change.0)?,
            most(|c| c.change.1)?
        ))
    }

    /// Sentences computed from the figures, for the appendix to lean on:
    /// where each ratio lies against 1, how far tokio's own rounds strayed,
    /// and the context switches per request under load.
    pub fn findings(&self) -> Vec<String> {
        let mut found = Vec::new();
        let counts = self.counts();
        // How far undisturbed rounds of one server strayed from its median:
        // the noise of this machine, round to round. A single undisturbed
        // round at a count is no spread at all, so it says nothing.
        let calm: Vec<f64> = counts
            .iter()
            .filter(|&&n| self.disturbed(n).iter().filter(|b| !**b).count() > 1)
            .flat_map(|&n| {
                self.offsets(n)
                    .into_iter()
                    .zip(self.disturbed(n))
                    .filter(|(_, bad)| !bad)
                    .flat_map(|(o, _)| {
                        [o.requests_per_s.abs(), o.cpu_us_per_request.abs()]
                    })
            })
            .collect();
        if let Some((_, most)) = range(calm.iter().copied()) {
            found.push(format!(
                "tokio's undisturbed rounds were within {:.0} % of its medians (requests/s and CPU µs/request, at every connection count): two rounds of one server can differ by that much with nothing changed",
                most * 100.0
            ));
        } else if !self.smoke && self.rounds > 1 {
            found.push(
                "too few of tokio's rounds were undisturbed to tell how far rounds of one server differ on this machine"
                    .to_string(),
            );
        }
        for key in self.others() {
            for (what, value) in [
                ("requests/s", (|r: &LoadRow| r.requests_per_s) as Figure),
                ("CPU µs/request", |r: &LoadRow| r.cpu_us_per_request),
            ] {
                let parts: Vec<String> = counts
                    .iter()
                    .filter_map(|&n| {
                        let m = self.ratio(key, n, value)?;
                        let (low, high) = self.ratio_range(key, n, value)?;
                        let side = if low > 1.0 {
                            "above 1 in every round"
                        } else if high < 1.0 {
                            "below 1 in every round"
                        } else {
                            "on both sides of 1"
                        };
                        Some(format!(
                            "{} {m:.2} (rounds {low:.2}–{high:.2}, {side})",
                            connections(n)
                        ))
                    })
                    .collect();
                if !parts.is_empty() {
                    found.push(format!(
                        "{key} ({}), {what} × tokio: {}",
                        self.what(key),
                        parts.join("; ")
                    ));
                }
            }
        }
        if let Some(&most) = counts.last().filter(|&&n| n > 1) {
            let switches: Vec<String> = self
                .subjects
                .iter()
                .filter_map(|s| {
                    let r = self.row(&s.key, most)?;
                    Some(format!("{} {:.2}", s.key, r.switches_per_request))
                })
                .collect();
            found.push(format!(
                "server switches/request at {most} connections: {}",
                switches.join(", ")
            ));
            let kernel: Vec<String> = self
                .subjects
                .iter()
                .filter_map(|s| {
                    let r = self.row(&s.key, most)?;
                    // Not measured (a process per connection): left out.
                    let pct =
                        Some(r.server_kernel_pct).filter(|p| p.is_finite())?;
                    Some(format!("{} {pct:.0} %", s.key))
                })
                .collect();
            found.push(format!(
                "share of the server's CPU time spent in the kernel at {most} connections: {}",
                kernel.join(", ")
            ));
        }
        found.extend(self.previous_finding());
        found
    }

    fn idle_cells(&self) -> Vec<Vec<String>> {
        self.idle_rows
            .iter()
            .map(|row| {
                let mut line = vec![row.key.clone()];
                match &row.result {
                    Ok((before, after)) => line.extend([
                        format!("{:.1} MiB", *before as f64 / 1048576.0),
                        format!("{:.1} MiB", *after as f64 / 1048576.0),
                        format!(
                            "{:.0}",
                            row.bytes_per_conn().unwrap_or(f64::NAN)
                        ),
                        self.idle_ratio(&row.key)
                            .map_or("–".to_string(), |r| format!("{r:.2}")),
                    ]),
                    Err(err) => {
                        line.push(format!("failed: {err}"));
                        line.extend(std::iter::repeat_n(String::new(), 3));
                    }
                }
                line
            })
            .collect()
    }

    const IDLE_HEAD: [&'static str; 5] = [
        "server",
        "RSS before",
        "RSS after",
        "bytes per idle connection",
        "× tokio",
    ];

    fn servers_list(&self) -> String {
        self.subjects
            .iter()
            .map(|s| {
                let args = if s.extra.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (run with `{}`, N = the connection count)",
                        s.extra.join(" ").replace("{conns}", "N")
                    )
                };
                format!("`{}`: {}{args}", s.key, s.what)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// What the terminal shows at the end of a run.
    pub fn terminal(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}\n", self.conditions());
        let _ = writeln!(out, "{}\n", self.disturbed_summary());
        out.push_str(&text_table(&Self::LOAD_HEAD, &self.load_cells()));
        let _ = writeln!(
            out,
            "\nWhat held each run back (medians of the rounds)\n"
        );
        out.push_str(&text_table(&Self::LIMIT_HEAD, &self.limit_cells()));
        let _ = writeln!(
            out,
            "\nRound by round (each server: requests/s × tokio · CPU µs/request × tokio, in that round):\n"
        );
        out.push_str(&text_table(&self.round_head(), &self.round_cells()));
        if self.previous.is_some() {
            let _ = writeln!(out, "\nAgainst the previous run:\n");
            out.push_str(&text_table(
                &Self::PREVIOUS_HEAD,
                &self.previous_cells(),
            ));
        }
        if let Some(count) = self.idle_count {
            let _ = writeln!(
                out,
                "\nServer memory with {count} idle connections:\n"
            );
            out.push_str(&text_table(&Self::IDLE_HEAD, &self.idle_cells()));
        }
        let _ = writeln!(
            out,
            "\nTargets (median ratios to tokio current_thread in this run):"
        );
        for t in self.targets() {
            let mut verdict = match &t.measured {
                Ok(v) => format!(
                    "{} (measured {v:.2})",
                    if t.met { "met" } else { "NOT met" }
                ),
                Err(why) => why.clone(),
            };
            if let Some(caveat) = &t.caveat {
                verdict = format!("{verdict}; caveat: {caveat}");
            }
            let _ = writeln!(out, "  {}: {verdict}", t.what);
        }
        let _ = writeln!(out, "\nWhat this run shows:");
        for line in self.findings() {
            let _ = writeln!(out, "  - {line}");
        }
        // The Markdown's bold marks mean nothing in a terminal.
        out.replace("**", "")
    }

    /// results.md, which the book's benchmark appendix includes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<!-- Written by `just bench` (crates/bench); do not edit by hand. -->\n"
        );
        let _ = writeln!(out, "{}\n", self.conditions());
        let _ = writeln!(out, "{}\n", self.disturbed_summary());
        let _ = writeln!(out, "Servers: {}.\n", self.servers_list());
        // The server's name to the left, every figure to the right.
        let right = |n: usize| [vec![false], vec![true; n - 1]].concat();
        out.push_str(&markdown_table(
            &Self::LOAD_HEAD,
            &right(Self::LOAD_HEAD.len()),
            &self.load_cells(),
        ));
        let _ = writeln!(
            out,
            "\nWhat held each run back: the medians of the rounds (see \"Is the generator the bottleneck?\").\n"
        );
        out.push_str(&markdown_table(
            &Self::LIMIT_HEAD,
            &right(Self::LIMIT_HEAD.len()),
            &self.limit_cells(),
        ));
        let _ = writeln!(
            out,
            "\nRound by round: tokio's figures, how far each was from its median (requests/s · CPU µs/request), and each server's ratios to tokio in that round (requests/s × tokio · CPU µs/request × tokio).\n"
        );
        let head = self.round_head();
        out.push_str(&markdown_table(
            &head,
            &right(head.len()),
            &self.round_cells(),
        ));
        if let Some(count) = self.idle_count {
            let _ = writeln!(
                out,
                "\nServer memory (user-space RSS) with {count} idle connections, each answered once (one measurement per server, not rounds):\n"
            );
            out.push_str(&markdown_table(
                &Self::IDLE_HEAD,
                &[false, true, true, true, true],
                &self.idle_cells(),
            ));
        }
        if let Some(previous) = &self.previous {
            let _ = writeln!(
                out,
                "\nThis run's median ratios next to those of the run before it in the same folder ({}, {} rounds of {} s): how far two runs differ.\n",
                previous.date, previous.rounds, previous.seconds
            );
            out.push_str(&markdown_table(
                &Self::PREVIOUS_HEAD,
                &right(Self::PREVIOUS_HEAD.len()),
                &self.previous_cells(),
            ));
        }
        let _ = writeln!(
            out,
            "\nTargets, as median ratios to tokio `current_thread` in this run:\n"
        );
        let cells: Vec<Vec<String>> = self
            .targets()
            .into_iter()
            .map(|t| {
                let (value, mut verdict) = match &t.measured {
                    Ok(v) => (
                        format!("{v:.2}"),
                        if t.met { "met" } else { "**not met**" }.to_string(),
                    ),
                    Err(why) => ("–".to_string(), why.clone()),
                };
                if let Some(caveat) = &t.caveat {
                    verdict = format!("{verdict} ({caveat})");
                }
                vec![t.what, value, verdict]
            })
            .collect();
        out.push_str(&markdown_table(
            &["target", "measured", "result"],
            &[false, true, false],
            &cells,
        ));
        let _ =
            writeln!(out, "\nWhat this run shows, computed from the tables:\n");
        for line in self.findings() {
            let _ = writeln!(out, "- {line}.");
        }
        out
    }

    /// results.json: every figure, for other tools.
    pub fn json(&self) -> String {
        let num = |v: f64| {
            if v.is_finite() { format!("{v:.3}") } else { "null".to_string() }
        };
        let opt = |v: Option<f64>| v.map_or("null".to_string(), num);
        let m = &self.machine;
        let mut out = String::from("{\n");
        let _ = writeln!(
            out,
            "  \"date\": {},\n  \"machine\": {{\"cpus\": {}, \"cpu_model\": {}, \"kernel\": {}, \"busy_before_percent\": {}}},",
            json_str(&m.date),
            m.cpus,
            json_str(&m.cpu_model),
            json_str(&m.kernel),
            opt(m.busy_before)
        );
        let _ = writeln!(
            out,
            "  \"settings\": {{\"seconds\": {}, \"warmup_seconds\": {}, \"turns\": {}, \"rounds\": {}, \"server_cpu\": {}, \"generator_cpus\": [{}], \"nice\": {}, \"request_bytes\": {}, \"smoke\": {}, \"order\": \"rotating\", \"disturbed_above_percent\": {}}},",
            num(self.seconds),
            num(self.warmup),
            self.turns,
            self.rounds,
            self.placement
                .server_cpu
                .map_or("null".to_string(), |c| c.to_string()),
            self.placement
                .generator_cpus
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.nice.map_or("null".to_string(), |n| n.to_string()),
            crate::load::LINE_LEN,
            self.smoke,
            num(self.disturbed_above * 100.0)
        );
        let (disturbed, all) = self.disturbed_rounds();
        let which: Vec<String> = disturbed
            .iter()
            .map(|(round, conns, o)| {
                format!(
                    "{{\"round\": {round}, \"connections\": {conns}, \"reference_requests_per_s_off_percent\": {}, \"reference_cpu_us_per_request_off_percent\": {}}}",
                    num(o.requests_per_s * 100.0),
                    num(o.cpu_us_per_request * 100.0)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  \"disturbed\": {{\"rounds\": {}, \"of\": {all}, \"which\": [{}]}},",
            disturbed.len(),
            which.join(", ")
        );
        let findings: Vec<String> =
            self.findings().iter().map(|f| json_str(f)).collect();
        let _ = writeln!(
            out,
            "  \"findings\": [\n    {}\n  ],",
            findings.join(",\n    ")
        );
        let _ = writeln!(
            out,
            "  \"previous_run\": {},",
            self.previous.as_ref().map_or("null".to_string(), |p| format!(
                "{{\"date\": {}, \"rounds\": {}, \"seconds_measured\": {}}}",
                json_str(&p.date),
                p.rounds,
                num(p.seconds)
            ))
        );
        let list = |values: Vec<String>| format!("[{}]", values.join(", "));
        // {"requests_per_s": .., "p50_us": .., "p99_us": .., "cpu_..": ..}
        // with `per` applied to each figure.
        let ratio_fields = |per: &dyn Fn(Figure) -> String| {
            let metrics: [(&str, Figure); 4] = [
                ("requests_per_s", |r| r.requests_per_s),
                ("p50_us", |r| r.p50_us),
                ("p99_us", |r| r.p99_us),
                ("cpu_us_per_request", |r| r.cpu_us_per_request),
            ];
            let fields: Vec<String> = metrics
                .iter()
                .map(|(name, value)| format!("\"{name}\": {}", per(*value)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        };
        let loads: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                let (key, n) = (row.key.as_str(), row.conns);
                let head = format!(
                    "{{\"server\": {}, \"connections\": {n}",
                    json_str(key),
                );
                let Ok(f) = &row.result else {
                    let err = row.result.as_ref().err().map_or("", |e| e);
                    return format!("{head}, \"error\": {}}}", json_str(err));
                };
                let r = &f.median;
                let disturbed = self.disturbed(n);
                let rounds: Vec<String> = f
                    .rounds
                    .iter()
                    .enumerate()
                    .map(|(i, round)| {
                        format!(
                            "{{\"round\": {}, \"position\": {}, \"reference_disturbed\": {}, \"requests_per_s\": {}, \"p50_us\": {}, \"p99_us\": {}, \"cpu_us_per_request\": {}, \"server_switches_per_request\": {}, \"server_cpu_percent\": {}, \"server_core_idle_percent\": {}, \"generator_cpu_percent\": {}, \"other_work_percent\": {}, \"requests\": {}}}",
                            i + 1,
                            f.positions.get(i).copied().unwrap_or(0),
                            disturbed.get(i).copied().unwrap_or(false),
                            num(round.requests_per_s),
                            num(round.p50_us),
                            num(round.p99_us),
                            num(round.cpu_us_per_request),
                            num(round.switches_per_request),
                            num(round.server_cpu_pct),
                            opt(round.server_core_idle_pct),
                            num(round.generator_cpu_pct),
                            opt(round.other_work_pct),
                            round.requests,
                        )
                    })
                    .collect();
                format!(
                    "{head}, \"median\": {{\"requests_per_s\": {}, \"p50_us\": {}, \"p99_us\": {}, \"cpu_us_per_request\": {}, \"server_switches_per_request\": {}, \"server_threads\": {}, \"server_threads_ended\": {}, \"switch_read_ms\": {}, \"server_cpu_percent\": {}, \"server_kernel_percent_of_cpu\": {}, \"generator_cpu_percent\": {}, \"server_core_idle_percent\": {}, \"generator_cpu_us_per_request\": {}, \"generator_threads\": {}, \"other_work_percent\": {}}}, \"requests_all_rounds\": {}, \"ratio_to_tokio\": {}, \"ratio_to_tokio_range\": {}, \"ratio_to_tokio_rounds\": {}, \"rounds\": [\n      {}\n    ]}}",
                    num(r.requests_per_s),
                    num(r.p50_us),
                    num(r.p99_us),
                    num(r.cpu_us_per_request),
                    num(r.switches_per_request),
                    r.server_threads,
                    r.server_threads_gone,
                    num(r.switch_read_ms),
                    num(r.server_cpu_pct),
                    num(r.server_kernel_pct),
                    num(r.generator_cpu_pct),
                    opt(r.server_core_idle_pct),
                    num(r.generator_us_per_request),
                    r.generator_threads,
                    opt(r.other_work_pct),
                    r.requests,
                    ratio_fields(&|v| opt(self.ratio(key, n, v))),
                    ratio_fields(&|v| {
                        self.ratio_range(key, n, v).map_or(
                            "null".to_string(),
                            |(lo, hi)| list(vec![num(lo), num(hi)]),
                        )
                    }),
                    ratio_fields(&|v| {
                        list(
                            self.round_ratios(key, n, v)
                                .into_iter()
                                .map(opt)
                                .collect(),
                        )
                    }),
                    rounds.join(",\n      ")
                )
            })
            .collect();
        let _ =
            writeln!(out, "  \"load\": [\n    {}\n  ],", loads.join(",\n    "));
        let idles: Vec<String> = self
            .idle_rows
            .iter()
            .map(|row| {
                let head = format!(
                    "{{\"server\": {}, \"idle_connections\": {}",
                    json_str(&row.key),
                    row.count
                );
                match &row.result {
                    Ok((before, after)) => format!(
                        "{head}, \"rss_before_bytes\": {before}, \"rss_after_bytes\": {after}, \"bytes_per_connection\": {}, \"ratio_to_tokio\": {}}}",
                        opt(row.bytes_per_conn()),
                        opt(self.idle_ratio(&row.key))
                    ),
                    Err(err) => format!("{head}, \"error\": {}}}", json_str(err)),
                }
            })
            .collect();
        let _ =
            writeln!(out, "  \"idle\": [\n    {}\n  ],", idles.join(",\n    "));
        let targets: Vec<String> = self
            .targets()
            .into_iter()
            .map(|t| {
                format!(
                    "{{\"target\": {}, \"measured\": {}, \"met\": {}, \"caveat\": {}}}",
                    json_str(&t.what),
                    t.measured.map_or("null".to_string(), num),
                    t.met,
                    t.caveat.as_deref().map_or("null".to_string(), json_str)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "  \"targets\": [\n    {}\n  ]",
            targets.join(",\n    ")
        );
        out.push_str("}\n");
        out
    }

    /// Writes results.md, results.json and results.svg into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            fs::write(&path, text)
                .map_err(|e| format!("write {}: {e}", path.display()))
        };
        write("results.md", self.markdown())?;
        write("results.json", self.json())?;
        crate::plot::draw(self, &dir.join("results.svg"))
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text_table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> =
        head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            // A failure message runs past its column instead of widening it.
            if !cell.starts_with("failed") {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, cell) in cells.enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i == 0 {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(&mut head.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A Markdown table; `numeric` says which columns are right-aligned.
fn markdown_table(
    head: &[&str],
    numeric: &[bool],
    rows: &[Vec<String>],
) -> String {
    assert_eq!(head.len(), numeric.len(), "one alignment per column");
    let mut out = format!("| {} |\n|", head.join(" | "));
    for &right in numeric {
        out.push_str(if right { " ---: |" } else { " --- |" });
    }
    out.push('\n');
    for row in rows {
        let cells: Vec<String> =
            row.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(requests_per_s: f64, cpu_us_per_request: f64) -> LoadRow {
        LoadRow {
            requests_per_s,
            p50_us: 10.0,
            p99_us: 20.0,
            cpu_us_per_request,
            switches_per_request: 0.05,
            server_threads: 1,
            server_threads_gone: 0,
            switch_read_ms: 0.1,
            server_cpu_pct: 100.0,
            server_kernel_pct: 70.0,
            generator_cpu_pct: 80.0,
            generator_us_per_request: 4.0,
            generator_threads: 1,
            other_work_pct: Some(0.0),
            server_core_idle_pct: Some(0.0),
            requests: 1000,
            errors: 0,
            first_errors: Vec::new(),
            unanswered: 0,
        }
    }

    fn subject(key: &str) -> Subject {
        Subject {
            key: key.to_string(),
            what: "test".into(),
            cmd: crate::server::ServerCmd {
                binary: "/bin/true".into(),
                args: Vec::new(),
            },
            extra: Vec::new(),
            one_client_only: false,
            forks: false,
        }
    }

    fn sample_report() -> Report {
        let measured = |key: &str, conns, result: Result<LoadRow, String>| {
            gather(key, conns, &[(1, &result)])
        };
        Report {
            machine: Machine::read(false),
            subjects: vec![subject("tokio"), subject("lesson-13")],
            rows: vec![
                measured("tokio", 100, Ok(row(100_000.0, 8.0))),
                measured(
                    "tokio",
                    1000,
                    Ok(LoadRow {
                        server_cpu_pct: 80.0,
                        server_core_idle_pct: Some(15.0),
                        ..row(90_000.0, 9.0)
                    }),
                ),
                measured("lesson-13", 100, Ok(row(110_000.0, 7.0))),
                measured(
                    "lesson-13",
                    1000,
                    Err("connection 5 of 1000: no reply".into()),
                ),
            ],
            idle_rows: vec![
                IdleRow::new("tokio", 10, Ok((1000, 91_000))),
                IdleRow::new("lesson-13", 10, Ok((1000, 2000))),
            ],
            idle_count: Some(10),
            seconds: 2.0,
            warmup: 0.5,
            turns: 8,
            rounds: 1,
            disturbed_above: 0.15,
            placement: crate::Placement {
                server_cpu: Some(0),
                generator_cpus: vec![1],
            },
            nice: None,
            smoke: false,
            previous: None,
        }
    }

    #[test]
    fn targets_use_ratios_to_tokio_at_the_same_connection_count() {
        let report = sample_report();
        assert_eq!(
            report.ratio("lesson-13", 100, |r| r.requests_per_s),
            Some(1.1)
        );
        let targets = report.targets();
        let find = |text: &str| {
            targets.iter().find(|t| t.what.contains(text)).unwrap()
        };
        let rps_100 = find("lesson-13 (test): requests/s at 100 connections");
        assert!(rps_100.met);
        let rps_1000 = find("lesson-13 (test): requests/s at 1000 connections");
        assert!(!rps_1000.met && rps_1000.measured.is_err(), "failed run");
        let cpu_100 = find("lesson-13 (test): CPU µs/request at 100");
        assert!(cpu_100.met);
        assert_eq!(
            cpu_100.caveat, None,
            "both servers' runs were server-bound"
        );
        let caveat = report.pace_caveat("lesson-13", 1000).unwrap();
        assert!(
            caveat.contains("tokio used 80 % of its core, its core idle 15 %"),
            "{caveat}"
        );
        let idle = find("bytes per idle connection");
        assert_eq!(idle.measured, Ok(100.0));
        assert!(idle.met);
        let missing = find("lesson-10");
        assert!(!missing.met);
        // lesson-10 is not among this report's servers: no crate, or --only.
        assert!(
            missing
                .measured
                .as_ref()
                .unwrap_err()
                .starts_with("not measured: lesson-10 ")
        );
    }

    #[test]
    fn every_markdown_table_row_has_as_many_cells_as_its_header() {
        let markdown = sample_report().markdown();
        let mut columns = None;
        for line in markdown.lines() {
            if !line.starts_with('|') {
                columns = None;
                continue;
            }
            let cells = line.replace("\\|", "").matches('|').count();
            assert_eq!(*columns.get_or_insert(cells), cells, "{line}");
        }
    }

    /// A report of tokio and lesson-13 at 100 connections, one round per
    /// pair of figures (requests/s).
    fn rounds_report(tokio: &[f64], lesson: &[f64]) -> Report {
        let rounds = |key: &str, rps: &[f64]| {
            let rows: Vec<Result<LoadRow, String>> =
                rps.iter().map(|&v| Ok(row(v, 1e6 / v))).collect();
            let places: Vec<(usize, &Result<LoadRow, String>)> =
                rows.iter().map(|r| (1, r)).collect();
            gather(key, 100, &places)
        };
        Report {
            rows: vec![rounds("tokio", tokio), rounds("lesson-13", lesson)],
            rounds: tokio.len(),
            ..sample_report()
        }
    }

    #[test]
    fn a_figure_is_the_median_and_a_ratio_the_median_of_the_rounds_ratios() {
        let report = rounds_report(
            &[100.0, 80.0, 90.0, 110.0, 100.0],
            &[100.0, 88.0, 99.0, 110.0, 120.0],
        );
        let tokio = report.figures("tokio", 100).unwrap();
        assert_eq!(tokio.median.requests_per_s, 100.0);
        assert_eq!(tokio.rounds.len(), 5, "every round is kept");
        // Per round: 1.0, 1.1, 1.1, 1.0, 1.2. The ratio of the medians
        // (110 / 100) happens to agree here; pairing the rounds is what
        // keeps a slow spell from landing on one server only.
        let ratios: Vec<f64> = report
            .round_ratios("lesson-13", 100, |r| r.requests_per_s)
            .into_iter()
            .map(|r| (r.unwrap() * 100.0).round() / 100.0)
            .collect();
        assert_eq!(ratios, [1.0, 1.1, 1.1, 1.0, 1.2]);
        let median = report.ratio("lesson-13", 100, |r| r.requests_per_s);
        assert!((median.unwrap() - 1.1).abs() < 1e-9);
        let (low, high) =
            report.ratio_range("lesson-13", 100, |r| r.requests_per_s).unwrap();
        assert!((low - 1.0).abs() < 1e-9 && (high - 1.2).abs() < 1e-9);
        assert_eq!(median_of_even(), Some(2.5));
    }

    fn median_of_even() -> Option<f64> {
        median([4.0, 1.0, 3.0, 2.0, f64::NAN])
    }

    #[test]
    fn a_round_far_from_tokios_median_is_marked_disturbed_and_kept() {
        // Round 2 is 30 % below tokio's median of 100; round 4 is 12 %
        // above it, inside the 15 % allowed.
        let report = rounds_report(
            &[100.0, 70.0, 98.0, 112.0, 101.0],
            &[100.0, 75.0, 99.0, 110.0, 100.0],
        );
        assert_eq!(report.disturbed(100), [false, true, false, false, false]);
        let (found, all) = report.disturbed_rounds();
        assert_eq!((found.len(), all), (1, 5));
        assert_eq!((found[0].0, found[0].1), (2, 100));
        let summary = report.disturbed_summary();
        assert!(
            summary
                .contains("1 of the 5 measurements of tokio (one a round) was"),
            "{summary}"
        );
        assert!(summary.contains("round 2 at 100 connections"), "{summary}");
        // The terminal says it too, without the Markdown's bold marks.
        let terminal = report.terminal();
        assert!(terminal.contains("disturbed: "), "{terminal}");
        assert!(!terminal.contains("**"), "{terminal}");
        // Still in the median and the ranges, and marked in the table.
        let figures = report.figures("lesson-13", 100).unwrap();
        assert_eq!(figures.rounds.len(), 5);
        let markdown = report.markdown();
        assert!(
            markdown.contains("**disturbed**: -30 % · +43 %"),
            "{markdown}"
        );
        assert!(report.json().contains("\"reference_disturbed\": true"));
        // A smoke run judges nothing.
        let smoke = Report { smoke: true, ..report };
        assert!(smoke.disturbed_rounds().0.is_empty());
    }

    #[test]
    fn a_target_the_rounds_straddle_says_so() {
        let report = rounds_report(
            &[100_000.0, 95_000.0, 104_000.0],
            &[110_000.0, 97_000.0, 106_000.0],
        );
        // Per round 1.10, 1.02, 1.02: one of three meets 1.05.
        let target = Target {
            key: "lesson-13",
            metric: Metric::RequestsRatio,
            conns: 100,
            at_least: true,
            bound: 1.05,
        };
        let said = report
            .rounds_straddle(&target, Metric::RequestsRatio)
            .expect("straddles");
        assert!(said.contains("1 of 3 rounds meet it"), "{said}");
        assert!(said.contains("range 1.02–1.10"), "{said}");
        // Every round above the bound: nothing to say.
        let lower = Target { bound: 0.9, ..target };
        assert_eq!(report.rounds_straddle(&lower, Metric::RequestsRatio), None);
    }

    #[test]
    fn findings_say_on_which_side_of_1_the_rounds_fall() {
        let report = rounds_report(
            &[100.0, 90.0, 110.0, 100.0, 100.0],
            &[95.0, 92.0, 99.0, 104.0, 97.0],
        );
        let findings = report.findings();
        let rps = findings
            .iter()
            .find(|f| f.starts_with("lesson-13 (test), requests/s"))
            .unwrap();
        assert!(rps.contains("on both sides of 1"), "{rps}");
        let cpu = findings
            .iter()
            .find(|f| f.starts_with("lesson-13 (test), CPU"))
            .unwrap();
        assert!(cpu.contains("100 connections"), "{cpu}");
        // Requests/s 10 % off, CPU µs/request 1/0.9 - 1 = 11 % off.
        assert!(findings[0].contains("within 11 % of its medians"));
    }

    #[test]
    fn one_undisturbed_round_is_no_measure_of_the_noise() {
        // Four of five rounds of tokio are half or one and a half times
        // its median: only the median's own round is undisturbed.
        let report = rounds_report(
            &[100.0, 50.0, 150.0, 50.0, 150.0],
            &[100.0, 50.0, 150.0, 50.0, 150.0],
        );
        let findings = report.findings();
        assert!(
            findings[0].starts_with("too few of tokio's rounds"),
            "{findings:?}"
        );
        assert!(!findings.iter().any(|f| f.contains("within 0 %")));
    }

    #[test]
    fn the_previous_run_is_read_back_from_its_json() {
        let before =
            rounds_report(&[100.0, 100.0, 100.0], &[100.0, 98.0, 97.0]);
        let previous = Previous::parse(&before.json()).expect("parsed");
        assert_eq!(previous.rounds, 3);
        assert_eq!(previous.seconds, 2.0);
        assert_eq!(previous.turns, 8);
        // Results written before the bench took turns measured in one.
        let older = before.json().replace("\"turns\": 8, ", "");
        assert_eq!(Previous::parse(&older).expect("parsed").turns, 1);
        let (rps, cpu) = previous.ratios("lesson-13", 100).unwrap();
        assert_eq!((rps, cpu), (0.98, 1.02));
        assert_eq!(previous.ratios("tokio", 100), Some((1.0, 1.0)));
        // A smoke run's figures are no run to compare with.
        let smoke = Report { smoke: true, ..rounds_report(&[1.0], &[1.0]) };
        assert_eq!(Previous::parse(&smoke.json()), None);

        let now = Report {
            previous: Some(previous),
            ..rounds_report(&[100.0, 100.0, 100.0], &[100.0, 103.0, 105.0])
        };
        let said = now.previous_finding().unwrap();
        // 1.03 against 0.98: 5 % more requests/s, 5 % less CPU.
        assert!(
            said.contains(
                "at most 5 % (lesson-13 at 100 connections) for requests/s"
            ),
            "{said}"
        );
        assert!(
            now.markdown().contains("| lesson-13 | 100 | 1.03 | 0.98 | +5 % |")
        );
    }

    #[test]
    fn percentages_carry_their_sign_and_no_negative_zero() {
        assert_eq!(signed_percent(0.152), "+15 %");
        assert_eq!(signed_percent(-0.3), "-30 %");
        assert_eq!(signed_percent(-0.004), "+0 %");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_str("a \"b\" \\ \n"), "\"a \\\"b\\\" \\\\ \\u000a\"");
    }

    #[test]
    fn markdown_tables_right_align_the_numbers() {
        let table = markdown_table(
            &["server", "requests/s"],
            &[false, true],
            &[vec!["tokio".into(), "10".into()]],
        );
        assert_eq!(
            table,
            "| server | requests/s |\n| --- | ---: |\n| tokio | 10 |\n"
        );
    }
}
