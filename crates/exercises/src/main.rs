//! `just check N`: run lesson N's exercise checks and say which pass, and
//! why one fails. `just check`: your progress over the whole course.
//! `just hint N`: lesson N's hint. `--solutions` checks the solutions
//! instead of your files.

use std::process::ExitCode;

use exercises::{EXERCISES, Exercise, LESSONS, Status, of_lesson};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let solutions = args.iter().any(|a| a == "--solutions");
    args.retain(|a| a != "--solutions");
    match args.as_slice() {
        [] => progress(solutions),
        [hint, n] if hint == "hint" => match lesson(n) {
            Some(exercises) => {
                for e in exercises {
                    println!("Lesson {}, {}:", e.lesson, e.title);
                    println!("Hint: {}.", e.hint);
                    println!(
                        "More, and a solution: the section \"Exercise\" of {}.",
                        e.chapter
                    );
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

/// Runs the checks of one lesson: each one's verdict, and why it fails,
/// with the hint.
fn check(exercises: &[&Exercise], solutions: bool) -> ExitCode {
    let mut failed = 0;
    for exercise in exercises {
        println!("Lesson {}: {}", exercise.lesson, exercise.title);
        let file = if solutions {
            exercise.file.replace("/yours/", "/solutions/")
        } else {
            exercise.file.to_string()
        };
        println!("File: {file}");
        let result =
            if solutions { (exercise.solution)() } else { (exercise.yours)() };
        match result {
            Ok(()) => println!("pass"),
            Err(why) => {
                failed += 1;
                println!("FAIL: {why}");
                println!("Hint: {}.", exercise.hint);
                println!(
                    "The statement and a solution: the section \"Exercise\" \
                     of {}.",
                    exercise.chapter
                );
            }
        }
    }
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Every lesson, with its exercises' state, and the total.
fn progress(solutions: bool) -> ExitCode {
    let mut passed = 0;
    for n in LESSONS {
        if of_lesson(n).is_empty() {
            println!("lesson {n:>2}  no exercise yet");
        }
        for exercise in of_lesson(n) {
            let status = if solutions {
                exercise.run_solution()
            } else {
                exercise.status()
            };
            let mark = match status {
                Status::Pass => {
                    passed += 1;
                    "pass"
                }
                Status::Fail(_) => "FAIL",
                Status::NotStarted => "not started",
            };
            println!("lesson {n:>2}  {mark:<11}  {}", exercise.title);
        }
    }
    println!(
        "\n{passed} of {} exercises pass. Your files: \
         crates/exercises/src/yours/; `just check N` checks lesson N's and \
         says why it fails, `just hint N` gives a hint.",
        EXERCISES.len()
    );
    if passed == EXERCISES.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
