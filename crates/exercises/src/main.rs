//! `just exercises`: which of your exercises pass. `just exercise N`: check
//! one, and say why it fails. `--solutions` checks the solutions instead.

use std::process::ExitCode;

use exercises::{EXERCISES, Exercise, find};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let solutions = args.iter().any(|a| a == "--solutions");
    args.retain(|a| a != "--solutions");
    let run =
        |e: &Exercise| if solutions { (e.solution)() } else { (e.yours)() };
    match args.as_slice() {
        [] => list(run),
        [id] => match find(id) {
            Some(exercise) => one(exercise, solutions, run(exercise)),
            None => {
                let ids: Vec<&str> = EXERCISES.iter().map(|e| e.id).collect();
                eprintln!(
                    "exercises: no exercise {id}; there are {}",
                    ids.join(", ")
                );
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: exercises [--solutions] [N]");
            ExitCode::FAILURE
        }
    }
}

/// Every exercise, pass or fail, and the count.
fn list(run: impl Fn(&Exercise) -> Result<(), String>) -> ExitCode {
    let mut passed = 0;
    for exercise in EXERCISES {
        let result = run(exercise);
        let mark = if result.is_ok() { "pass" } else { "FAIL" };
        println!("{mark}  {:>2}  {}", exercise.id, exercise.title);
        match result {
            Ok(()) => passed += 1,
            Err(why) => println!("          {why}"),
        }
    }
    println!(
        "\n{passed} of {} pass. Your files: crates/exercises/src/yours/; \
         `just exercise N` checks one.",
        EXERCISES.len()
    );
    if passed == EXERCISES.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One exercise: what it asks, and why it fails, with the hint.
fn one(
    exercise: &Exercise,
    solutions: bool,
    result: Result<(), String>,
) -> ExitCode {
    println!("Exercise {}: {}", exercise.id, exercise.title);
    if solutions {
        let solution = exercise.file.replace("/yours/", "/solutions/");
        println!("The solution: {solution}");
    } else {
        println!("Your file: {}", exercise.file);
    }
    match result {
        Ok(()) => {
            println!("pass");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("FAIL: {why}");
            println!("Hint: {}.", exercise.hint);
            println!(
                "The statement and a solution: the section \"Exercise\" of {}.",
                exercise.chapter
            );
            ExitCode::FAILURE
        }
    }
}
