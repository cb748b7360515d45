//! The HTTP row: lesson 17's static file server against a hyper static
//! file server (`src/bin/hyper-files.rs`), serving the same two files of
//! the book, at the same connection counts, measured by the same generator
//! speaking HTTP/1.1 keep-alive `GET`s ([`load::Protocol::Get`]), with the
//! same method as the line servers: a fresh server per measurement, rounds
//! in an order that moves by one server each round, medians, ratios to
//! the reference taken within a round, and the spread of the rounds.
//!
//! Lesson 17 logs one line per request to stdout, as it does for a reader;
//! the bench reads that pipe into nothing. hyper-files logs nothing. The
//! idle-memory figure is the line servers' alone.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, Get, Protocol, Stop};
use crate::report::{self, LoadRow, Measured, median, range};
use crate::server::{Server, ServerCmd};
use crate::{Placement, SETUP_TIMEOUT, Subject, Timing};

/// The reference every ratio of the HTTP row is taken against.
pub const REFERENCE: &str = "hyper";

/// The files both servers serve, from the book's sources (served from
/// `book/src`, which exists before the book is built): a small page and
/// one of the longest chapters.
pub const FILES: &[(&str, &str)] =
    &[("small", "SUMMARY.md"), ("large", "lesson-13.md")];

/// One file of the HTTP row.
#[derive(Clone, Debug)]
pub struct File {
    pub name: &'static str,
    pub path: String,
    pub bytes: usize,
}

impl File {
    fn protocol(&self) -> Protocol {
        Protocol::Get(Arc::new(Get::new(&self.path, self.bytes)))
    }
}

/// The served folder and its files, with their sizes now.
pub fn files(root: &Path) -> Result<Vec<File>, String> {
    FILES
        .iter()
        .map(|(name, file)| {
            let path = root.join(file);
            let meta = fs::metadata(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(File {
                name,
                path: format!("/{file}"),
                bytes: meta.len() as usize,
            })
        })
        .collect()
}

/// hyper-files (built beside the bench, in `bench_dir`) and lesson 17
/// (in `lessons_dir`), both serving `root`, both release builds.
pub fn subjects(
    bench_dir: &Path,
    lessons_dir: &Path,
    root: &Path,
) -> Vec<Subject> {
    let args = |extra: &[&str]| {
        let mut args: Vec<String> = ["server", "--addr", "127.0.0.1:0"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push("--root".into());
        args.push(root.display().to_string());
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    vec![
        Subject {
            key: REFERENCE.into(),
            what: "hyper HTTP/1.1 on tokio current_thread (reference)".into(),
            cmd: ServerCmd {
                binary: bench_dir.join("hyper-files"),
                args: args(&[]),
            },
            extra: Vec::new(),
            one_client_only: false,
            forks: false,
        },
        // Lesson 17 answers 503 past 256 connections by default.
        Subject {
            key: "lesson-17".into(),
            what: "HTTP/1.1 on lesson 13's epoll loop".into(),
            cmd: ServerCmd {
                binary: lessons_dir.join("lesson-17"),
                args: args(&[]),
            },
            extra: vec!["--max-conns".into(), "{conns}".into()],
            one_client_only: false,
            forks: false,
        },
    ]
}

/// One server, one file, one connection count, on a fresh server.
fn run_once(
    subject: &Subject,
    file: &File,
    conns: usize,
    stop: Stop,
    placement: &Placement,
) -> Result<(LoadRow, u64), String> {
    let mut server =
        Server::start(&subject.command(conns), placement.server_cpu)?;
    let mut clients =
        load::connect_all(server.addr, conns, SETUP_TIMEOUT, &file.protocol())
            .map_err(|err| format!("{err}{}", server.exit_note()))?;
    let run = load::ping_pong(
        &mut clients,
        stop,
        &crate::probe(&server, subject, placement),
        &placement.generator_cpus,
    )?;
    let answered: u64 = clients.iter().map(load::Conn::answered).sum();
    let note = server.exit_note();
    drop(clients);
    if !note.is_empty() {
        return Err(format!("during the run{note}"));
    }
    if run.errors > 0 {
        return Err(format!(
            "{} errors: {}",
            run.errors,
            run.first_errors.join("; ")
        ));
    }
    Ok((LoadRow::from_run(&run), answered))
}

/// What the HTTP row measured.
pub struct HttpReport {
    pub files: Vec<File>,
    pub subjects: Vec<Subject>,
    /// Keyed `server file` (`lesson-17 small`).
    pub rows: Vec<Measured>,
    pub rounds: usize,
    pub seconds: f64,
    pub warmup: f64,
    /// Turns each window was cut into (see `measure_in_turns`).
    pub turns: usize,
    pub disturbed_above: f64,
    pub smoke: bool,
}

fn row_key(server: &str, file: &str) -> String {
    format!("{server} {file}")
}

/// Every round and server at every file and connection count, interleaved
/// as the line servers are.
pub fn measure_all(
    subjects: &[Subject],
    files: &[File],
    counts: &[usize],
    rounds: usize,
    timing: Timing,
    placement: &Placement,
    disturbed_above: f64,
) -> HttpReport {
    // (key, connections, place in the round's order, figures)
    let mut samples = Vec::new();
    for round in 0..rounds {
        for file in files {
            for &conns in counts {
                let mut order: Vec<&Subject> = subjects.iter().collect();
                // Each round starts one server later, as the line
                // servers' rounds do.
                let turn = round % order.len().max(1);
                order.rotate_left(turn);
                let measured = crate::measure_in_turns(
                    &order,
                    conns,
                    &file.protocol(),
                    timing,
                    placement,
                );
                for (place, (subject, row)) in
                    order.into_iter().zip(measured).enumerate()
                {
                    match &row {
                        Ok(r) => println!(
                            "round {}/{rounds}  {:<10} {:<5} {conns:>5} connections: {:>8.0} requests/s, {:.2} CPU µs/request, server CPU {:>3.0} %, generator CPU {:>3.0} %",
                            round + 1,
                            subject.key,
                            file.name,
                            r.requests_per_s,
                            r.cpu_us_per_request,
                            r.server_cpu_pct,
                            r.generator_cpu_pct
                        ),
                        Err(err) => println!(
                            "round {}/{rounds}  {:<10} {:<5} {conns:>5} connections: FAILED: {err}",
                            round + 1,
                            subject.key,
                            file.name
                        ),
                    }
                    samples.push((
                        row_key(&subject.key, file.name),
                        conns,
                        place + 1,
                        row,
                    ));
                }
            }
        }
    }
    let mut rows = Vec::new();
    for file in files {
        for subject in subjects {
            for &conns in counts {
                let key = row_key(&subject.key, file.name);
                let of_this: Vec<(usize, &Result<LoadRow, String>)> = samples
                    .iter()
                    .filter(|(k, c, _, _)| *k == key && *c == conns)
                    .map(|(_, _, place, r)| (*place, r))
                    .collect();
                rows.push(report::gather(&key, conns, &of_this));
            }
        }
    }
    HttpReport {
        files: files.to_vec(),
        subjects: subjects.to_vec(),
        rows,
        rounds,
        seconds: timing.seconds,
        warmup: timing.warmup,
        turns: timing.turns,
        disturbed_above,
        smoke: false,
    }
}

/// Each server answers a few hundred `GET`s of each file correctly, on one
/// connection and on 20. Returns the report of those (timing meaningless)
/// and whether every reply was right.
pub fn smoke(
    subjects: &[Subject],
    files: &[File],
    placement: &Placement,
) -> (HttpReport, bool) {
    let mut ok = true;
    let mut rows = Vec::new();
    for file in files {
        for subject in subjects {
            for conns in [1, 20] {
                let per_connection = 300 / conns as u64;
                let stop = Stop::Requests {
                    per_connection,
                    limit: Duration::from_secs(20),
                };
                let expected = conns as u64 * (per_connection + 1);
                let result = run_once(subject, file, conns, stop, placement)
                    .and_then(|(row, answered)| {
                        if answered == expected {
                            Ok(row)
                        } else {
                            Err(format!(
                                "{answered} of {expected} requests answered"
                            ))
                        }
                    });
                let key = row_key(&subject.key, file.name);
                match &result {
                    Ok(_) => println!(
                        "smoke {key:<16} {conns:>2} connections: {expected} GETs of {} ({} bytes), every response correct",
                        file.path, file.bytes
                    ),
                    Err(err) => {
                        ok = false;
                        println!(
                            "smoke {key:<16} {conns:>2} connections: FAILED: {err}"
                        );
                    }
                }
                rows.push(report::gather(&key, conns, &[(1, &result)]));
            }
        }
    }
    let report = HttpReport {
        files: files.to_vec(),
        subjects: subjects.to_vec(),
        rows,
        rounds: 1,
        seconds: 0.0,
        warmup: 0.0,
        turns: 1,
        disturbed_above: 0.15,
        smoke: true,
    };
    (report, ok)
}

impl HttpReport {
    fn figures(&self, key: &str, conns: usize) -> Option<&report::Figures> {
        self.rows
            .iter()
            .find(|r| r.key == key && r.conns == conns)?
            .result
            .as_ref()
            .ok()
    }

    fn counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> =
            self.rows.iter().map(|r| r.conns).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// Round by round, `value` of `server` over hyper's in the same round.
    pub fn round_ratios(
        &self,
        server: &str,
        file: &str,
        conns: usize,
        value: fn(&LoadRow) -> f64,
    ) -> Vec<f64> {
        let (Some(of), Some(reference)) = (
            self.figures(&row_key(server, file), conns),
            self.figures(&row_key(REFERENCE, file), conns),
        ) else {
            return Vec::new();
        };
        of.rounds
            .iter()
            .zip(&reference.rounds)
            .map(|(o, r)| value(o) / value(r))
            .filter(|x| x.is_finite())
            .collect()
    }

    /// Rounds in which hyper's requests/s or CPU µs/request was further
    /// than `disturbed_above` from its median: marked, never dropped.
    fn disturbed(&self, file: &str, conns: usize) -> usize {
        let Some(reference) = self.figures(&row_key(REFERENCE, file), conns)
        else {
            return 0;
        };
        let m = &reference.median;
        reference
            .rounds
            .iter()
            .filter(|r| {
                !self.smoke
                    && ((r.requests_per_s / m.requests_per_s - 1.0).abs()
                        > self.disturbed_above
                        || (r.cpu_us_per_request / m.cpu_us_per_request - 1.0)
                            .abs()
                            > self.disturbed_above)
            })
            .count()
    }

    const HEAD: [&'static str; 12] = [
        "file",
        "connections",
        "server",
        "requests/s",
        "all rounds",
        "CPU µs/request",
        "all rounds",
        "requests/s × hyper",
        "× hyper, rounds",
        "CPU µs/request × hyper",
        "× hyper, rounds",
        "server CPU",
    ];

    fn cells(&self) -> Vec<Vec<String>> {
        let spread = |values: Vec<f64>, digits: usize| match range(values) {
            Some((low, high)) if self.rounds >= 2 => {
                format!("{low:.digits$}–{high:.digits$}")
            }
            _ => "–".to_string(),
        };
        let mut cells = Vec::new();
        for file in &self.files {
            for conns in self.counts() {
                for subject in &self.subjects {
                    let key = row_key(&subject.key, file.name);
                    let mut row = vec![
                        format!("{} ({} bytes)", file.path, file.bytes),
                        conns.to_string(),
                        subject.key.clone(),
                    ];
                    let Some(f) = self.figures(&key, conns) else {
                        let why = self
                            .rows
                            .iter()
                            .find(|r| r.key == key && r.conns == conns)
                            .and_then(|r| r.result.as_ref().err().cloned())
                            .unwrap_or_else(|| "not measured".into());
                        row.push(format!("failed: {why}"));
                        row.resize(Self::HEAD.len(), "–".to_string());
                        cells.push(row);
                        continue;
                    };
                    // No clock tick in a short window is no figure.
                    let figure = |v: f64, digits: usize| {
                        if v.is_finite() {
                            format!("{v:.digits$}")
                        } else {
                            "–".to_string()
                        }
                    };
                    row.push(figure(f.median.requests_per_s, 0));
                    row.push(spread(
                        f.rounds.iter().map(|r| r.requests_per_s).collect(),
                        0,
                    ));
                    row.push(figure(f.median.cpu_us_per_request, 2));
                    row.push(spread(
                        f.rounds.iter().map(|r| r.cpu_us_per_request).collect(),
                        2,
                    ));
                    for value in [
                        (|r: &LoadRow| r.requests_per_s) as fn(&LoadRow) -> f64,
                        |r: &LoadRow| r.cpu_us_per_request,
                    ] {
                        let ratios = self.round_ratios(
                            &subject.key,
                            file.name,
                            conns,
                            value,
                        );
                        row.push(
                            median(ratios.iter().copied())
                                .map_or("–".into(), |r| format!("{r:.2}")),
                        );
                        row.push(spread(ratios, 2));
                    }
                    // Below 100 %: the server waited for requests, so the
                    // generator (or other work) set the pace.
                    row.push(report::percent(f.median.server_cpu_pct));
                    cells.push(row);
                }
            }
        }
        cells
    }

    fn conditions(&self) -> String {
        if self.smoke {
            return "Smoke figures: every response was checked, the timing \
                    means nothing."
                .to_string();
        }
        let mut text = format!(
            "{} rounds of {} s (after {} s of warm-up) per point, {}, each on a fresh server.",
            self.rounds,
            self.seconds,
            self.warmup,
            report::in_turns(self.seconds, self.turns)
        );
        if self.rounds < usize::from(crate::DEFAULT_ROUNDS)
            || self.seconds < crate::DEFAULT_SECONDS
        {
            text.push_str(
                " **A short run**: fewer rounds or a shorter window than a \
                 full `just bench`; not figures to trust.",
            );
        }
        let disturbed: Vec<String> = self
            .files
            .iter()
            .flat_map(|f| self.counts().into_iter().map(move |c| (f, c)))
            .filter_map(|(f, c)| {
                let n = self.disturbed(f.name, c);
                (n > 0).then(|| format!("{} at {c} connections: {n}", f.name))
            })
            .collect();
        if disturbed.is_empty() {
            text.push_str(&format!(
                " No round disturbed (hyper within {:.0} % of its medians).",
                self.disturbed_above * 100.0
            ));
        } else {
            text.push_str(&format!(
                " Disturbed rounds (hyper more than {:.0} % from its median), marked, not dropped: {}.",
                self.disturbed_above * 100.0,
                disturbed.join(", ")
            ));
        }
        text
    }

    /// results-http.md, which the benchmark appendix includes.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<!-- Written by `just bench` (crates/bench); do not edit by hand. -->\n"
        );
        let _ = writeln!(out, "{}\n", self.conditions());
        let _ = writeln!(out, "| {} |", Self::HEAD.join(" | "));
        let align: Vec<&str> = (0..Self::HEAD.len())
            .map(|i| if i == 0 || i == 2 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "| {} |", align.join(" | "));
        for row in self.cells() {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        out
    }

    /// The same table, for the terminal.
    pub fn terminal(&self) -> String {
        let mut out = format!(
            "HTTP: lesson 17 against hyper, keep-alive GETs\n{}\n",
            self.conditions()
        );
        for row in self.cells() {
            let _ = writeln!(
                out,
                "  {:<28} {:>5} {:<10} {:>8} req/s  {:>6} CPU µs/req  × hyper: {:>5} req/s, {:>5} CPU",
                row[0], row[1], row[2], row[3], row[5], row[7], row[9]
            );
        }
        // The Markdown's bold marks mean nothing in a terminal.
        out.replace("**", "")
    }

    pub fn write(&self, dir: &Path) -> Result<PathBuf, String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = dir.join("results-http.md");
        fs::write(&path, self.markdown())
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(requests_per_s: f64, cpu_us_per_request: f64) -> LoadRow {
        let run = load::Run {
            requests: 1,
            window: Duration::from_secs(1),
            ..load::Run::default()
        };
        LoadRow {
            requests_per_s,
            cpu_us_per_request,
            ..LoadRow::from_run(&run)
        }
    }

    #[test]
    fn ratios_are_to_hyper_in_the_same_round_and_the_table_is_whole() {
        let subject = |key: &str| Subject {
            key: key.into(),
            what: key.into(),
            cmd: ServerCmd { binary: key.into(), args: Vec::new() },
            extra: Vec::new(),
            one_client_only: false,
            forks: false,
        };
        let rounds = |key: &str, values: &[(f64, f64)]| {
            let rows: Vec<Result<LoadRow, String>> =
                values.iter().map(|&(r, c)| Ok(row(r, c))).collect();
            let of: Vec<(usize, &Result<LoadRow, String>)> =
                rows.iter().map(|r| (1, r)).collect();
            report::gather(&row_key(key, "small"), 1, &of)
        };
        let report = HttpReport {
            files: vec![File {
                name: "small",
                path: "/SUMMARY.md".into(),
                bytes: 1395,
            }],
            subjects: vec![subject(REFERENCE), subject("lesson-17")],
            rows: vec![
                rounds(
                    REFERENCE,
                    &[(100.0, 10.0), (50.0, 20.0), (100.0, 10.0)],
                ),
                rounds(
                    "lesson-17",
                    &[(200.0, 5.0), (100.0, 10.0), (50.0, 20.0)],
                ),
            ],
            rounds: 3,
            seconds: 2.0,
            warmup: 0.5,
            turns: 8,
            disturbed_above: 0.15,
            smoke: false,
        };
        // Per round: 2, 2, 0.5; the median of those, not of the medians.
        let ratios =
            report.round_ratios("lesson-17", "small", 1, |r| r.requests_per_s);
        assert_eq!(ratios, [2.0, 2.0, 0.5]);
        let md = report.markdown();
        assert!(md.contains("| /SUMMARY.md (1395 bytes) | 1 | lesson-17 | 100 | 50–200 | 10.00 | 5.00–20.00 | 2.00 | 0.50–2.00 | 0.50 | 0.50–2.00 | – |"), "{md}");
        assert!(md.contains("**A short run**"), "{md}");
        // hyper's second round is half its median: disturbed, and said so.
        assert!(md.contains("small at 1 connections: 1"), "{md}");
        for line in md.lines().filter(|l| l.starts_with('|')) {
            assert_eq!(line.matches(" | ").count() + 1, HttpReport::HEAD.len());
        }
    }
}
