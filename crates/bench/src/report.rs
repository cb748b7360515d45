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
            cpu_us_per_request: if run.requests == 0 {
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
            server_cpu_pct: run.server_ticks as f64 * tick_us / 1e6 / seconds
                * 100.0,
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

/// The figure for one server at one connection count.
#[derive(Clone, Debug)]
pub struct Measured {
    pub key: String,
    pub conns: usize,
    pub result: Result<LoadRow, String>,
    /// Requests/s of every round that ran cleanly, in round order: how far
    /// apart the rounds of one server were shows how much a figure can be
    /// trusted (empty for a single-run smoke figure).
    pub rounds_rps: Vec<f64>,
}

/// Rounds whose other work is within this many points (percent of a core)
/// of the least disturbed round count as equally undisturbed.
const DISTURBANCE_SLACK_PCT: f64 = 3.0;

/// The figure from the rounds least disturbed by other work on the
/// machine, and among those the one with the median requests/s; a failed
/// round fails the figure.
pub fn pick_round(
    subject: &Subject,
    conns: usize,
    rounds: &[&Result<LoadRow, String>],
) -> Measured {
    let mut good = Vec::new();
    let mut failure = None;
    for (i, round) in rounds.iter().enumerate() {
        match round {
            Ok(row) => match row.problem() {
                None => good.push(row.clone()),
                Some(problem) => {
                    failure =
                        failure.or(Some(format!("round {}: {problem}", i + 1)))
                }
            },
            Err(err) => {
                failure = failure.or(Some(format!("round {}: {err}", i + 1)))
            }
        }
    }
    let rounds_rps = good.iter().map(|r| r.requests_per_s).collect();
    let result = match failure {
        Some(err) => Err(err),
        None if good.is_empty() => Err("not measured".to_string()),
        None => {
            let other = |r: &LoadRow| r.other_work_pct.unwrap_or(0.0);
            let least = good.iter().map(other).fold(f64::INFINITY, f64::min);
            good.retain(|r| other(r) <= least + DISTURBANCE_SLACK_PCT);
            good.sort_by(|a, b| a.requests_per_s.total_cmp(&b.requests_per_s));
            Ok(good.swap_remove((good.len() - 1) / 2))
        }
    };
    Measured { key: subject.key.clone(), conns, result, rounds_rps }
}

impl Measured {
    /// The lowest and highest requests/s among the rounds, as a cell.
    fn spread(&self) -> String {
        let low = self.rounds_rps.iter().copied().fold(f64::INFINITY, f64::min);
        let high =
            self.rounds_rps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if self.rounds_rps.len() < 2 {
            "–".to_string()
        } else {
            format!("{low:.0}–{high:.0}")
        }
    }
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
        let (y, m, d) = civil_date(days);
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

/// The calendar date `days` after 1970-01-01 (proleptic Gregorian; the
/// algorithm from Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A target from issue 7, checked against ratios to tokio in the same run.
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
        bound: 1.0,
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
        bound: 256.0,
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

pub struct Report {
    pub machine: Machine,
    pub subjects: Vec<Subject>,
    pub rows: Vec<Measured>,
    pub idle_rows: Vec<IdleRow>,
    pub idle_count: Option<usize>,
    pub seconds: f64,
    pub warmup: f64,
    pub rounds: usize,
    pub placement: crate::Placement,
    pub nice: Option<i32>,
    /// Smoke figures: correct replies, meaningless timing.
    pub smoke: bool,
}

impl Report {
    pub fn row(&self, key: &str, conns: usize) -> Option<&LoadRow> {
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

    /// `value(row) / value(tokio's row)` at the same connection count.
    pub fn ratio(
        &self,
        key: &str,
        conns: usize,
        value: impl Fn(&LoadRow) -> f64,
    ) -> Option<f64> {
        let of = value(self.row(key, conns)?);
        let reference = value(self.row(REFERENCE, conns)?);
        let ratio = of / reference;
        ratio.is_finite().then_some(ratio)
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
                    value.ok_or_else(|| {
                        "not measured: see the tables".to_string()
                    })
                };
                let met = measured.as_ref().is_ok_and(|&v| {
                    if t.at_least { v >= t.bound } else { v <= t.bound }
                });
                let caveat = match (t.metric, &measured) {
                    (Metric::IdleBytes, _) | (_, Err(_)) => None,
                    (Metric::RequestsRatio, _) => {
                        let notes: Vec<String> = [
                            self.pace_caveat(t.key, t.conns),
                            self.rounds_straddle(t.key, t.conns, t.bound),
                        ]
                        .into_iter()
                        .flatten()
                        .collect();
                        (!notes.is_empty()).then(|| notes.join("; "))
                    }
                    _ => self.pace_caveat(t.key, t.conns),
                };
                Checked { what, measured, met, caveat }
            })
            .collect()
    }

    /// When the rounds of `key` and of tokio are far enough apart that
    /// pairing other rounds would have put the ratio on the other side of
    /// `bound`, says so with the range of ratios the rounds allow.
    fn rounds_straddle(
        &self,
        key: &str,
        conns: usize,
        bound: f64,
    ) -> Option<String> {
        let rounds = |k: &str| {
            let m =
                self.rows.iter().find(|m| m.key == k && m.conns == conns)?;
            let low =
                m.rounds_rps.iter().copied().fold(f64::INFINITY, f64::min);
            let high =
                m.rounds_rps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (m.rounds_rps.len() >= 2 && low > 0.0).then_some((low, high))
        };
        let (low, high) = rounds(key)?;
        let (ref_low, ref_high) = rounds(REFERENCE)?;
        let (worst, best) = (low / ref_high, high / ref_low);
        (worst < bound && bound <= best).then(|| {
            format!(
                "the rounds straddle the target: {key} ranged {low:.0}–{high:.0} requests/s and {REFERENCE} {ref_low:.0}–{ref_high:.0}: pairing its rounds with the reference's gives ratios from {worst:.2} to {best:.2}"
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
        let how = if self.smoke {
            "a smoke run: a few hundred requests per server, checked for correctness; its timing means nothing".to_string()
        } else {
            format!(
                "{} rounds of {} s after {} s of warm-up, interleaved, each figure from the round least disturbed by other work on the machine (the last column), the median requests/s among equals",
                self.rounds, self.seconds, self.warmup
            )
        };
        let nice =
            self.nice.map_or(String::new(), |n| format!(", at nice {n}"));
        let busy = m.busy_before.map_or(String::new(), |b| {
            format!(", {b:.0} % busy with other work in the second before")
        });
        format!(
            "Measured on {} on Linux {}, {} CPUs ({}){busy}; {pinning}{nice}; {how}; 64-byte request lines, one request in flight per connection.",
            m.date, m.kernel, m.cpus, m.cpu_model
        )
    }

    /// The load table's cells, one row per server and connection count.
    fn load_cells(&self) -> Vec<Vec<String>> {
        let mut cells = Vec::new();
        for row in &self.rows {
            let key = &row.key;
            let n = row.conns;
            let ratio = |value: fn(&LoadRow) -> f64| {
                self.ratio(key, n, value)
                    .map_or("–".to_string(), |r| format!("{r:.2}"))
            };
            let mut line = vec![key.clone(), n.to_string()];
            match &row.result {
                Ok(r) => line.extend([
                    format!("{:.0}", r.requests_per_s),
                    ratio(|r| r.requests_per_s),
                    row.spread(),
                    format!("{:.1}", r.p50_us),
                    ratio(|r| r.p50_us),
                    format!("{:.1}", r.p99_us),
                    ratio(|r| r.p99_us),
                    format!("{:.2}", r.cpu_us_per_request),
                    ratio(|r| r.cpu_us_per_request),
                    format!("{:.2}", r.switches_per_request),
                    format!("{:.0} %", r.server_cpu_pct),
                    r.server_core_idle_pct
                        .map_or("–".to_string(), |p| format!("{p:.0} %")),
                    format!("{:.0} %", r.generator_cpu_pct),
                    format!("{:.2}", r.generator_us_per_request),
                    r.other_work_pct
                        .map_or("–".to_string(), |p| format!("{p:.0} %")),
                ]),
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

    const LOAD_HEAD: [&'static str; 17] = [
        "server",
        "connections",
        "requests/s",
        "× tokio",
        // Every round's figure, lowest to highest: the noise to read the
        // ratios against.
        "requests/s, all rounds",
        "p50 µs",
        "× tokio",
        "p99 µs",
        "× tokio",
        "server CPU µs/request",
        "× tokio",
        // No ratio: tokio's figure is close to 0 at 100 connections and
        // more, and a ratio to it would swing with every run.
        "server switches/request",
        "server CPU",
        "server's core idle",
        "generator CPU",
        "generator CPU µs/request",
        "other work",
    ];

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
        out.push_str(&text_table(&Self::LOAD_HEAD, &self.load_cells()));
        if let Some(count) = self.idle_count {
            let _ = writeln!(
                out,
                "\nServer memory with {count} idle connections:\n"
            );
            out.push_str(&text_table(&Self::IDLE_HEAD, &self.idle_cells()));
        }
        let _ = writeln!(
            out,
            "\nTargets (ratios to tokio current_thread in this run):"
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
        out
    }

    /// results.md, which the book's benchmark appendix includes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<!-- Written by `just bench` (crates/bench); do not edit by hand. -->\n"
        );
        let _ = writeln!(out, "{}\n", self.conditions());
        let _ = writeln!(out, "Servers: {}.\n", self.servers_list());
        out.push_str(&markdown_table(
            &Self::LOAD_HEAD,
            // The server's name to the left, every figure to the right.
            &[vec![false], vec![true; Self::LOAD_HEAD.len() - 1]].concat(),
            &self.load_cells(),
        ));
        if let Some(count) = self.idle_count {
            let _ = writeln!(
                out,
                "\nServer memory (user-space RSS) with {count} idle connections, each answered once:\n"
            );
            out.push_str(&markdown_table(
                &Self::IDLE_HEAD,
                &[false, true, true, true, true],
                &self.idle_cells(),
            ));
        }
        let _ = writeln!(
            out,
            "\nTargets, as ratios to tokio `current_thread` in this run:\n"
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
            "  \"settings\": {{\"seconds\": {}, \"warmup_seconds\": {}, \"rounds\": {}, \"server_cpu\": {}, \"generator_cpus\": [{}], \"nice\": {}, \"request_bytes\": {}, \"smoke\": {}}},",
            num(self.seconds),
            num(self.warmup),
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
            self.smoke
        );
        let loads: Vec<String> = self
            .rows
            .iter()
            .map(|row| {
                let head = format!(
                    "{{\"server\": {}, \"connections\": {}",
                    json_str(&row.key),
                    row.conns
                );
                match &row.result {
                    Ok(r) => format!(
                        "{head}, \"requests_per_s\": {}, \"p50_us\": {}, \"p99_us\": {}, \"cpu_us_per_request\": {}, \"server_switches_per_request\": {}, \"server_threads\": {}, \"server_threads_ended\": {}, \"switch_read_ms\": {}, \"server_cpu_percent\": {}, \"generator_cpu_percent\": {}, \"server_core_idle_percent\": {}, \"generator_cpu_us_per_request\": {}, \"generator_threads\": {}, \"other_work_percent\": {}, \"requests\": {}, \"requests_per_s_rounds\": [{}], \"ratio_to_tokio\": {{\"requests_per_s\": {}, \"p50_us\": {}, \"p99_us\": {}, \"cpu_us_per_request\": {}}}}}",
                        num(r.requests_per_s),
                        num(r.p50_us),
                        num(r.p99_us),
                        num(r.cpu_us_per_request),
                        num(r.switches_per_request),
                        r.server_threads,
                        r.server_threads_gone,
                        num(r.switch_read_ms),
                        num(r.server_cpu_pct),
                        num(r.generator_cpu_pct),
                        opt(r.server_core_idle_pct),
                        num(r.generator_us_per_request),
                        r.generator_threads,
                        opt(r.other_work_pct),
                        r.requests,
                        row.rounds_rps.iter().map(|&v| num(v)).collect::<Vec<_>>().join(", "),
                        opt(self.ratio(&row.key, row.conns, |r| r.requests_per_s)),
                        opt(self.ratio(&row.key, row.conns, |r| r.p50_us)),
                        opt(self.ratio(&row.key, row.conns, |r| r.p99_us)),
                        opt(self.ratio(&row.key, row.conns, |r| r.cpu_us_per_request)),
                    ),
                    Err(err) => format!("{head}, \"error\": {}}}", json_str(err)),
                }
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
        }
    }

    fn sample_report() -> Report {
        let measured = |key: &str, conns, result| Measured {
            key: key.to_string(),
            conns,
            result,
            rounds_rps: Vec::new(),
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
            rounds: 3,
            placement: crate::Placement {
                server_cpu: Some(0),
                generator_cpus: vec![1],
            },
            nice: None,
            smoke: false,
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

    #[test]
    fn the_figure_comes_from_the_least_disturbed_rounds() {
        let round = |rps, other| {
            Ok(LoadRow { other_work_pct: Some(other), ..row(rps, 5.0) })
        };
        let rounds = [
            round(100.0, 30.0),
            round(80.0, 1.0),
            round(90.0, 2.0),
            round(70.0, 3.5),
        ];
        let picked = pick_round(
            &subject("tokio"),
            100,
            &rounds.iter().collect::<Vec<_>>(),
        );
        // 30 % other work rules out the fastest round; the rest are within
        // 3 points of the quietest, and 80 is their median.
        assert_eq!(picked.result.as_ref().unwrap().requests_per_s, 80.0);
        // The spread shows every round, the disturbed one included.
        assert_eq!(picked.rounds_rps, vec![100.0, 80.0, 90.0, 70.0]);
        assert_eq!(picked.spread(), "70–100");
    }

    #[test]
    fn a_target_the_rounds_straddle_says_so() {
        let mut report = sample_report();
        report.rows[0].rounds_rps = vec![100_000.0, 95_000.0, 104_000.0];
        report.rows[2].rounds_rps = vec![110_000.0, 97_000.0, 106_000.0];
        // 97k / 104k = 0.93 < 1.05 <= 110k / 95k = 1.16: either side possible.
        let said =
            report.rounds_straddle("lesson-13", 100, 1.05).expect("straddles");
        assert!(said.contains("ratios from 0.93 to 1.16"), "{said}");
        // All pairings above the bound: nothing to say.
        assert_eq!(report.rounds_straddle("lesson-13", 100, 0.9), None);
        // One round is no spread.
        report.rows[2].rounds_rps = vec![110_000.0];
        assert_eq!(report.rounds_straddle("lesson-13", 100, 1.05), None);
    }

    #[test]
    fn dates_are_counted_from_1970() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
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
