//! The book's sequence diagrams are generated, never drawn by hand: each
//! `book/src/wire/lesson-NN.svg` must equal what [`svg`] draws from the
//! reviewed snapshot `tests/snapshots/lesson_NN__wire.snap` (the calls of
//! the transcript and the segments the packet socket saw, lesson 18's
//! `beside`). `UPDATE_DIAGRAMS=1 cargo test diagrams` (or `just diagrams`)
//! rewrites them after a snapshot changes. No root needed: this reads
//! files. Two are drawn from a demo's transcript instead: lesson 15's
//! (Unix domain sockets have no wire: the bytes go from each send to the
//! recv that reads them) and lesson 18's (its own watcher's capture).

use std::fmt::Write as _;
use std::fs;

use crate::support::root;

/// The lessons whose conversation has a diagram.
const LESSONS: [u32; 15] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17];

/// Lesson 15's Unix domain sockets have no wire: its diagram is drawn from
/// the demo's transcript alone, the bytes as arrows from each send to the
/// recv they reach ([`flows`]).
const NO_WIRE: u32 = 15;

const WIDTH: usize = 1000;
const SERVER_X: usize = 350;
const CLIENT_X: usize = 650;
const ROW: usize = 18;
const TOP: usize = 50;
/// Where the client's column starts in a transcript line.
const CLIENT_COLUMN: usize = 52;
/// The most characters of a call shown beside a lane (11 px monospace).
const LABEL: usize = 50;

enum Row {
    Section(String),
    Call { step: String, client: bool, text: String },
    Note { client: bool, text: String },
    Segment { from_client: bool, label: String },
}

/// The names of the two lanes, from the transcript's header line
/// (`step  server  client`); a snapshot that starts mid-way has none.
fn lanes(snapshot: &str) -> (String, String) {
    let header = snapshot.lines().skip(3).find(|l| l.starts_with("step "));
    let names: Vec<&str> =
        header.map_or(vec![], |h| h.split_whitespace().skip(1).collect());
    match names[..] {
        [server, client] => (server.to_string(), client.to_string()),
        _ => ("server".to_string(), "client".to_string()),
    }
}

fn rows(snapshot: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    // The three header lines of the snapshot file, then the transcript.
    for line in snapshot.lines().skip(3) {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if text.is_empty() || text.starts_with("step ") {
            continue;
        }
        if let Some(title) =
            text.strip_prefix("-- ").and_then(|t| t.strip_suffix(" --"))
        {
            rows.push(Row::Section(title.to_string()));
        } else if let Some(wire) = text.strip_prefix("wire #") {
            // "1 client > server  SYN+ACK  seq 0  ack 1": the connection's
            // number stays, for the lessons with several at once.
            let (number, rest) = wire.split_once(' ').unwrap_or_default();
            let from_client = rest.starts_with("client");
            let label = rest.get(17..).unwrap_or_default();
            let words = label.split_whitespace().collect::<Vec<_>>();
            let label = format!("#{number} {}", words.join(" "));
            rows.push(Row::Segment { from_client, label });
        } else if let Some(note) = text.strip_prefix("# ") {
            let client = indent >= CLIENT_COLUMN;
            rows.push(Row::Note { client, text: note.to_string() });
        } else if let Some((step, call)) = text.split_once("  ") {
            let client =
                line.len() - line[6..].trim_start().len() >= CLIENT_COLUMN;
            let call = call.trim();
            // The detail after the result stays in the transcript.
            let call = call.split_once("  (").map_or(call, |(c, _)| c);
            let text = call.to_string();
            rows.push(Row::Call { step: step.to_string(), client, text });
        }
    }
    rows
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn shorten(text: &str, most: usize) -> String {
    match text.chars().count() > most {
        true => text.chars().take(most - 1).collect::<String>() + "…",
        false => text.to_string(),
    }
}

/// The sequence diagram of one lesson: the server's lane on the left and
/// the client's on the right (as in the transcript), each call on its
/// lane, each segment an arrow from the lane of the side that sent it.
pub fn svg(title: &str, snapshot: &str) -> String {
    draw(title, snapshot, |_| Vec::new())
}

/// Bytes handed from one socket to another: from the call row `from` to
/// the call row `to`.
struct Flow {
    from: usize,
    to: usize,
    label: String,
}

/// A call's descriptor and what it returned: `recv(fd 5, 4096) = 18`.
fn fd_and_count(text: &str) -> Option<(&str, usize)> {
    let fd = text.split_once("(fd ")?.1.split([',', ')']).next()?;
    let count = text.rsplit_once(" = ")?.1.parse().ok()?;
    Some((fd, count))
}

/// Which send each recv read from, section by section: a recv of n bytes
/// takes them from the oldest sends on another descriptor, in order (a
/// stream may hand two sends to one recv).
fn flows(rows: &[Row]) -> Vec<Flow> {
    let mut flows = Vec::new();
    // Each unread send: its row, descriptor, bytes left, label.
    let mut unread: Vec<(usize, String, usize, String)> = Vec::new();
    for (at, row) in rows.iter().enumerate() {
        let Row::Call { text, .. } = row else {
            if let Row::Section(_) = row {
                unread.clear();
            }
            continue;
        };
        let Some((fd, n)) = fd_and_count(text) else { continue };
        if text.starts_with("send") && n > 0 {
            let label = match (n, text.contains("SCM_RIGHTS")) {
                (1, true) => "1 byte and a descriptor".to_string(),
                (1, false) => "1 byte".to_string(),
                (n, _) => format!("{n} bytes"),
            };
            unread.push((at, fd.to_string(), n, label));
        } else if text.starts_with("recv") {
            let mut wanted = n;
            while wanted > 0 {
                let Some(i) = unread.iter().position(|u| u.1 != fd) else {
                    break;
                };
                let took = wanted.min(unread[i].2);
                (unread[i].2, wanted) = (unread[i].2 - took, wanted - took);
                let label = unread[i].3.clone();
                flows.push(Flow { from: unread[i].0, to: at, label });
                if unread[i].2 == 0 {
                    unread.remove(i);
                }
            }
        }
    }
    flows
}

/// Lesson 18's own demo as a transcript [`rows`] reads: its two
/// conversations, each call on the lane of its descriptor (the client's is
/// fd 5; the listener and the accepted socket are the server's), each
/// followed by the segments its watcher then read, from the drawings at
/// the end of the demo. The demo has one column for server and client, and
/// reads its packet socket only after each conversation.
fn watched(snapshot: &str) -> String {
    let lines: Vec<&str> = snapshot.lines().collect();
    let mut out = format!("---\n---\n---\nstep  {:<46}client\n", "server");
    // The drawings, one per conversation: "|--- SYN seq 0 ---->|".
    let mut drawings = Vec::new();
    for line in &lines {
        if line.contains("as the watcher saw it") {
            drawings.push(Vec::new());
        }
        let number = drawings.len();
        let Some(drawing) = drawings.last_mut() else { continue };
        let arrow = line.trim().trim_start_matches('|').trim_end_matches('|');
        let (way, rest) = match arrow.get(..4) {
            Some("--- ") => ("client > server", &arrow[4..]),
            Some("<-- ") => ("server > client", &arrow[4..]),
            _ => continue,
        };
        let what = rest.trim_end_matches(['-', '>']).trim_end();
        drawing.push(format!("      wire #{number} {way}  {what}"));
    }
    let mut drawings = drawings.into_iter();
    let mut conversation = false;
    for line in &lines {
        if line.starts_with("-- ") {
            conversation = true;
            out += &format!("{line}\n");
        } else if conversation && line.contains("recvfrom(fd 4") {
            // The watcher's reads: the segments they returned, drawn.
            out += "-- what the watcher read --\n";
            for segment in drawings.next().unwrap_or_default() {
                out += &format!("{segment}\n");
            }
            conversation = false;
        } else if conversation && line.trim_start().starts_with('#') {
            out += &format!("{line}\n"); // a note stays in its column
        } else if conversation && line.len() > 6 {
            let call = line[6..].trim_start();
            let client = call.contains("fd 5");
            let column = if client { CLIENT_COLUMN - 6 } else { 0 };
            out += &format!("{}  {}{call}\n", &line[..4], " ".repeat(column));
        }
    }
    out
}

/// Draws the rows of `snapshot`, then the `flows` found in them between
/// the rows of their calls.
fn draw(
    title: &str,
    snapshot: &str,
    flows: impl Fn(&[Row]) -> Vec<Flow>,
) -> String {
    let rows = rows(snapshot);
    // An arrow and its label need more room than a line of text.
    let tall = |row: &Row| match row {
        Row::Segment { .. } => ROW + 6,
        _ => ROW,
    };
    let height = TOP + rows.iter().map(tall).sum::<usize>() + 30;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(w, "<title>{}</title>", escape(title));
    let _ = writeln!(
        w,
        r##"<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#1f5fa8"/></marker></defs>"##
    );
    let _ = writeln!(w, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let (server, client) = lanes(snapshot);
    for (x, name) in [(SERVER_X, server), (CLIENT_X, client)] {
        let _ = writeln!(
            w,
            r#"<text x="{x}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{name}</text>"#
        );
        let _ = writeln!(
            w,
            r##"<line x1="{x}" y1="30" x2="{x}" y2="{}" stroke="#888" stroke-width="2"/>"##,
            height - 10
        );
    }
    let mut y = TOP - ROW;
    // Where each row was drawn, and on which lane, for the flows.
    let mut at = Vec::new();
    for row in &rows {
        y += tall(row);
        let client = matches!(row, Row::Call { client: true, .. });
        at.push((y, if client { CLIENT_X } else { SERVER_X }));
        match row {
            Row::Section(title) => {
                let _ = writeln!(
                    w,
                    r##"<rect x="0" y="{}" width="{WIDTH}" height="{ROW}" fill="#eef2f7"/><text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"##,
                    y - 13,
                    WIDTH / 2,
                    y,
                    escape(&shorten(title, 110))
                );
            }
            Row::Call { step, client, text } => {
                let (x, anchor) = match client {
                    false => (SERVER_X - 8, "end"),
                    true => (CLIENT_X + 8, "start"),
                };
                let _ = writeln!(
                    w,
                    r##"<text x="{x}" y="{y}" text-anchor="{anchor}"><title>step {step}</title>{}</text>"##,
                    escape(&shorten(text, LABEL))
                );
            }
            Row::Note { client, text } => {
                let (x, anchor) = match client {
                    false => (SERVER_X - 8, "end"),
                    true => (CLIENT_X + 8, "start"),
                };
                let _ = writeln!(
                    w,
                    r##"<text x="{x}" y="{y}" text-anchor="{anchor}" fill="#666" font-style="italic"># {}</text>"##,
                    escape(&shorten(text, LABEL - 2))
                );
            }
            Row::Segment { from_client, label } => {
                let (x1, x2) = match from_client {
                    true => (CLIENT_X, SERVER_X),
                    false => (SERVER_X, CLIENT_X),
                };
                let _ = writeln!(
                    w,
                    r##"<line x1="{x1}" y1="{}" x2="{x2}" y2="{}" stroke="#1f5fa8" stroke-width="1.5" marker-end="url(#head)"/><text x="{}" y="{}" text-anchor="middle" fill="#1f5fa8">{}</text>"##,
                    y - 2,
                    y + 8,
                    (SERVER_X + CLIENT_X) / 2,
                    y - 6,
                    escape(label)
                );
            }
        }
    }
    let flows = flows(&rows);
    if !flows.is_empty() {
        let _ = writeln!(
            w,
            r##"<defs><marker id="bytes" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#2e7d32"/></marker></defs>"##
        );
    }
    for flow in flows {
        let ((y1, x1), (y2, x2)) = (at[flow.from], at[flow.to]);
        let (y1, y2) = (y1 - 4, y2 - 4);
        // Between the lanes; or, within one lane (a socketpair's two ends
        // in one column), a bow out towards the middle.
        let path = match x1 == x2 {
            false => format!("M{x1},{y1} L{x2},{y2}"),
            true => format!("M{x1},{y1} C{0},{y1} {0},{y2} {x2},{y2}", x1 + 60),
        };
        // The label a third of the way from the send, so that two sends
        // read by one recv keep their labels apart.
        let (lx, ly) = match x1 == x2 {
            true => (x1 + 50, (y1 + y2) / 2),
            false => ((2 * x1 + x2) / 3, (2 * y1 + y2) / 3 - 4),
        };
        let _ = writeln!(
            w,
            r##"<path d="{path}" fill="none" stroke="#2e7d32" stroke-width="1.5" marker-end="url(#bytes)"/><text x="{lx}" y="{ly}" text-anchor="middle" fill="#2e7d32">{}</text>"##,
            escape(&flow.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[test]
fn diagrams_are_drawn_from_the_wire_snapshots() {
    let update = std::env::var_os("UPDATE_DIAGRAMS").is_some();
    let mut stale = Vec::new();
    for n in LESSONS {
        let snap =
            root().join(format!("tests/snapshots/lesson_{n:02}__wire.snap"));
        let snapshot = fs::read_to_string(&snap).expect("read the snapshot");
        let title = format!("Lesson {n}: the calls and the segments");
        let drawn = svg(&title, &snapshot);
        let path = root().join(format!("book/src/wire/lesson-{n:02}.svg"));
        if fs::read_to_string(&path).ok().as_deref() == Some(drawn.as_str()) {
            continue;
        }
        if update {
            fs::create_dir_all(path.parent().expect("book/src/wire"))
                .expect("create book/src/wire");
            fs::write(&path, drawn).expect("write the diagram");
        } else {
            stale.push(path.display().to_string());
        }
    }
    let snap = root().join("tests/snapshots/lesson_15__demo.snap");
    let snapshot = fs::read_to_string(&snap).expect("read the snapshot");
    let title = format!("Lesson {NO_WIRE}: the calls and the bytes");
    let drawn = draw(&title, &snapshot, flows);
    let path = root().join(format!("book/src/wire/lesson-{NO_WIRE:02}.svg"));
    if fs::read_to_string(&path).ok().as_deref() != Some(drawn.as_str()) {
        match update {
            true => fs::write(&path, drawn).expect("write the diagram"),
            false => stale.push(path.display().to_string()),
        }
    }
    let snap = root().join("tests/snapshots/lesson_18__demo.snap");
    let snapshot = fs::read_to_string(&snap).expect("read the snapshot");
    let title = "Lesson 18: the calls, then the segments the watcher read";
    let drawn = svg(title, &watched(&snapshot));
    let path = root().join("book/src/wire/lesson-18.svg");
    if fs::read_to_string(&path).ok().as_deref() != Some(drawn.as_str()) {
        match update {
            true => fs::write(&path, drawn).expect("write the diagram"),
            false => stale.push(path.display().to_string()),
        }
    }
    assert!(
        stale.is_empty(),
        "these diagrams differ from what their snapshots draw \
         (UPDATE_DIAGRAMS=1 cargo test diagrams rewrites them): {stale:?}"
    );
}
