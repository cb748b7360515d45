//! The diffs the book shows between two lessons are generated, never
//! pasted: each `book/src/diffs/NN-MM-ANCHOR.diff` must equal the unified
//! diff of anchor ANCHOR in lesson NN and in lesson MM as they are now.
//! `UPDATE_DIFFS=1 cargo test diffs` rewrites them after a lesson changes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::root;

/// The lines of `// ANCHOR: name` .. `// ANCHOR_END: name` in the file of
/// lesson `nn`'s `src/` that has that anchor, without anchor marker lines
/// (as mdBook shows them).
fn anchor_text(nn: &str, name: &str) -> String {
    let crates = root().join("crates");
    let dir = fs::read_dir(&crates)
        .expect("crates/")
        .map(|e| e.expect("entry").path())
        .find(|p| {
            p.file_name().is_some_and(|f| {
                f.to_string_lossy().starts_with(&format!("{nn}-"))
            })
        })
        .unwrap_or_else(|| panic!("no crates/{nn}-*"));
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("src"))
        .expect("src/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let begin = format!("ANCHOR: {name}");
    let source = files
        .iter()
        .map(|f| fs::read_to_string(f).expect("read source"))
        .find(|text| text.lines().any(|l| l.trim().ends_with(&begin)))
        .unwrap_or_default();
    let mut inside = false;
    let mut found = false;
    let mut text = String::new();
    for line in source.lines() {
        let marker = line.trim();
        if marker.ends_with(&format!("ANCHOR: {name}")) {
            inside = true;
            found = true;
        } else if marker.ends_with(&format!("ANCHOR_END: {name}")) {
            inside = false;
        } else if inside
            && !marker.contains("ANCHOR: ")
            && !marker.contains("ANCHOR_END: ")
        {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(found, "lesson {nn} has no anchor {name:?}");
    text
}

/// `diff -u` of anchor `name` between lessons `from` and `to`.
fn anchor_diff(from: &str, to: &str, name: &str) -> String {
    let dir = std::env::temp_dir()
        .join(format!("course-diff-{}-{from}-{to}-{name}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let (a, b) = (dir.join("a"), dir.join("b"));
    fs::write(&a, anchor_text(from, name)).expect("write a");
    fs::write(&b, anchor_text(to, name)).expect("write b");
    let out = Command::new("diff")
        .args([
            "-u",
            "--label",
            &format!("lesson {from}: {name}"),
            "--label",
            &format!("lesson {to}: {name}"),
        ])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run diff (diffutils)");
    let _ = fs::remove_dir_all(&dir);
    assert!(out.status.code().is_some_and(|c| c <= 1), "diff failed: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 diff")
}

fn diff_files() -> Vec<PathBuf> {
    let dir = root().join("book/src/diffs");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|rd| rd.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "diff"));
    files.sort();
    files
}

/// `02-03-server.diff` -> ("02", "03", "server").
fn parse_name(path: &Path) -> (String, String, String) {
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let mut parts = stem.splitn(3, '-');
    let (Some(from), Some(to), Some(anchor)) =
        (parts.next(), parts.next(), parts.next())
    else {
        panic!("{} is not named NN-MM-ANCHOR.diff", path.display());
    };
    (from.to_string(), to.to_string(), anchor.to_string())
}

#[test]
fn the_book_shows_current_diffs_between_lessons() {
    let update = std::env::var_os("UPDATE_DIFFS").is_some();
    let mut stale = Vec::new();
    for path in diff_files() {
        let (from, to, anchor) = parse_name(&path);
        let fresh = anchor_diff(&from, &to, &anchor);
        assert!(
            !fresh.is_empty(),
            "{}: the anchor is the same in both lessons",
            path.display()
        );
        if fs::read_to_string(&path).ok().as_deref() != Some(fresh.as_str()) {
            if update {
                fs::write(&path, &fresh).expect("rewrite diff");
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "these diffs no longer match the lessons; run UPDATE_DIFFS=1 cargo test diffs and review:\n{}",
        stale.join("\n")
    );
}
