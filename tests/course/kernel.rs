//! Every lesson's narration checked against the kernel.
//!
//! A transcript line such as `accept(fd 3) = fd 5` is a claim about what the
//! kernel did. Each lesson's demo runs here under `strace`, while the demo
//! writes the calls it narrated to a file (`TRANSCRIPT_EVENTS`); then
//! `transcript::check::compare` demands that each narrated call be a real one,
//! on the same fd, with the same result, in the same order on that fd.
//!
//! Lessons are found from the `crates/NN-slug` folders, so a new lesson is
//! checked without anyone adding a line here.

use std::path::{Path, PathBuf};
use std::process::Command;

use transcript::check::{
    compare, narration_window, parse_strace, strace_filter,
};
use transcript::{EVENTS_ENV, Event};

use crate::support::{bin, root, run_with};

#[test]
fn every_narrated_call_is_one_the_kernel_made() {
    if let Err(why) = strace_works() {
        // A developer without strace still gets the rest of the course
        // tested; CI must not pass without this check.
        assert!(
            std::env::var_os("CI").is_none(),
            "the kernel check needs strace, and CI must run it: {why}"
        );
        eprintln!(
            "kernel check SKIPPED: {why} (apt-get install strace; CI fails without it)"
        );
        return;
    }
    let mut failures = Vec::new();
    let (mut checked, mut commentary) = (0, 0);
    // Three demos at a time: most of a demo under strace is waiting
    // (timeouts, the tracer), and each has its own process, trace file
    // and events file, so the checks do not touch each other.
    bin(1);
    let mut results = Vec::new();
    for group in lessons().chunks(3) {
        let running: Vec<_> = group
            .iter()
            .map(|&n| std::thread::spawn(move || (n, check_lesson(n))))
            .collect();
        results.extend(running.into_iter().map(|t| t.join().expect("check")));
    }
    for (n, result) in results {
        match result {
            Ok(counts) => {
                eprintln!(
                    "lesson {n:02}: {} narrated calls and {} of their arguments \
                     checked against the kernel ({} narrated lines, {} \
                     commentary lines not checked)",
                    counts.events, counts.args, counts.steps, counts.commentary
                );
                checked += counts.events;
                commentary += counts.commentary;
            }
            Err(report) => failures.push(format!("lesson {n:02}: {report}")),
        }
    }
    eprintln!(
        "all lessons: {checked} narrated calls checked, {commentary} commentary lines skipped"
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The lesson numbers, from the `crates/NN-slug` folders; only lesson N
/// when the environment says `LESSON=N` (`just test N`, a reader's quick
/// loop over one lesson).
pub fn lessons() -> Vec<u32> {
    let only: Option<u32> =
        std::env::var("LESSON").ok().and_then(|n| n.trim().parse().ok());
    let crates = root().join("crates");
    let mut lessons: Vec<u32> = std::fs::read_dir(&crates)
        .expect("read crates/")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let (number, slug) = name.split_once('-')?;
            let is_lesson = number.len() == 2 && !slug.is_empty();
            if is_lesson { number.parse().ok() } else { None }
        })
        .collect();
    lessons.sort_unstable();
    assert!(!lessons.is_empty(), "no lesson folders in {}", crates.display());
    if let Some(n) = only {
        assert!(lessons.contains(&n), "LESSON={n}: no such lesson");
        lessons.retain(|&l| l == n);
    }
    lessons
}

/// Whether strace is here and allowed to trace (a container may forbid
/// ptrace even where strace is installed).
fn strace_works() -> Result<(), String> {
    let output = Command::new("strace")
        .args(["-qq", "-o", "/dev/null", "true"])
        .output()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => {
                "strace is not installed".to_string()
            }
            _ => format!("cannot run strace: {err}"),
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "strace cannot trace here: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// What one lesson's demo printed and how much of it was checked.
struct Counts {
    /// Narrated calls matched to the kernel's.
    events: usize,
    /// Values among their arguments (a backlog, an address, a flag, an
    /// option's value, bytes sent), each found among the kernel's.
    args: usize,
    /// Numbered transcript lines: one per narrated call.
    steps: usize,
    /// `# note` and `-- section --` lines: words, not system calls.
    commentary: usize,
}

/// Runs lesson `n`'s demo under strace and compares; `Err` is the report.
fn check_lesson(n: u32) -> Result<Counts, String> {
    let trace_file = Scratch::new(n, "strace");
    let events_file = Scratch::new(n, "events");
    let output = run_with(
        Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&trace_file.0)
            .args(["-e", &strace_filter()])
            .arg(bin(n))
            .env(EVENTS_ENV, &events_file.0),
        b"",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the demo under strace exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let events_text = std::fs::read_to_string(&events_file.0).map_err(|err| {
        format!(
            "the demo recorded no events ({}: {err}): it must narrate through transcript::Transcript",
            events_file.0.display()
        )
    })?;
    let narrated: Vec<Event> = events_text
        .lines()
        .map(|line| {
            Event::from_line(line)
                .ok_or(format!("unreadable event line {line:?}"))
        })
        .collect::<Result<_, _>>()?;
    let trace_text = std::fs::read_to_string(&trace_file.0)
        .map_err(|err| err.to_string())?;
    let traced = parse_strace(&trace_text);
    let window = narration_window(&traced).ok_or(
        "the trace shows no transcript header written to stdout (fd 1)",
    )?;

    let (steps, commentary) = count_lines(&stdout);
    // A step narrated without a result records no event, and would be a
    // line of the transcript that no one checked.
    if steps != narrated.len() {
        return Err(format!(
            "the transcript has {steps} numbered steps but recorded {} events: \
             every narrated call needs its result (`.returned`, `.gave` or `.failed`)",
            narrated.len()
        ));
    }
    let summary = compare(&narrated, window).map_err(|mismatch| {
        format!("narration differs from the kernel's trace\n{mismatch}\ntranscript:\n{stdout}")
    })?;
    let args: usize = narrated
        .iter()
        .map(|e| transcript::args::narrated(&e.args).len())
        .sum();
    // Every demo narrates arguments (a socket's type, a bind address): if
    // none were read, the comparison has quietly stopped.
    if args == 0 {
        return Err("no narrated argument was compared: are the events \
                    written with their arguments?"
            .to_string());
    }
    Ok(Counts { events: summary.checked, args, steps, commentary })
}

/// Numbered steps and commentary lines in a transcript. The header and
/// blank lines are neither.
fn count_lines(transcript: &str) -> (usize, usize) {
    let (mut steps, mut commentary) = (0, 0);
    for line in transcript.lines() {
        let text = line.trim_start();
        let number = text.split("  ").next().unwrap_or_default();
        if text.starts_with("# ") || line.starts_with("-- ") {
            commentary += 1;
        } else if !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
        {
            steps += 1;
        }
    }
    (steps, commentary)
}

/// A file in the temp dir named after this test process and the lesson, so
/// parallel runs never share one; removed when dropped, even on failure.
struct Scratch(PathBuf);

impl Scratch {
    fn new(n: u32, kind: &str) -> Scratch {
        let name = format!(
            "course-kernel-{}-lesson-{n:02}.{kind}",
            std::process::id()
        );
        let path = std::env::temp_dir().join(name);
        remove(&path);
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[test]
fn counts_steps_and_commentary_apart() {
    let transcript = "step  server                                        client\n\
        \x20  1  socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC) = fd 3\n\
        \x20                                                 # connected before the server accepted\n\
        \x20 14  recv(fd 5, 4096) = 0\n\
        \x20     # 0 bytes: the client has closed, not an error\n\
        \n\
        -- a client that connects and says nothing --\n\
        \x20 16                                                socket(AF_INET) = fd 4\n";
    assert_eq!(count_lines(transcript), (3, 3));
}
