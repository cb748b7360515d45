//! The Chinese edition (TRANSLATING.md): `po/zh-CN.po` translates the
//! book's prose; code, transcripts and diffs are the English book's own.
//!
//! Checked here, with one English and one Chinese build shared by the tests:
//! - `msgfmt --check` accepts `po/zh-CN.po`;
//! - `po/messages.pot` is what the English text extracts to now, and
//!   `po/zh-CN.po` is merged with it (`just po`): a change in English prose
//!   fails until the translation is updated;
//! - the Chinese book builds with no ERROR, and each of its pages has the
//!   same `<pre>` blocks and the same heading ids as the English page;
//! - a translated message keeps its source's inline code and link targets;
//! - coverage is reported, and must be 100 %, none fuzzy, once the
//!   translation is declared complete: `ZH_COMPLETE=1`, or a committed
//!   `po/zh-CN.complete` file.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use regex::Regex;

use crate::support::root;

const PO: &str = "po/zh-CN.po";
const POT: &str = "po/messages.pot";

/// Runs a tool; `None` (after saying so) when it is not installed outside
/// CI, where every tool is installed by `.ci/run`.
fn tool(command: &mut Command) -> Option<Output> {
    match command.current_dir(root()).output() {
        Ok(output) => Some(output),
        Err(err) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install {:?}: {err}",
                command.get_program()
            );
            eprintln!("{:?} is not installed: skipped", command.get_program());
            None
        }
    }
}

/// True when mdbook and mdbook-gettext are both installed (or fails in CI).
fn have_i18n_tools() -> bool {
    tool(Command::new("mdbook-gettext").args(["supports", "html"])).is_some()
        && tool(Command::new("mdbook").arg("--version")).is_some()
}

struct Editions {
    dir: PathBuf,
    /// What the Chinese build printed (stdout and stderr).
    zh_log: String,
    zh_ok: bool,
}

impl Drop for Editions {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Both editions, built once per test run into a temporary directory.
fn editions() -> Option<&'static Editions> {
    static BUILT: OnceLock<Option<Editions>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !have_i18n_tools() {
                return None;
            }
            let dir = std::env::temp_dir()
                .join(format!("course-zh-{}", std::process::id()));
            let build = |lang: &str, to: &str| {
                Command::new("mdbook")
                    .current_dir(root())
                    .env("MDBOOK_BOOK__LANGUAGE", lang)
                    .args(["build", "book", "-d"])
                    .arg(dir.join(to))
                    .output()
                    .expect("mdbook runs")
            };
            let en = build("en", "en");
            assert!(en.status.success(), "English build failed: {en:?}");
            let zh = build("zh-CN", "zh-CN");
            Some(Editions {
                zh_log: String::from_utf8_lossy(&zh.stdout).into_owned()
                    + &String::from_utf8_lossy(&zh.stderr),
                zh_ok: zh.status.success(),
                dir,
            })
        })
        .as_ref()
}

/// One message of a PO file (obsolete `#~` entries are left out).
#[derive(Debug)]
struct Message {
    id: String,
    text: String,
    fuzzy: bool,
}

fn unquote(line: &str) -> String {
    let inner = line.trim().trim_start_matches('"').trim_end_matches('"');
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// The messages of a PO file, header (empty msgid) excluded.
fn messages(po: &str) -> Vec<Message> {
    let mut out = Vec::new();
    for entry in po.split("\n\n") {
        let (mut id, mut text, mut fuzzy) =
            (String::new(), String::new(), false);
        let mut field: Option<&mut String> = None;
        let mut seen_id = false;
        for line in entry.lines() {
            if line.starts_with("#,") && line.contains("fuzzy") {
                fuzzy = true;
            } else if let Some(rest) = line.strip_prefix("msgid ") {
                seen_id = true;
                id = unquote(rest);
                field = Some(&mut id);
            } else if let Some(rest) = line.strip_prefix("msgstr ") {
                text = unquote(rest);
                field = Some(&mut text);
            } else if line.starts_with('"')
                && let Some(f) = field.as_mut()
            {
                f.push_str(&unquote(line));
            }
        }
        if seen_id && !id.is_empty() {
            out.push(Message { id, text, fuzzy });
        }
    }
    out
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(root().join(path)).expect("readable")
}

/// The PO header's creation date changes at each extraction; the rest
/// of the file says whether the messages did.
fn without_date(pot: &str) -> String {
    pot.lines()
        .filter(|l| !l.starts_with("\"POT-Creation-Date"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn zh_po_passes_msgfmt_check() {
    let Some(out) =
        tool(Command::new("msgfmt").args(["--check", "-o", "/dev/null", PO]))
    else {
        return;
    };
    assert!(out.status.success(), "msgfmt --check {PO}: {out:?}");
}

#[test]
fn zh_pot_is_the_english_text_and_the_po_is_merged_with_it() {
    if !have_i18n_tools() {
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("course-pot-{}", std::process::id()));
    let out = Command::new("mdbook")
        .current_dir(root())
        .env(
            "MDBOOK_OUTPUT",
            r#"{"xgettext": {"pot-file": "messages.pot", "granularity": 0}}"#,
        )
        .args(["build", "book", "-d"])
        .arg(&dir)
        .output()
        .expect("mdbook runs");
    let fresh = fs::read_to_string(dir.join("messages.pot"));
    let _ = fs::remove_dir_all(&dir);
    assert!(out.status.success(), "extraction failed: {out:?}");
    assert!(
        without_date(&fresh.expect("messages.pot written"))
            == without_date(&read(POT)),
        "{POT} is not the English text as it is now: run `just po`, then \
         translate the new and fuzzy messages (TRANSLATING.md)"
    );
    let Some(merged) =
        tool(Command::new("msgmerge").args(["--quiet", "-o", "-", PO, POT]))
    else {
        return;
    };
    assert!(merged.status.success(), "msgmerge: {merged:?}");
    assert!(
        String::from_utf8_lossy(&merged.stdout) == read(PO),
        "{PO} is not merged with {POT}: run `just po` (TRANSLATING.md)"
    );
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = fs::read_dir(dir)
        .expect("built")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
        .collect();
    pages.sort();
    pages
}

#[test]
fn zh_edition_builds_with_the_english_code_and_anchors() {
    let Some(built) = editions() else { return };
    assert!(built.zh_ok, "Chinese build failed:\n{}", built.zh_log);
    // mdbook-gettext is optional in book.toml (the English book builds
    // without it); a Chinese build without it is no Chinese build.
    assert!(
        !built.zh_log.contains("ERROR")
            && !built.zh_log.contains("was not found"),
        "the Chinese build printed errors:\n{}",
        built.zh_log
    );
    let pre = Regex::new(r"(?s)<pre>.*?</pre>").unwrap();
    let heading = Regex::new(r#"<h[1-6] id="([^"]*)""#).unwrap();
    // Emphasis markers that did not render: CommonMark's flanking rules
    // treat CJK characters as letters, so `一次_读到_` stays literal where
    // `一次*读到*` works, and a closing `**` after `。` before a character
    // does not close. More of them than the English page has is a mistake.
    // Counted where a marker touches a Chinese character or full-width
    // punctuation, so that TIME_WAIT in the prose is not one.
    let code = Regex::new(r"(?s)<pre>.*?</pre>|<code[^>]*>.*?</code>").unwrap();
    let marker = Regex::new(
        r"[\p{Han}\x{3000}-\x{303F}\x{FF00}-\x{FFEF}][*_]|[*_][\p{Han}\x{3000}-\x{303F}\x{FF00}-\x{FFEF}]",
    )
    .unwrap();
    let markers = |html: &str| -> usize {
        let main = html.split("<main>").nth(1).unwrap_or("");
        marker.find_iter(&code.replace_all(main, "")).count()
    };
    let mut wrong = Vec::new();
    let en_pages = pages(&built.dir.join("en"));
    assert!(en_pages.len() > 20, "the English book has its pages");
    for en_page in en_pages {
        let name = en_page.file_name().unwrap();
        let zh_page = built.dir.join("zh-CN").join(name);
        let (en, zh) = (
            fs::read_to_string(&en_page).unwrap(),
            fs::read_to_string(&zh_page).unwrap_or_default(),
        );
        let blocks = |html: &str| -> Vec<String> {
            pre.find_iter(html).map(|m| m.as_str().to_string()).collect()
        };
        let (en_blocks, zh_blocks) = (blocks(&en), blocks(&zh));
        if en_blocks != zh_blocks {
            let first = en_blocks
                .iter()
                .zip(&zh_blocks)
                .position(|(a, b)| a != b)
                .unwrap_or(en_blocks.len().min(zh_blocks.len()));
            wrong.push(format!(
                "{name:?}: code blocks differ ({} in English, {} in Chinese; \
                 first difference at block {})",
                en_blocks.len(),
                zh_blocks.len(),
                first + 1
            ));
        }
        // Smart punctuation turns a straight `"` before a CJK character
        // into an opening quote even where it closes: “创建”时 comes out
        // as “创建“时. Unbalanced quotes the English page has not are that.
        let unbalanced = |html: &str| -> usize {
            let main = html.split("<main>").nth(1).unwrap_or("");
            let prose = code.replace_all(main, "");
            prose.matches('“').count().abs_diff(prose.matches('”').count())
        };
        if unbalanced(&zh) > unbalanced(&en) {
            wrong.push(format!(
                "{name:?}: unbalanced “ and ” in the Chinese prose: write \
                 “ and ” in the translation, not \" (TRANSLATING.md)"
            ));
        }
        if markers(&zh) > markers(&en) {
            wrong.push(format!(
                "{name:?}: {} literal `*` or `_` in the Chinese prose, {} in \
                 the English: emphasis that did not render (TRANSLATING.md)",
                markers(&zh),
                markers(&en)
            ));
        }
        let ids = |html: &str| -> Vec<String> {
            heading.captures_iter(html).map(|c| c[1].to_string()).collect()
        };
        if ids(&en) != ids(&zh) {
            wrong.push(format!(
                "{name:?}: heading ids differ: {:?} against {:?}",
                ids(&en),
                ids(&zh)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Inline code spans and link targets of a message: what a translation
/// keeps as it is.
fn kept(text: &str) -> BTreeSet<String> {
    let code = Regex::new(r"`+[^`]+`+|\]\([^)\s]*\)").unwrap();
    code.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

#[test]
fn zh_translations_keep_code_and_link_targets() {
    let mut wrong = Vec::new();
    for m in messages(&read(PO)) {
        if m.text.is_empty() || m.fuzzy {
            continue;
        }
        let (en, zh) = (kept(&m.id), kept(&m.text));
        if en != zh {
            wrong.push(format!(
                "{:?}\n  only in English: {:?}\n  only in Chinese: {:?}",
                m.id,
                en.difference(&zh).collect::<Vec<_>>(),
                zh.difference(&en).collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn zh_coverage_is_complete_once_declared_complete() {
    let all = messages(&read(PO));
    let translated = all.iter().filter(|m| !m.text.is_empty() && !m.fuzzy);
    let translated = translated.count();
    let fuzzy = all.iter().filter(|m| m.fuzzy).count();
    eprintln!(
        "{PO}: {translated} of {} messages translated ({:.0} %), {fuzzy} fuzzy",
        all.len(),
        100.0 * translated as f64 / all.len().max(1) as f64
    );
    let complete = std::env::var_os("ZH_COMPLETE").is_some_and(|v| v == "1")
        || root().join("po/zh-CN.complete").exists();
    if complete {
        assert!(
            translated == all.len() && fuzzy == 0,
            "the Chinese edition is declared complete, but {} of {} messages \
             are untranslated or fuzzy (`just po-stats` lists them by chapter)",
            all.len() - translated,
            all.len()
        );
    }
}

#[test]
fn zh_po_reader_reads_fuzzy_multiline_and_escapes() {
    let po = "msgid \"\"\nmsgstr \"header\"\n\n#: src/a.md\n#, fuzzy\n\
              msgid \"\"\n\"a \\\"b\\\"\\n\"\n\"c\"\nmsgstr \"甲\"\n\n\
              #~ msgid \"old\"\n#~ msgstr \"旧\"\n";
    let all = messages(po);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].id, "a \"b\"\nc");
    assert_eq!(all[0].text, "甲");
    assert!(all[0].fuzzy);
    assert_eq!(
        kept("`accept` and [lesson 8](lesson-08.md#x)"),
        BTreeSet::from(["`accept`".into(), "](lesson-08.md#x)".into()])
    );
}
