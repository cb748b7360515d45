#!/usr/bin/env python3
"""mdBook preprocessor run before mdbook-gettext (TRANSLATING.md).

It prepares a chapter, after its includes are expanded, for translation:

- Every fenced code block gets an `<!-- i18n:skip -->` line in front of it,
  so its text (listings, transcripts, diffs, shell steps) never becomes a
  message: mdbook-xgettext would otherwise extract a block's string
  literals and comments, and a whole transcript as one message.
- Every ATX heading without an explicit id gets `{#id}`, the id mdBook
  would derive from its English text, so a translated heading keeps the
  English anchor and `lesson-07.md#the-4-tuple-...` works in both editions.

- A Markdown file included as prose (`{{#include bench/results.md}}`, which
  `just bench` writes) is generated, not written: the extraction leaves it
  out, so a new bench run does not change the messages, and the Chinese
  edition shows it as it is. The same script runs twice for this, once
  before mdBook's `links` preprocessor (argument `mark`) to mark where such
  an include starts and ends, and once after it.

The English HTML build is left as it is: it needs none of this. The
extraction (renderer xgettext) and every translated build get it.
"""

import json
import re
import sys

FENCE = re.compile(r"^( {0,3}(?:> ?)*\s*)(`{3,}|~{3,})")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
HAS_ID = re.compile(r"\{[^}]*#[^}]*\}\s*$")
MD_INCLUDE = re.compile(r"^\{\{#include [^}]*\.md\}\}\s*$")
BEGIN = "<!-- i18n-prep: generated -->"
END = "<!-- i18n-prep: end of generated -->"


def heading_id(text):
    """mdBook's id_from_content, applied to the heading's rendered text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("\\", "")  # escapes (`\*` renders as `*`)
    out = []
    for c in text.strip().lower():
        if c.isalnum() or c in "_-":
            out.append(c)
        elif c.isspace():
            out.append("-")
    return "".join(out)


def mark(content):
    """Wraps each prose include in BEGIN and END lines (before `links`)."""
    out = []
    fence = None
    for line in content.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
        elif fence is not None:
            if m and m.group(2).startswith(fence):
                fence = None
        elif MD_INCLUDE.match(line):
            out += [BEGIN, "", line, "", END]
            continue
        out.append(line)
    return "\n".join(out)


def drop_generated(content):
    return re.sub(
        re.escape(BEGIN) + r".*?" + re.escape(END), "", content, flags=re.S
    )


def prepare(content, renderer):
    if renderer == "xgettext":
        content = drop_generated(content)
    lines = content.split("\n")
    out = []
    fence = None  # the closing fence we are waiting for
    used = set()
    for line in lines:
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(2)
            out.append(m.group(1) + "<!-- i18n:skip -->")
            out.append(line)
            continue
        if fence is not None:
            if m and m.group(2).startswith(fence) and not line[m.end():].strip():
                fence = None
            out.append(line)
            continue
        h = HEADING.match(line)
        if h and not HAS_ID.search(line):
            base = heading_id(h.group(2))
            ident, n = base, 0
            while ident in used:
                n += 1
                ident = f"{base}-{n}"
            used.add(ident)
            line = f"{h.group(1)} {h.group(2)} {{#{ident}}}"
        out.append(line)
    return "\n".join(out)


def walk(items, change):
    for item in items:
        chapter = item.get("Chapter") if isinstance(item, dict) else None
        if chapter is None:
            continue
        chapter["content"] = change(chapter["content"])
        walk(chapter.get("sub_items", []), change)


def main():
    args = sys.argv[1:]
    if args[-2:-1] == ["supports"]:
        sys.exit(0)
    context, book = json.load(sys.stdin)
    renderer = context["renderer"]
    language = context["config"]["book"].get("language", "en")
    if renderer == "xgettext" or language != "en":
        items = book.get("items", book.get("sections", []))
        if args == ["mark"]:
            walk(items, mark)
        else:
            walk(items, lambda text: prepare(text, renderer))
    json.dump(book, sys.stdout)


if __name__ == "__main__":
    main()
