//! The book as it renders: mdBook includes a file's text as it is, so an
//! include inside an indented block (a list item) can end that block at the
//! file's first unindented line and pour the rest of the code into the page
//! as prose. This builds the book and fails when a line of an included
//! source file shows up outside a code block.

use std::fs;
use std::process::Command;

use regex::Regex;

use crate::book::includes;
use crate::support::root;

/// The page's text outside code: `<pre>` blocks and inline `<code>` spans
/// removed, then every tag, with the entities a code line may contain
/// turned back into characters.
fn prose_of(html: &str) -> String {
    let pre = Regex::new(r"(?s)<pre>.*?</pre>").unwrap();
    let code = Regex::new(r"(?s)<code[^>]*>.*?</code>").unwrap();
    let tag = Regex::new(r"<[^>]+>").unwrap();
    let text = pre.replace_all(html, "\n");
    let text = code.replace_all(&text, " ");
    let text = tag.replace_all(&text, " ");
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Lines of a source file that only code would contain: long enough not to
/// be a phrase the prose might quote, and ending as code lines do.
fn code_lines(source: &str) -> Vec<String> {
    source
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 30 && !l.contains("ANCHOR"))
        .filter(|l| l.ends_with(';') || l.ends_with('{') || l.ends_with(','))
        .map(str::to_string)
        .collect()
}

#[test]
fn no_included_code_leaks_out_of_its_block_in_the_built_book() {
    let out = std::env::temp_dir()
        .join(format!("course-book-{}", std::process::id()));
    let built = Command::new("mdbook")
        .arg("build")
        .arg(root().join("book"))
        .arg("-d")
        .arg(&out)
        .output();
    let built = match built {
        Ok(built) => built,
        Err(err) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install mdbook: {err}"
            );
            eprintln!("mdbook is not installed: the built book is not checked");
            return;
        }
    };
    assert!(built.status.success(), "mdbook build failed: {built:?}");
    let mut leaks = Vec::new();
    for inc in includes() {
        if inc.target.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let page =
            out.join(inc.chapter.file_name().unwrap()).with_extension("html");
        let (Ok(html), Ok(source)) =
            (fs::read_to_string(&page), fs::read_to_string(&inc.target))
        else {
            continue;
        };
        let prose = prose_of(&html);
        for line in code_lines(&source) {
            if prose.contains(&line) {
                leaks.push(format!("{}: {line:?}", page.display()));
            }
        }
    }
    let _ = fs::remove_dir_all(&out);
    assert!(leaks.is_empty(), "code outside its block:\n{}", leaks.join("\n"));
}

#[test]
fn the_leak_check_sees_code_in_a_paragraph() {
    let html = "<p>let x = listener.accept().told(|| server(\"accept\"))?;</p>\
                <pre><code>let y = listener.accept().told(|| server(\"y\"))?;</code></pre>";
    let prose = prose_of(html);
    assert!(prose.contains("let x = listener.accept()"));
    assert!(!prose.contains("let y = "));
    let lines = code_lines(
        "    let x = listener.accept().told(|| server(\"accept\"))?;\n    x\n",
    );
    assert_eq!(lines.len(), 1);
}
