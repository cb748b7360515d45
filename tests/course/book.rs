//! The book against the code: mdBook only logs a missing include and still
//! exits 0, so these tests are what stops the book from showing a file,
//! anchor or line range that no longer exists, or output typed by hand.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::support::root;

/// Every Markdown file of the book, with its text.
fn chapters() -> Vec<(PathBuf, String)> {
    let dir = root().join("book/src");
    let mut found = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read book/src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let text = fs::read_to_string(&path).expect("read chapter");
                found.push((path, text));
            }
        }
    }
    found.sort();
    found
}

/// One `{{#include path[:range-or-anchor]}}` in a chapter.
#[derive(Debug)]
struct Include {
    chapter: PathBuf,
    target: PathBuf,
    selector: Option<String>,
}

fn includes() -> Vec<Include> {
    let re = Regex::new(r"\{\{#(?:include|rustdoc_include)\s+([^}\s]+)\s*\}\}").unwrap();
    let mut all = Vec::new();
    for (chapter, text) in chapters() {
        for cap in re.captures_iter(&text) {
            let spec = &cap[1];
            let (path, selector) = match spec.split_once(':') {
                Some((path, rest)) => (path, Some(rest.to_string())),
                None => (spec, None),
            };
            let target = chapter.parent().unwrap().join(path);
            all.push(Include { chapter: chapter.clone(), target, selector });
        }
    }
    all
}

/// Checks one include and returns what is wrong with it, if anything.
fn problem(include: &Include) -> Option<String> {
    let Ok(text) = fs::read_to_string(&include.target) else {
        return Some("the file does not exist".to_string());
    };
    let lines = text.lines().count();
    let selector = include.selector.as_deref()?;
    let is_range = selector.chars().all(|c| c.is_ascii_digit() || c == ':');
    if is_range {
        // N, N:, :M or N:M, 1-based and inclusive, as mdBook reads them.
        let mut parts = selector.splitn(2, ':');
        let start: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        let end: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        if let Some(start) = start
            && (start == 0 || start > lines)
        {
            return Some(format!("starts at line {start} of a {lines}-line file"));
        }
        if let Some(end) = end
            && end > lines
        {
            return Some(format!("ends at line {end} of a {lines}-line file"));
        }
        return None;
    }
    let begins = text.lines().any(|l| l.trim_end().ends_with(&format!("ANCHOR: {selector}")));
    let ends = text.lines().any(|l| l.trim_end().ends_with(&format!("ANCHOR_END: {selector}")));
    match (begins, ends) {
        (true, true) => None,
        _ => Some(format!("anchor {selector:?} is missing or unclosed")),
    }
}

#[test]
fn every_include_names_an_existing_file_range_or_anchor() {
    let all = includes();
    assert!(!all.is_empty(), "the book includes nothing: is book/src there?");
    let broken: Vec<String> = all
        .iter()
        .filter_map(|inc| {
            problem(inc).map(|why| format!("{}: {}: {why}", rel(&inc.chapter), rel(&inc.target)))
        })
        .collect();
    assert!(broken.is_empty(), "broken includes:\n{}", broken.join("\n"));
}

#[test]
fn the_include_check_catches_what_mdbook_only_logs() {
    // The checks above must be able to fail: a missing file, an anchor that
    // is not there, a range past the end.
    let chapter = root().join("book/src/SUMMARY.md");
    let case = |target: &str, selector: Option<&str>| Include {
        chapter: chapter.clone(),
        target: root().join(target),
        selector: selector.map(str::to_string),
    };
    assert!(problem(&case("crates/no-such-lesson/src/main.rs", None)).is_some());
    assert!(problem(&case("crates/02-tcp-server-client/src/main.rs", Some("no_such_anchor"))).is_some());
    assert!(problem(&case("tests/snapshots/lesson_02__demo.snap", Some("4:100000"))).is_some());
    assert!(problem(&case("crates/02-tcp-server-client/src/main.rs", Some("demo_listen"))).is_none());
}

#[test]
fn snapshots_are_included_without_their_header() {
    // insta writes a 3-line header (---, source, ---) with omit_expression.
    for inc in includes() {
        if inc.target.extension().is_some_and(|e| e == "snap") {
            let header: Vec<String> = fs::read_to_string(&inc.target)
                .unwrap_or_default()
                .lines()
                .take(3)
                .map(String::from)
                .collect();
            assert_eq!(header.first().map(String::as_str), Some("---"), "{}", rel(&inc.target));
            assert_eq!(
                header.get(2).map(String::as_str),
                Some("---"),
                "{}: header is not 3 lines",
                rel(&inc.target)
            );
            let start: Option<usize> =
                inc.selector.as_deref().and_then(|s| s.split(':').next()).and_then(|n| n.parse().ok());
            assert!(
                start.is_some_and(|line| line >= 4),
                "{} includes {} with {:?}: start at line 4 (:4:) to skip the header",
                rel(&inc.chapter),
                rel(&inc.target),
                inc.selector
            );
        }
    }
}

#[test]
fn no_transcript_is_pasted_into_the_book() {
    // A transcript's numbered step line, e.g. "   7  accept(fd 3) = fd 5".
    let step = Regex::new(r"^\s{0,3}[0-9]{1,4}  (\s*)[a-z_0-9]+\(.*\) = ").unwrap();
    let mut pasted = Vec::new();
    for (chapter, text) in chapters() {
        let mut in_block = false;
        for (no, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if in_block && (step.is_match(line) || line.starts_with("step  ")) {
                pasted.push(format!("{}:{}: {line}", rel(&chapter), no + 1));
            }
        }
    }
    assert!(
        pasted.is_empty(),
        "transcript lines pasted into the book; include the snapshot instead:\n{}",
        pasted.join("\n")
    );
}

#[test]
fn every_lesson_has_a_chapter_showing_its_code_and_its_transcript() {
    let all = includes();
    let lessons = fs::read_dir(root().join("crates")).expect("crates/");
    for entry in lessons {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some(number) = name.get(..2).filter(|n| n.chars().all(|c| c.is_ascii_digit())) else {
            continue;
        };
        let main = dir.join("src/main.rs");
        let snap = root().join(format!("tests/snapshots/lesson_{number}__demo.snap"));
        let shows = |target: &Path| all.iter().any(|inc| same_file(&inc.target, target));
        assert!(shows(&main), "no chapter includes code from {}", rel(&main));
        assert!(shows(&snap), "no chapter includes the transcript {}", rel(&snap));
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn rel(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    path.strip_prefix(root().canonicalize().unwrap_or_default()).unwrap_or(&path).display().to_string()
}

/// The id mdBook gives a heading: lower case, spaces to dashes, and only
/// letters, digits, `-` and `_` kept.
fn heading_id(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            c if c.is_whitespace() => Some('-'),
            _ => None,
        })
        .collect()
}

#[test]
fn every_link_between_chapters_reaches_a_chapter_and_heading() {
    let link = Regex::new(r"\]\(([a-z0-9_-]+\.md)?(?:#([a-z0-9_-]+))?\)").unwrap();
    let book = root().join("book/src");
    let mut broken = Vec::new();
    for (chapter, text) in chapters() {
        for cap in link.captures_iter(&text) {
            let target = cap.get(1).map_or(chapter.clone(), |m| book.join(m.as_str()));
            let Ok(target_text) = fs::read_to_string(&target) else {
                broken.push(format!("{}: {} does not exist", rel(&chapter), rel(&target)));
                continue;
            };
            if let Some(fragment) = cap.get(2) {
                let ids: Vec<String> = target_text
                    .lines()
                    .filter_map(|l| l.strip_prefix('#'))
                    .map(|l| heading_id(l.trim_start_matches('#')))
                    .collect();
                if !ids.iter().any(|id| id == fragment.as_str()) {
                    broken.push(format!(
                        "{}: no heading #{} in {}",
                        rel(&chapter),
                        fragment.as_str(),
                        rel(&target)
                    ));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn heading_ids_follow_mdbook() {
    assert_eq!(heading_id(" listen(5) is not a connection limit"), "listen5-is-not-a-connection-limit");
    assert_eq!(heading_id(" The article's programs, corrected"), "the-articles-programs-corrected");
}
