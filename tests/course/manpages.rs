//! The book's quotations of the manual, checked against the manual.
//!
//! The convention, for whoever writes a chapter:
//!
//! - A man page is cited as an inline code span `man N page`, for example
//!   `man 7 tcp` (a line may break inside it). Every cited page must exist.
//! - Words in double quotes that come after a citation, in the same
//!   sentence, are quoted from that page: `man 2 listen` says the backlog is
//!   "the queue length for completely established sockets". Each quotation
//!   must appear in the page word for word; `...` or `…` inside it stands for
//!   words left out, and each piece must appear, in order.
//! - A sentence that cites a page may not hold a quotation *before* its first
//!   citation: the test could not tell which page it came from. Cite first,
//!   then quote; a quote in a later sentence cites its page again.
//! - `name(N)` outside quotes and code, and `man N page` outside a code span,
//!   are refused: write the citation in the one form the test finds.
//!
//! Pages are rendered with `man -P cat` in the C locale at a width of 1000
//! columns (so groff breaks, and hyphenates, almost no line), and both sides
//! are compared after the same normalisation: typographic quotes, hyphens
//! and dashes become ASCII, a hyphen at a line break joins its word, and
//! runs of white space become one space. The first letter of each piece may
//! differ in case, so a quotation can start a sentence of the book.
//!
//! The manual is Debian's `manpages` and `manpages-dev` (the Linux
//! man-pages project) plus `man-db`; `.ci/run` installs them. Without them
//! these tests fail, in CI and here, with a message saying what to install.

use std::collections::BTreeMap;
use std::process::Command;

use regex::Regex;

use crate::book::{chapters, paragraphs};

/// One quotation or bare citation found in the book.
#[derive(Debug, Clone, PartialEq)]
struct Quote {
    /// `chapter.md:line`.
    place: String,
    /// Section and page, e.g. `("7", "tcp")`.
    section: String,
    page: String,
    /// The quoted words; `None` when the citation only names the page.
    words: Option<String>,
}

/// A citation or quotation written against the convention.
type Problem = String;

/// Splits a paragraph into runs of text and inline code spans, in order;
/// `true` marks a code span (without its backticks).
fn spans(paragraph: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let mut rest = paragraph;
    while let Some(open) = rest.find('`') {
        let ticks = rest[open..].chars().take_while(|&c| c == '`').count();
        let fence = &rest[open..open + ticks];
        let Some(close) = rest[open + ticks..].find(fence) else { break };
        out.push((false, &rest[..open]));
        out.push((true, &rest[open + ticks..open + ticks + close]));
        rest = &rest[open + ticks + close + ticks..];
    }
    out.push((false, rest));
    out
}

/// The citation a code span makes, if it is `man N page`.
fn citation(code: &str) -> Option<(String, String)> {
    let re =
        Regex::new(r"^man\s+([1-8][a-z]*)\s+([A-Za-z0-9_.:+-]+)$").unwrap();
    let code = code.trim();
    re.captures(code).map(|c| (c[1].to_string(), c[2].to_string()))
}

/// Whether the text just before a `.`, `!` or `?` makes it an abbreviation
/// rather than the end of a sentence.
fn abbreviation(before: &str) -> bool {
    ["e.g", "i.e", "etc", "vs", "cf"]
        .iter()
        .any(|a| before.to_ascii_lowercase().ends_with(a))
}

/// Finds every quotation and citation in one paragraph; `place` names the
/// paragraph's first line, `name` the chapter.
fn scan(
    name: &str,
    first_line: usize,
    paragraph: &str,
) -> (Vec<Quote>, Vec<Problem>) {
    let bare_man = Regex::new(r"\bman\s+[1-8][a-z]*\s+[a-z]").unwrap();
    let bare_ref = Regex::new(r"\b[a-z_][a-z0-9_-]*\([1-8]\)").unwrap();
    let mut quotes = Vec::new();
    let mut problems = Vec::new();
    // Where the current sentence stands: the page it cited last, and
    // whether a quotation came before any citation.
    let mut cited: Option<(String, String)> = None;
    let mut quoted_uncited: Option<String> = None;
    // An open quotation: its words so far and where it started.
    let mut open: Option<(String, usize)> = None;
    let mut line = first_line;
    for (code, text) in spans(paragraph) {
        if code {
            if let Some((words, _)) = open.as_mut() {
                words.push_str(text);
            } else if let Some((section, page)) = citation(text) {
                if let Some(q) = quoted_uncited.take() {
                    problems.push(format!(
                        "{name}:{line}: \"{q}\" comes before the citation \
                         `man {section} {page}` in its sentence: cite first"
                    ));
                }
                quotes.push(Quote {
                    place: format!("{name}:{line}"),
                    section: section.clone(),
                    page: page.clone(),
                    words: None,
                });
                cited = Some((section, page));
            }
            line += text.matches('\n').count();
            continue;
        }
        // The span's text outside quotations, for the forms refused above.
        let mut outside = String::new();
        let span_line = line;
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        for (i, &(at, c)) in chars.iter().enumerate() {
            if c == '\n' {
                line += 1;
            }
            if open.is_some() || c == '"' {
                outside.push(if c == '\n' { '\n' } else { ' ' });
            } else {
                outside.push(c);
            }
            if let Some((words, start)) = open.as_mut() {
                if c == '"' {
                    let words = std::mem::take(words);
                    let start = *start;
                    open = None;
                    match &cited {
                        Some((section, page)) => quotes.push(Quote {
                            place: format!("{name}:{start}"),
                            section: section.clone(),
                            page: page.clone(),
                            words: Some(words),
                        }),
                        None => {
                            quoted_uncited.get_or_insert(words);
                        }
                    }
                } else {
                    words.push(c);
                }
                continue;
            }
            if c == '"' {
                open = Some((String::new(), line));
                continue;
            }
            let ends = matches!(c, '.' | '!' | '?')
                && chars.get(i + 1).is_none_or(|&(_, n)| n.is_whitespace())
                && !abbreviation(&text[..at]);
            if ends {
                cited = None;
                quoted_uncited = None;
            }
        }
        for m in
            bare_man.find_iter(&outside).chain(bare_ref.find_iter(&outside))
        {
            let at = span_line + outside[..m.start()].matches('\n').count();
            problems.push(format!(
                "{name}:{at}: `{}` outside a code span: write the citation \
                 as `man N page`",
                m.as_str()
            ));
        }
    }
    if let Some((words, start)) = open {
        problems.push(format!("{name}:{start}: unclosed quotation \"{words}"));
    }
    (quotes, problems)
}

/// Every quotation and citation in the book, and the convention's problems.
fn book_quotes() -> (Vec<Quote>, Vec<Problem>) {
    let mut quotes = Vec::new();
    let mut problems = Vec::new();
    for (path, text) in chapters() {
        let name = path
            .strip_prefix(crate::support::root().join("book/src"))
            .unwrap_or(&path)
            .display()
            .to_string();
        for (first_line, paragraph) in paragraphs(&text) {
            // A heading names things (`## listen(5) is ...`); it quotes
            // and cites nothing.
            if paragraph.starts_with('#') {
                continue;
            }
            let (q, p) = scan(&name, first_line, &paragraph);
            quotes.extend(q);
            problems.extend(p);
        }
    }
    (quotes, problems)
}

/// Text as the comparison sees it: ASCII punctuation, hyphenated line
/// breaks joined, no Markdown emphasis, white space collapsed.
fn normalize(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // An overstruck character (bold or underline for a terminal).
            _ if chars.peek() == Some(&'\u{8}') => {
                chars.next();
            }
            '\u{ad}' => {}
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2212}' => {
                s.push('-')
            }
            '\u{2014}' => s.push_str("--"),
            '\u{2018}' | '\u{2019}' => s.push('\''),
            '\u{201c}' | '\u{201d}' => s.push('"'),
            '\u{2026}' => s.push_str("..."),
            '*' | '`' => {}
            c => s.push(c),
        }
    }
    let joined = Regex::new(r"([A-Za-z])-\n\s*([a-z])").unwrap();
    let s = joined.replace_all(&s, "$1-$2");
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Checks one quotation against a normalised page; the error says which
/// piece is missing.
fn check_quote(page_text: &str, words: &str) -> Result<(), String> {
    let mut from = 0;
    let words = normalize(words);
    for piece in words.split("...").map(str::trim).filter(|p| !p.is_empty()) {
        let mut found = None;
        let first = piece.chars().next().unwrap();
        let rest = &piece[first.len_utf8()..];
        for variant in [first.to_ascii_lowercase(), first.to_ascii_uppercase()]
        {
            let candidate = format!("{variant}{rest}");
            if let Some(at) = page_text[from..].find(&candidate) {
                let end = from + at + candidate.len();
                found = Some(found.map_or(end, |e: usize| e.min(end)));
            }
        }
        match found {
            Some(end) => from = end,
            None => return Err(format!("not in the page: \"{piece}\"")),
        }
    }
    Ok(())
}

/// The page rendered and normalised, or why it could not be.
fn render(section: &str, page: &str) -> Result<String, String> {
    let output = Command::new("man")
        .args(["-P", "cat", section, page])
        .env("LC_ALL", "C")
        .env("MANWIDTH", "1000")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .env_remove("MANOPT")
        .env_remove("MAN_KEEP_FORMATTING")
        .output()
        .map_err(|e| format!("cannot run man: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || text.trim().is_empty() {
        return Err(format!(
            "no page: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(normalize(&text))
}

/// Fails with what to install unless `man` and the Linux man pages are here.
fn require_manual() {
    let probe = render("7", "tcp").and_then(|_| render("2", "listen"));
    if let Err(why) = probe {
        panic!(
            "the book's man-page quotations need the manual ({why}); install \
             it with `apt-get install -y man-db manpages manpages-dev` \
             (.ci/run does this in CI)"
        );
    }
}

#[test]
fn every_cited_man_page_exists_and_contains_what_the_book_quotes() {
    require_manual();
    let (quotes, mut problems) = book_quotes();
    let quoted = quotes.iter().filter(|q| q.words.is_some()).count();
    eprintln!("{} citations, {quoted} of them quotations", quotes.len());
    assert!(quoted >= 10, "only {quoted} quotations: is the scanner broken?");
    let mut pages: BTreeMap<(String, String), Result<String, String>> =
        BTreeMap::new();
    for q in &quotes {
        let key = (q.section.clone(), q.page.clone());
        let page =
            pages.entry(key).or_insert_with(|| render(&q.section, &q.page));
        let cite = format!("`man {} {}`", q.section, q.page);
        match (page, &q.words) {
            (Err(why), _) => {
                problems.push(format!("{}: {cite}: {why}", q.place))
            }
            (Ok(text), Some(words)) => {
                if let Err(why) = check_quote(text, words) {
                    problems.push(format!("{}: {cite}: {why}", q.place));
                }
            }
            (Ok(_), None) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with man-page citations:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_wrong_quotation_is_caught() {
    require_manual();
    let recv = render("2", "recv").unwrap();
    // The words lesson 4 once gave for MSG_WAITALL: not recv(2)'s.
    let wrong = "do not return until the buffer is full";
    assert_eq!(
        check_quote(&recv, wrong),
        Err(format!("not in the page: \"{wrong}\""))
    );
    let right = "This flag requests that the operation block until the full \
                 request is satisfied";
    assert_eq!(check_quote(&recv, right), Ok(()));
    // Pieces around an ellipsis must all be there, in order.
    let ordered = "block until the full request ... if a signal is caught";
    assert_eq!(check_quote(&recv, ordered), Ok(()));
    let reversed = "if a signal is caught ... block until the full request";
    assert!(check_quote(&recv, reversed).is_err());
    // A page that does not exist.
    assert!(render("7", "no-such-page-here").is_err());
}

#[test]
fn the_scanner_ties_each_quotation_to_its_page() {
    let text = "Before: \"not a quote\". `man 2 recv`: \"block until\nthe \
                full request\". Then (`man 7\ntcp`, \"stream-oriented\"), \
                e.g. \"reliable\". No page here: \"free words\". And `man 2 \
                listen`, bare.";
    let (quotes, problems) = scan("x.md", 1, text);
    assert_eq!(problems, Vec::<String>::new());
    let got: Vec<(&str, &str, Option<&str>)> = quotes
        .iter()
        .map(|q| (q.section.as_str(), q.page.as_str(), q.words.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("2", "recv", None),
            ("2", "recv", Some("block until\nthe full request")),
            ("7", "tcp", None),
            ("7", "tcp", Some("stream-oriented")),
            ("7", "tcp", Some("reliable")),
            ("2", "listen", None),
        ]
    );
}

#[test]
fn the_scanner_refuses_what_it_cannot_attribute() {
    let (_, problems) = scan(
        "x.md",
        1,
        "It is \"silently capped\" (`man 2 listen`). See listen(2) or man 7 \
         tcp.",
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].contains("before the citation"));
    assert!(
        problems[1].contains("listen(2)") || problems[2].contains("listen(2)")
    );
}

#[test]
fn normalising_joins_hyphenated_breaks_and_ascii_punctuation() {
    assert_eq!(
        normalize(
            "a non\u{2010}\n   blocking \u{201c}socket\u{201d}\tis  *fine*"
        ),
        "a non-blocking \"socket\" is fine"
    );
}
