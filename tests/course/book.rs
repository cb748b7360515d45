//! The book against the code: mdBook only logs a missing include and still
//! exits 0, so these tests are what stops the book from showing a file,
//! anchor or line range that no longer exists, or output typed by hand.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

use crate::snapshot;
use crate::support::root;

/// Every Markdown file of the book, with its text.
pub(crate) fn chapters() -> Vec<(PathBuf, String)> {
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
pub(crate) struct Include {
    pub(crate) chapter: PathBuf,
    pub(crate) target: PathBuf,
    pub(crate) selector: Option<String>,
}

pub(crate) fn includes() -> Vec<Include> {
    let re = Regex::new(r"\{\{#(?:include|rustdoc_include)\s+([^}\s]+)\s*\}\}")
        .unwrap();
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
            return Some(format!(
                "starts at line {start} of a {lines}-line file"
            ));
        }
        if let Some(end) = end
            && end > lines
        {
            return Some(format!("ends at line {end} of a {lines}-line file"));
        }
        return None;
    }
    let begins = text
        .lines()
        .any(|l| l.trim_end().ends_with(&format!("ANCHOR: {selector}")));
    let ends = text
        .lines()
        .any(|l| l.trim_end().ends_with(&format!("ANCHOR_END: {selector}")));
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
            problem(inc).map(|why| {
                format!("{}: {}: {why}", rel(&inc.chapter), rel(&inc.target))
            })
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
    assert!(
        problem(&case("crates/no-such-lesson/src/main.rs", None)).is_some()
    );
    assert!(
        problem(&case(
            "crates/02-tcp-server-client/src/main.rs",
            Some("no_such_anchor")
        ))
        .is_some()
    );
    assert!(
        problem(&case(
            "tests/snapshots/lesson_02__demo.snap",
            Some("4:100000")
        ))
        .is_some()
    );
    assert!(
        problem(&case(
            "crates/02-tcp-server-client/src/demo.rs",
            Some("listen")
        ))
        .is_none()
    );
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
            assert_eq!(
                header.first().map(String::as_str),
                Some("---"),
                "{}",
                rel(&inc.target)
            );
            assert_eq!(
                header.get(2).map(String::as_str),
                Some("---"),
                "{}: header is not 3 lines",
                rel(&inc.target)
            );
            let start: Option<usize> = inc
                .selector
                .as_deref()
                .and_then(|s| s.split(':').next())
                .and_then(|n| n.parse().ok());
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
    let step =
        Regex::new(r"^\s{0,3}[0-9]{1,4}  (\s*)[a-z_0-9]+\(.*\) = ").unwrap();
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
        let Some(number) =
            name.get(..2).filter(|n| n.chars().all(|c| c.is_ascii_digit()))
        else {
            continue;
        };
        // The chapter shows code from the lesson's crate, whichever file.
        let src = dir.join("src");
        let snap =
            root().join(format!("tests/snapshots/lesson_{number}__demo.snap"));
        let shows = |target: &Path| {
            all.iter().any(|inc| same_file(&inc.target, target))
        };
        let shows_code = all.iter().any(|inc| {
            inc.target.canonicalize().is_ok_and(|t| {
                src.canonicalize().is_ok_and(|src| t.starts_with(src))
            })
        });
        assert!(shows_code, "no chapter includes code from {}", rel(&src));
        assert!(
            shows(&snap),
            "no chapter includes the transcript {}",
            rel(&snap)
        );
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn rel(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    path.strip_prefix(root().canonicalize().unwrap_or_default())
        .unwrap_or(&path)
        .display()
        .to_string()
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
    let link =
        Regex::new(r"\]\(([a-z0-9_-]+\.md)?(?:#([a-z0-9_-]+))?\)").unwrap();
    let book = root().join("book/src");
    let mut broken = Vec::new();
    for (chapter, text) in chapters() {
        for cap in link.captures_iter(&text) {
            let target =
                cap.get(1).map_or(chapter.clone(), |m| book.join(m.as_str()));
            let Ok(target_text) = fs::read_to_string(&target) else {
                broken.push(format!(
                    "{}: {} does not exist",
                    rel(&chapter),
                    rel(&target)
                ));
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
    assert_eq!(
        heading_id(" listen(5) is not a connection limit"),
        "listen5-is-not-a-connection-limit"
    );
    assert_eq!(
        heading_id(" The article's programs, corrected"),
        "the-articles-programs-corrected"
    );
}

// Step citations.
//
// The chapters point at numbered steps of the demo transcripts ("**Step 7**:
// `accept` on the listener", "(steps 9 to 12)"). When a demo changes, its
// steps are renumbered and a citation silently points at the wrong line, so
// every citation is checked against the snapshot it refers to.
//
// What counts as a citation: the word `step` or `steps` (any case, bold or
// not), then one or more step numbers: `N`, a range `N to M`, `N-M` or
// `N–M`, joined by `,`, `and` or `, and` (`steps 1 and 2, 30 and 31`,
// `steps 10 to 12, and 16`). Words after the numbers (`step 79 and after`,
// `step 20 and the note after it`) end the citation. Fenced code blocks are
// not read.
//
// Which transcript it cites: the paragraph (or list item) it is in is read
// up to the citation; if a Markdown link to a lesson chapter
// (`](lesson-NN.md...)`) comes before it there, the nearest such link names
// the lesson. Otherwise a citation in `lesson-NN.md` cites lesson NN's demo,
// and a citation anywhere else is an error: write the link next to it. The
// transcript is `tests/snapshots/lesson_NN__demo.snap`; a step is a line of
// it that starts with its number (right-aligned in four columns, then two
// spaces), not the notes (`# ...`) or section lines after it.
//
// What is checked: (a) every cited step exists in that transcript, and a
// range runs upwards (`N to M` with N < M); (b) when the citation is
// followed at once (after its closing `**`, if bold, and at most one `:`,
// `,` or `.`) by a span in backticks, the first word in that span (a letter
// or `_`, then letters, digits and `_`: a system call, an errno, an option,
// as in `accept`, `EAGAIN`, `shutdown(SHUT_WR)`) appears as a whole word on
// the line of a cited step (on one of them, for a range or a list). Notes
// under a step do not count: a word there is commentary, not what the
// kernel returned. Prose further from the number is for the reader to
// review; this check cannot read it.

/// One step citation in the book.
#[derive(Debug)]
struct Citation {
    /// `file:line`, for messages.
    place: String,
    /// The citation as written, e.g. `Steps 9 to 11`.
    text: String,
    /// The lesson whose demo it cites, if the rule above finds one.
    lesson: Option<u32>,
    /// The cited steps, as inclusive ranges (`N` is `N..=N`).
    ranges: Vec<(u32, u32)>,
    /// The first word of a backticked span right after the citation.
    word: Option<String>,
}

/// The paragraphs and list items of a chapter outside fenced code blocks,
/// each with the number of its first line.
pub(crate) fn paragraphs(text: &str) -> Vec<(usize, String)> {
    let item = Regex::new(r"^\s*(?:[-*+]|[0-9]+\.)\s|^#").unwrap();
    let mut found: Vec<(usize, String)> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut in_code = false;
    for (index, line) in text.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        if fence {
            in_code = !in_code;
        }
        if fence || in_code || line.trim().is_empty() || item.is_match(line) {
            found.extend(current.take());
        }
        if fence || in_code || line.trim().is_empty() {
            continue;
        }
        match current.as_mut() {
            Some((_, paragraph)) => {
                paragraph.push('\n');
                paragraph.push_str(line);
            }
            None => current = Some((index + 1, line.to_string())),
        }
    }
    found.extend(current);
    found
}

/// Every step citation in one chapter; `name` is its file name, e.g.
/// `lesson-02.md`.
fn step_citations(name: &str, text: &str) -> Vec<Citation> {
    let number = r"[0-9]+(?:\s*(?:-|–|\bto\b)\s*[0-9]+)?";
    let citation =
        Regex::new(&format!(r"(?i)\bsteps?\s+({number}(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+){number})*)"))
            .unwrap();
    let one = Regex::new(r"([0-9]+)(?:\s*(?:-|–|to)\s*([0-9]+))?").unwrap();
    let link = Regex::new(r"\]\(lesson-([0-9]{2})\.md").unwrap();
    let backticked =
        Regex::new(r"^(?:\*\*)?[:,.]?(?:\*\*)?\s*`([^`]*)`").unwrap();
    let word = Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").unwrap();
    let own: Option<u32> = name
        .strip_prefix("lesson-")
        .and_then(|rest| rest.strip_suffix(".md"))
        .and_then(|n| n.parse().ok());
    let mut all = Vec::new();
    for (first_line, paragraph) in paragraphs(text) {
        for cap in citation.captures_iter(&paragraph) {
            let whole = cap.get(0).unwrap();
            let before = &paragraph[..whole.start()];
            let linked = link
                .captures_iter(before)
                .last()
                .and_then(|l| l[1].parse().ok());
            let ranges = one
                .captures_iter(&cap[1])
                .map(|r| {
                    let start: u32 = r[1].parse().unwrap_or(0);
                    let end: u32 = r
                        .get(2)
                        .map_or(start, |m| m.as_str().parse().unwrap_or(0));
                    (start, end)
                })
                .collect();
            let after = &paragraph[whole.end()..];
            let word = backticked
                .captures(after)
                .and_then(|b| word.find(&b[1]).map(|w| w.as_str().to_string()));
            all.push(Citation {
                place: format!(
                    "{name}:{}",
                    first_line + before.matches('\n').count()
                ),
                text: whole
                    .as_str()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
                lesson: linked.or(own),
                ranges,
                word,
            });
        }
    }
    all
}

/// The numbered steps of a transcript (an insta snapshot, header included),
/// by number.
fn transcript_steps(snapshot: &str) -> std::collections::BTreeMap<u32, String> {
    let step = Regex::new(r"^\s{0,3}([0-9]{1,4})  ").unwrap();
    snapshot
        .lines()
        .skip(3)
        .filter_map(|line| {
            let number = step.captures(line)?[1].parse().ok()?;
            Some((number, line.to_string()))
        })
        .collect()
}

/// What is wrong with a citation of `snapshot`'s steps, if anything.
fn citation_problem(citation: &Citation, snapshot: &str) -> Option<String> {
    let steps = transcript_steps(snapshot);
    let last = steps.keys().next_back().copied().unwrap_or(0);
    let mut cited = Vec::new();
    for &(start, end) in &citation.ranges {
        if start > end {
            return Some(format!("the range {start} to {end} runs backwards"));
        }
        for number in [start, end] {
            if !steps.contains_key(&number) {
                return Some(format!(
                    "there is no step {number} (the transcript has steps 1 to {last})"
                ));
            }
        }
        cited.extend(steps.range(start..=end).map(|(_, line)| line.as_str()));
    }
    let word = citation.word.as_deref()?;
    let whole_word =
        Regex::new(&format!(r"\b{}\b", regex::escape(word))).unwrap();
    if cited.iter().any(|line| whole_word.is_match(line)) {
        return None;
    }
    Some(format!("`{word}` is not on the cited step(s):\n{}", cited.join("\n")))
}

/// Checks every step citation of one chapter against the transcripts that
/// `transcript(lesson)` returns (the snapshot's text, header included), and
/// returns what is wrong, one message per citation.
fn wrong_citations(
    name: &str,
    text: &str,
    transcript: &dyn Fn(u32) -> Option<String>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for citation in step_citations(name, text) {
        let Some(lesson) = citation.lesson else {
            wrong.push(format!(
                "{}: {:?}: which lesson? Link its chapter before the citation, in the same paragraph",
                citation.place, citation.text
            ));
            continue;
        };
        let Some(snapshot) = transcript(lesson) else {
            wrong.push(format!(
                "{}: {:?}: lesson {lesson} has no demo transcript",
                citation.place, citation.text
            ));
            continue;
        };
        if let Some(why) = citation_problem(&citation, &snapshot) {
            wrong.push(format!(
                "{}: {:?} (lesson {lesson}): {why}",
                citation.place, citation.text
            ));
        }
    }
    wrong
}

fn demo_transcript(lesson: u32) -> Option<String> {
    fs::read_to_string(
        root().join(format!("tests/snapshots/lesson_{lesson:02}__demo.snap")),
    )
    .ok()
}

#[test]
fn every_step_citation_names_a_step_that_shows_what_it_says() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut cited = std::collections::BTreeSet::new();
    for (chapter, text) in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        let citations = step_citations(&name, &text);
        checked += citations.len();
        cited.extend(citations.iter().filter_map(|c| c.lesson));
        wrong.extend(wrong_citations(&name, &text, &demo_transcript));
    }
    // Every lesson's chapter points at steps of its transcript: if a lesson
    // has none, the pattern above has stopped matching the way the book
    // writes citations, and this test would pass while checking nothing.
    for entry in
        fs::read_dir(root().join("tests/snapshots")).expect("tests/snapshots")
    {
        let name =
            entry.expect("entry").file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("lesson_")
            .and_then(|n| n.strip_suffix("__demo.snap"))
        {
            let n: u32 = n.parse().expect("a lesson number");
            assert!(
                cited.contains(&n),
                "no step of {name} is cited: is the citation pattern still right?"
            );
        }
    }
    eprintln!("{checked} step citations checked");
    assert!(
        wrong.is_empty(),
        "{} wrong step citations:\n{}",
        wrong.len(),
        wrong.join("\n\n")
    );
}

/// The check above reads one word after a citation; most citations name
/// none ("steps 32 to 39"), and a demo that gains a step shifts every later
/// number without a word changing. So every citation is also listed with
/// the step lines it points at, as a reviewed snapshot: when a demo
/// changes what a cited step shows, or a citation changes, this test fails
/// until a person has checked that each sentence still points where it
/// means to, and accepted the new list.
#[test]
fn every_cited_step_is_reviewed() {
    let mut listing = String::new();
    for (chapter, text) in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        for citation in step_citations(&name, &text) {
            let Some(snapshot) = citation.lesson.and_then(demo_transcript)
            else {
                continue;
            };
            let steps = transcript_steps(&snapshot);
            listing.push_str(&format!(
                "{name}: {:?} of lesson {}\n",
                citation.text,
                citation.lesson.unwrap_or(0)
            ));
            for &(start, end) in &citation.ranges {
                for line in steps.range(start..=end).map(|(_, line)| line) {
                    listing.push_str(&format!(
                        "    {}\n",
                        line.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                }
            }
        }
    }
    snapshot!("book__cited_steps", listing);
}

#[test]
fn the_step_check_catches_a_wrong_citation() {
    let snapshot = "---\nsource: made up\n---\n\
step  server                                        client
   1  socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC) = fd 3
   2  listen(fd 3, 5) = 0
      # a note that names accept, which is not a step
   3  accept(fd 3) = fd 4  (peer 127.0.0.1:[PORT])
   4  recv(fd 4, 4096) = -1 EAGAIN  (Resource temporarily unavailable; ErrorKind::WouldBlock)
";
    let transcript = |lesson: u32| (lesson == 2).then(|| snapshot.to_string());
    let check =
        |name: &str, text: &str| wrong_citations(name, text, &transcript);

    // Right: the step exists and shows the call named right after it.
    assert_eq!(
        check("lesson-02.md", "- **Step 3**: `accept` returns fd 4."),
        Vec::<String>::new()
    );
    assert!(
        check("lesson-02.md", "The timeout (steps 3\nto 4, and 1): `EAGAIN`.")
            .is_empty()
    );
    assert!(
        check("lesson-02.md", "- **Steps 3 and 4**: `EAGAIN`, as `recv` says.")
            .is_empty()
    );
    // Wrong: the call is on another step, or only in a note.
    assert_eq!(
        check("lesson-02.md", "- **Step 4**: `accept` returns fd 4.").len(),
        1
    );
    assert_eq!(
        check("lesson-02.md", "- **Step 2**: `accept(fd 3)` returns fd 4.")
            .len(),
        1
    );
    assert!(
        check("lesson-02.md", "Step 1 makes no `recv`.").is_empty(),
        "not right after: not checked"
    );
    assert_eq!(check("lesson-02.md", "step 1, `recv` fails.").len(), 1);
    // Wrong: no such step, or a range that runs backwards.
    assert_eq!(check("lesson-02.md", "the end (step 5).").len(), 1);
    assert_eq!(check("lesson-02.md", "steps 1 and 2, 4 and 9").len(), 1);
    assert_eq!(check("lesson-02.md", "steps 4 to 3").len(), 1);
    assert_eq!(check("lesson-02.md", "steps 3–5").len(), 1);

    // Which lesson: the chapter's own, unless a lesson's chapter is linked
    // earlier in the same paragraph; outside lesson chapters, a link is
    // required.
    assert!(
        check(
            "article-errata.md",
            "[Lesson 2](lesson-02.md#x), step 3: `accept`."
        )
        .is_empty()
    );
    assert_eq!(
        check("article-errata.md", "Lesson 2, step 3: `accept`.").len(),
        1
    );
    assert_eq!(
        check(
            "article-errata.md",
            "[Lesson 2](lesson-02.md)\n\nStep 3: `accept`."
        )
        .len(),
        1
    );
    assert_eq!(
        check("lesson-05.md", "As in step 3.").len(),
        1,
        "lesson 5 has no transcript here"
    );
    assert!(
        check("lesson-05.md", "As [lesson 2](lesson-02.md) shows (step 3).")
            .is_empty()
    );
    assert_eq!(
        check("lesson-05.md", "- [lesson 2](lesson-02.md)\n- step 3").len(),
        1,
        "a list item is a paragraph"
    );
    // Code blocks are not read.
    assert!(check("lesson-02.md", "```text\nstep 99\n```").is_empty());

    // The forms the book writes, parsed.
    let ranges = |text: &str| {
        step_citations("lesson-02.md", text)
            .into_iter()
            .map(|c| c.ranges)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ranges("**Steps 1 and 2, 30 and 31.**"),
        vec![vec![(1, 1), (2, 2), (30, 30), (31, 31)]]
    );
    assert_eq!(
        ranges("(steps 10 to 12, and 16)"),
        vec![vec![(10, 12), (16, 16)]]
    );
    assert_eq!(
        ranges("(steps 13, 17, 57)"),
        vec![vec![(13, 13), (17, 17), (57, 57)]]
    );
    assert_eq!(
        ranges("**Step 79 and after**; steps 4-6 and 8–9"),
        vec![vec![(79, 79)], vec![(4, 6), (8, 9)]]
    );
    assert_eq!(
        ranges("step by step, in steps of 2"),
        Vec::<Vec<(u32, u32)>>::new()
    );
}
