//! `just check N`: run lesson N's exercise checks and say which pass, and
//! why one fails. `just check`: your progress over the whole course.
//! `just hint N`: lesson N's hint. `--solutions` checks the solutions
//! instead of your files.
//!
//! Each check runs in a process of its own (this program again, with
//! `__one ID`): code that crashes, aborts, exits or never returns ends
//! that process, not the report, and the report says what happened. The
//! check in turn starts the reader's program, this program again with
//! `run ID ARGS`, and talks to it from outside.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use exercises::{EXERCISES, Exercise, LESSONS, find, fingerprint, of_lesson};

/// The longest a check's process may take; the checks themselves bound
/// every wait to a second or two.
const LIMIT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let solutions = args.iter().any(|a| a == "--solutions");
    args.retain(|a| a != "--solutions");
    if args.first().is_none_or(|a| a != "__one" && a != "run") {
        // `just check | head` ends quietly, as a Unix tool does. Not in a
        // check's process nor the reader's program: the code under check
        // expects Rust's EPIPE.
        // SAFETY: no other thread runs yet; SIG_DFL is a valid handler.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    match args.as_slice() {
        [] => progress(solutions),
        [one, id] if one == "__one" => in_this_process(id, solutions),
        [run, id, rest @ ..] if run == "run" => program(id, solutions, rest),
        [hint, n] if hint == "hint" => match lesson(n) {
            Some(exercises) => {
                for e in exercises {
                    say(&format!("Lesson {}: {}", e.lesson, e.title));
                    say(&format!("Hint: {}.", e.hint));
                    say(&format!("More, and a solution: {}", where_to_read(e)));
                }
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        [n] => match lesson(n) {
            Some(exercises) => check(&exercises, solutions),
            None => ExitCode::FAILURE,
        },
        _ => {
            eprintln!("usage: exercises [--solutions] [N | hint N]");
            ExitCode::FAILURE
        }
    }
}

/// Lesson `n`'s exercises, or a line saying there is no such lesson.
fn lesson(n: &str) -> Option<Vec<&'static Exercise>> {
    match n.parse::<u8>() {
        Ok(n) if LESSONS.contains(&n) && !of_lesson(n).is_empty() => {
            Some(of_lesson(n))
        }
        Ok(n) if LESSONS.contains(&n) => {
            eprintln!("check: lesson {n} has no exercise yet");
            None
        }
        _ => {
            eprintln!(
                "check: no lesson {n}: the lessons are {} to {}",
                LESSONS.start(),
                LESSONS.end()
            );
            None
        }
    }
}

/// The child's side: runs one check here and says on stdout why it
/// failed; the exit status says whether it passed.
fn in_this_process(id: &str, solutions: bool) -> ExitCode {
    let Some(exercise) = find(id) else {
        println!("no exercise {id}");
        return ExitCode::FAILURE;
    };
    let result =
        if solutions { (exercise.solution)() } else { (exercise.yours)() };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            println!("{why}");
            ExitCode::FAILURE
        }
    }
}

/// `run ID [ARGS]`: the reader's program, which a check starts as a
/// process of its own and talks to from outside. An error is one line on
/// stderr and exit status 1.
fn program(id: &str, solutions: bool, args: &[String]) -> ExitCode {
    match exercises::run(id, solutions, args) {
        None => {
            eprintln!("exercise {id} has no program to run");
            ExitCode::FAILURE
        }
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(err)) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// `text` in lines of at most 80 columns, cut between words: the first
/// line starts at column `first`, the others are indented by `indent`.
fn wrapped(text: &str, first: usize, indent: usize) -> String {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let width = if lines.len() == 1 { first } else { indent };
        let line = lines.last_mut().expect("never empty");
        let line_len = line.chars().count();
        if line_len > 0 && width + line_len + 1 + word.chars().count() > 80 {
            lines.push(word.to_string());
        } else {
            if line_len > 0 {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    let pad = " ".repeat(indent);
    lines.join(&format!("\n{pad}"))
}

fn say(text: &str) {
    println!("{}", wrapped(text, 0, 0));
}

/// Where the statement and a solution are: the built book's page and
/// section, and the chapter's title, read from its first line.
fn where_to_read(exercise: &Exercise) -> String {
    let page = exercise
        .chapter
        .trim_start_matches("book/src/")
        .replace(".md", ".html");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    let title =
        std::fs::read_to_string(format!("{source}{}", exercise.chapter))
            .ok()
            .and_then(|text| {
                text.lines()
                    .next()
                    .map(|l| l.trim_start_matches("# ").to_string())
            });
    let title = match title {
        Some(title) => format!(", in the chapter \"{title}\""),
        None => String::new(),
    };
    format!(
        "the section \"Exercise\" of the book, book/book/{page}#exercise \
         (`just book` builds it){title}."
    )
}

/// Runs one check in a process of its own, and waits at most `LIMIT`.
fn isolated(exercise: &Exercise, solutions: bool) -> Result<(), String> {
    let spawned = std::env::current_exe().and_then(|exe| {
        let mut command = Command::new(exe);
        command.args(["__one", exercise.id]);
        if solutions {
            command.arg("--solutions");
        }
        // What the code under check prints to stderr reaches the terminal.
        command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()
    });
    let mut child =
        spawned.map_err(|err| format!("could not start the check: {err}"))?;
    let began = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if began.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the check had not ended after {} s: something waits \
                     for ever",
                    LIMIT.as_secs()
                ));
            }
            // Waiting for a child with a deadline: std has no wait with a
            // timeout, so look every few milliseconds.
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(err) => return Err(format!("waiting for the check: {err}")),
        }
    };
    let mut said = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut said);
    }
    let said = said.trim();
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(1), _) if !said.is_empty() => Err(said.to_string()),
        (Some(code), _) => Err(format!(
            "the check's process exited with status {code} before it could \
             say why: did the code call std::process::exit?"
        )),
        (None, Some(signal)) => Err(format!(
            "the check's process was killed by signal {signal} ({}): a crash \
             in the code under check",
            signal_name(signal)
        )),
        (None, None) => Err("the check's process ended oddly".into()),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT, an abort",
        libc::SIGSEGV => "SIGSEGV, a bad memory access",
        libc::SIGPIPE => "SIGPIPE, a write to a closed connection",
        libc::SIGKILL => "SIGKILL",
        _ => "see man 7 signal",
    }
}

/// Runs the checks of one lesson: each one's verdict, and why it fails,
/// with the hint.
fn check(exercises: &[&Exercise], solutions: bool) -> ExitCode {
    let mut failed = 0;
    for exercise in exercises {
        say(&format!("Lesson {}: {}", exercise.lesson, exercise.title));
        let file = if solutions {
            exercise.file.replace("/yours/", "/solutions/")
        } else {
            exercise.file.to_string()
        };
        say(&format!("File: {file}"));
        match isolated(exercise, solutions) {
            Ok(()) => println!("pass"),
            Err(why) => {
                failed += 1;
                say(&format!("FAIL: {why}"));
                say(&format!(
                    "`just hint {}` gives a hint. The statement and a \
                     solution: {}",
                    exercise.lesson,
                    where_to_read(exercise)
                ));
            }
        }
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Where the reader stands on one exercise.
enum Status {
    Pass,
    Fail(String),
    /// The reader's file is still the one the course ships, which fails
    /// its check (CI proves it): not run.
    NotStarted,
}

/// Every lesson, with its exercises' state, and the total. The checks run
/// at once, each in its own process.
fn progress(solutions: bool) -> ExitCode {
    let statuses: Vec<(&Exercise, Status)> = thread::scope(|scope| {
        let running: Vec<_> = EXERCISES
            .iter()
            .map(|e| {
                let started = solutions || fingerprint(e.source) != e.start;
                let run = started
                    .then(|| scope.spawn(move || isolated(e, solutions)));
                (e, run)
            })
            .collect();
        running
            .into_iter()
            .map(|(e, run)| match run.map(|r| r.join()) {
                None => (e, Status::NotStarted),
                Some(Ok(Ok(()))) => (e, Status::Pass),
                Some(Ok(Err(why))) => (e, Status::Fail(why)),
                Some(Err(_)) => (e, Status::Fail("the check panicked".into())),
            })
            .collect()
    });
    let mut passed = 0;
    for n in LESSONS {
        for (exercise, status) in statuses.iter().filter(|(e, _)| e.lesson == n)
        {
            let mark = match status {
                Status::Pass => {
                    passed += 1;
                    "pass"
                }
                Status::Fail(_) => "FAIL",
                Status::NotStarted => "not started",
            };
            let title = wrapped(exercise.title, 24, 24);
            println!("lesson {n:>2}  {mark:<11}  {title}");
            if let Status::Fail(why) = status {
                println!("{:>24}{}", "", wrapped(why, 24, 24));
            }
        }
    }
    println!();
    say(&format!(
        "{passed} of {} exercises pass. Your files: \
         crates/exercises/src/yours/; `just check N` checks lesson N's and \
         says why it fails, `just hint N` gives a hint.",
        EXERCISES.len()
    ));
    if passed == EXERCISES.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
