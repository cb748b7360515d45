//! `just trace N`, the demo with the kernel's record of each call beside
//! it, prints whole lines for every lesson, threads included: a call that
//! blocks in one thread while another makes calls is split by strace, and
//! the recipe joins it again.

use std::process::Command;
use std::thread;

use regex::Regex;

use crate::kernel::lessons;
use crate::support::{bin, normalize, root, run_with};

/// Whether `just` is here: CI installs it; a reader with only Rust skips.
fn have_just() -> bool {
    let found = Command::new("just").arg("--version").output().is_ok();
    if !found {
        assert!(std::env::var_os("CI").is_none(), "CI must install just");
        eprintln!("just is not installed: `just trace` not checked");
    }
    found
}

/// What is wrong with lesson `n`'s `just trace` output, if anything.
fn trace_problems(n: u32) -> Vec<String> {
    let output = run_with(
        Command::new("just")
            .args(["trace", &n.to_string()])
            .current_dir(root()),
        b"",
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let mut found = Vec::new();
    if !output.status.success() {
        found.push(format!(
            "exit status {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // A whole call: name(arguments) = result, nothing cut or left over.
    let whole =
        Regex::new(r"^      kernel> [a-z_0-9]+\(.*\)\s+= (-?[0-9]|0x|\?)")
            .unwrap();
    let (mut kernel, mut demo) = (0, 0);
    for line in text.lines() {
        if line.trim_start().starts_with("kernel>") {
            kernel += 1;
            if !whole.is_match(line)
                || line.contains("<unfinished")
                || line.contains("resumed>")
            {
                found.push(format!("a broken kernel line: {line:?}"));
            }
        } else if line.contains("kernel>") {
            found.push(format!("a demo line with strace's in it: {line:?}"));
        } else {
            demo += 1;
        }
    }
    if kernel == 0 || demo == 0 {
        found.push(format!("{kernel} kernel lines and {demo} demo lines"));
    }
    // Under strace the demo prints what it prints alone: tracing it must
    // not change a descriptor number or a step.
    let traced: String = text
        .lines()
        .filter(|l| !l.contains("kernel>"))
        .map(|l| format!("{l}\n"))
        .collect();
    let alone = run_with(&mut Command::new(bin(n)), b"");
    let alone = String::from_utf8_lossy(&alone.stdout);
    if normalize(&traced) != normalize(&alone) {
        found.push(format!(
            "the traced demo printed other lines than the demo alone:\n{traced}"
        ));
    }
    found
}

#[test]
fn just_trace_prints_whole_lines_for_every_lesson() {
    if !have_just() {
        return;
    }
    bin(1);
    // Three at a time: each is one demo under strace, mostly waiting.
    let all = lessons();
    let mut problems = Vec::new();
    for pair in all.chunks(3) {
        let handles: Vec<_> = pair
            .iter()
            .map(|&n| thread::spawn(move || (n, trace_problems(n))))
            .collect();
        for handle in handles {
            let (n, found) = handle.join().expect("trace thread");
            problems
                .extend(found.into_iter().map(|p| format!("lesson {n}: {p}")));
        }
    }
    assert!(problems.is_empty(), "just trace:\n{}", problems.join("\n"));
}
