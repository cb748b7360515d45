//! The code listings of the book, as a reader sees them: each is a whole
//! item (a function, a struct...) with its doc comment, starting at column
//! 0, captioned with the item and the file it comes from, no wider than 80
//! columns (what a 1280-pixel window shows without scrolling sideways) and
//! no longer than 60 lines. And every anchor in the code is shown somewhere:
//! an anchor nothing includes is a listing that fell out of the book.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::book::{Include, chapters, includes, rel};
use crate::support::root;

/// The widest line a listing may have.
const WIDTH: usize = 80;
/// The longest listing: past this a function becomes named steps.
const LENGTH: usize = 60;

/// Chapters whose listings predate these rules. Each lesson leaves this
/// list when it moves to the lesson anatomy (CONTRIBUTING.md); it is empty
/// when they all have.
const NOT_YET: &[&str] = &[];

fn checked(chapter: &Path) -> bool {
    let name = chapter.file_name().unwrap().to_string_lossy();
    !NOT_YET.contains(&name.as_ref())
}

/// The lines between `ANCHOR: name` and `ANCHOR_END: name`, without marker
/// lines, as mdBook shows them; `None` when the file has no such anchor.
fn anchor_lines(text: &str, name: &str) -> Option<Vec<String>> {
    let (begin, end) =
        (format!("ANCHOR: {name}"), format!("ANCHOR_END: {name}"));
    let mut lines = None;
    for line in text.lines() {
        let marker = line.trim();
        if marker.ends_with(&begin) {
            lines = Some(Vec::new());
        } else if marker.ends_with(&end) {
            return lines;
        } else if let Some(lines) = lines.as_mut()
            && !marker.contains("ANCHOR: ")
            && !marker.contains("ANCHOR_END: ")
        {
            lines.push(line.to_string());
        }
    }
    None
}

/// What is wrong with one listing's code, if anything.
fn code_problems(lines: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    if lines.len() > LENGTH {
        found.push(format!("{} lines long (at most {LENGTH})", lines.len()));
    }
    for (i, line) in lines.iter().enumerate() {
        let width = line.chars().count();
        if width > WIDTH {
            found.push(format!("line {} is {width} columns wide", i + 1));
        }
    }
    match lines.iter().find(|l| !l.trim().is_empty()) {
        Some(first) if first.starts_with(char::is_whitespace) => found.push(
            "starts indented: anchor a whole item, not part of a body"
                .to_string(),
        ),
        None => found.push("is empty".to_string()),
        _ => {}
    }
    found
}

/// The caption that must stand just before a listing's code fence (a blank
/// line between them is allowed):
/// `*Listing 2-1: `fn listen` in `crates/02-tcp-server-client/src/demo.rs`*`;
/// an appendix numbers its listings after its letter (`Listing B-1`).
fn caption_re() -> Regex {
    Regex::new(r"^\*Listing (\d+|[A-Z])-(\d+): `([^`]+)` in `([^`]+)`\*$")
        .unwrap()
}

/// What is wrong with the caption of a listing, if anything: it names the
/// item the listing declares and the file it is included from, and
/// listings are numbered 1, 2, 3... in each chapter.
fn caption_problem(
    caption: Option<&str>,
    lines: &[String],
    file: &str,
    number: usize,
) -> Option<String> {
    let Some(caption) = caption else {
        return Some("has no caption on the line before its ```".into());
    };
    let Some(cap) = caption_re().captures(caption) else {
        return Some(format!(
            "caption {caption:?} is not `*Listing N-M: `item` in `file`*`"
        ));
    };
    if cap[2].parse::<usize>().ok() != Some(number) {
        return Some(format!("caption {caption:?}: this is listing {number}"));
    }
    if &cap[4] != file {
        return Some(format!("caption {caption:?}: the code is from {file}"));
    }
    let item = &cap[3];
    let declares = |line: &str| {
        line.strip_prefix(item).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(['(', '<', ' ', '{', ':', ';'])
        })
    };
    let declared = lines.iter().any(|line| {
        let bare = line.strip_prefix("pub(crate) ").unwrap_or(line);
        let bare = bare.strip_prefix("pub ").unwrap_or(bare);
        declares(line) || declares(bare)
    });
    if !declared {
        return Some(format!(
            "caption {caption:?}: the listing declares no `{item}` at column 0"
        ));
    }
    None
}

/// The problems of every Rust listing in `chapter`, whose text is `text`.
fn chapter_problems(
    chapter: &Path,
    text: &str,
    all: &[Include],
) -> Vec<String> {
    let mut found = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut number = 0;
    for inc in all.iter().filter(|i| i.chapter == chapter) {
        if inc.target.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let Some(anchor) = inc.selector.as_deref() else {
            found.push(format!(
                "{}: a whole file is included",
                rel(&inc.target)
            ));
            continue;
        };
        number += 1;
        let Ok(source) = fs::read_to_string(&inc.target) else { continue };
        let Some(code) = anchor_lines(&source, anchor) else { continue };
        let file = rel(&inc.target);
        let here =
            format!("{}: listing {number} ({file}:{anchor})", rel(chapter));
        // The include's line, then the fence before it, then the caption.
        let include = format!(":{anchor}}}}}");
        let at = lines.iter().position(|l| {
            l.contains(&*inc.target.file_name().unwrap().to_string_lossy())
                && l.contains(&include)
        });
        // The caption: the line before the fence, or the one before that
        // when a blank line separates them.
        let fence = at.and_then(|i| i.checked_sub(1));
        let caption = fence
            .filter(|&f| f >= 2 && lines[f].starts_with("```"))
            .map(|f| if lines[f - 1].trim().is_empty() { f - 2 } else { f - 1 })
            .map(|c| lines[c])
            .filter(|l| !l.trim().is_empty());
        if let Some(why) = caption_problem(caption, &code, &file, number) {
            found.push(format!("{here}: {why}"));
        }
        for why in code_problems(&code) {
            found.push(format!("{here}: {why}"));
        }
    }
    found
}

#[test]
fn every_listing_is_a_captioned_whole_item_that_fits_the_page() {
    let all = includes();
    let mut found = Vec::new();
    for (chapter, text) in chapters() {
        if checked(&chapter) {
            found.extend(chapter_problems(&chapter, &text, &all));
        }
    }
    assert!(found.is_empty(), "listings:\n{}", found.join("\n"));
}

/// Whether the chapter of the crate that holds `file` is checked:
/// `crates/05-byte-stream/...` is lesson-05.md, `crates/bench` the
/// benchmarks appendix.
fn crate_checked(file: &Path) -> bool {
    let crates = root().join("crates");
    let Ok(inside) = file.strip_prefix(&crates) else { return true };
    let dir = inside.iter().next().unwrap().to_string_lossy();
    let chapter = match dir.split_once('-') {
        Some((nn, _)) if nn.chars().all(|c| c.is_ascii_digit()) => {
            format!("lesson-{nn}.md")
        }
        _ if dir == "bench" => "benchmarks.md".to_string(),
        _ => return true,
    };
    checked(Path::new(&chapter))
}

/// Every `ANCHOR:` under `crates/`, as (file, name).
fn anchors() -> Vec<(PathBuf, String)> {
    let re = Regex::new(r"ANCHOR: ([A-Za-z0-9_-]+)").unwrap();
    let mut found = Vec::new();
    let mut stack = vec![root().join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read crates/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("read source");
                for cap in re.captures_iter(&text) {
                    found.push((path.clone(), cap[1].to_string()));
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_anchor_in_the_code_is_shown_in_the_book() {
    let all = includes();
    let diffs = fs::read_dir(root().join("book/src/diffs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let unused: Vec<String> = anchors()
        .into_iter()
        .filter(|(file, _)| crate_checked(file))
        .filter(|(file, name)| {
            let included = all.iter().any(|inc| {
                inc.selector.as_deref() == Some(name.as_str())
                    && same_file(&inc.target, file)
            });
            // A generated diff (NN-MM-ANCHOR.diff) shows an anchor too.
            let diffed =
                diffs.iter().any(|d| d.ends_with(&format!("-{name}.diff")));
            !included && !diffed
        })
        .map(|(file, name)| format!("{}: {name}", rel(&file)))
        .collect();
    assert!(
        unused.is_empty(),
        "anchors nothing includes:\n{}",
        unused.join("\n")
    );
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[test]
fn the_listing_checks_can_fail() {
    let code = |text: &str| -> Vec<String> {
        text.lines().map(String::from).collect()
    };
    let good = code("/// Doc.\nfn listen() {\n    x();\n}");
    assert!(code_problems(&good).is_empty());
    assert!(!code_problems(&code("    let x = 1;\n}")).is_empty());
    assert!(
        !code_problems(&code(&format!("fn a() {{}} // {}", "x".repeat(80))))
            .is_empty()
    );
    let long = format!("fn a() {{\n{}}}", "    x();\n".repeat(LENGTH));
    assert!(!code_problems(&code(&long)).is_empty());

    let file = "crates/02-tcp-server-client/src/demo.rs";
    let caption = format!("*Listing 2-1: `fn listen` in `{file}`*");
    assert_eq!(caption_problem(Some(&caption), &good, file, 1), None);
    assert!(caption_problem(None, &good, file, 1).is_some());
    assert!(caption_problem(Some(&caption), &good, file, 2).is_some());
    assert!(caption_problem(Some(&caption), &good, "src/main.rs", 1).is_some());
    let other = format!("*Listing 2-1: `fn accept` in `{file}`*");
    assert!(caption_problem(Some(&other), &good, file, 1).is_some());
}
