//! Every "Try it yourself" step of the book, run as a reader would type it.
//!
//! A step is a fenced shell block with a one-line HTML comment before it,
//! which the built book does not show; a comment with no block after it is
//! something the reader does in a terminal (Ctrl-C) or looks for there:
//!
//! ```text
//! <!-- try: port 8001 8101 -->                the chapter's ports (below)
//! <!-- try: A start wait="Listening on" -->   terminal A, left running
//! <!-- try: B input="hello\n\n" expect="Reply: hello" -->
//! <!-- try: A expect="closed the connection" -->   A's output, so far
//! <!-- try: A ctrl-c expect="..." -->         Ctrl-C in terminal A
//! <!-- try: C status=1 expect="Address already in use" -->
//! <!-- try: C needs=nc -->                    uses a tool CI installs
//! <!-- try: A type="\n" -->                   Enter, typed into A's program
//! <!-- try: C match="LISTEN\s+2\s+1" -->        a regular expression
//! <!-- try: A ctrl-c running expect="..." --> Ctrl-C, and it runs on
//! <!-- try: A done -->                        A's program has ended
//! <!-- try: A lacks="error:" -->              a text it must not print
//! ```
//!
//! A block runs as one `bash` script from the repository root, so it is
//! exactly what the reader pastes. `expect` (repeatable) and `wait` are
//! texts the output must contain within `within` seconds (default 10);
//! `status` is the exit status (default 0). Each port a chapter's steps use
//! is replaced by a free one, so the test never depends on a fixed port or
//! on a TIME-WAIT left by another test; every process a step started is
//! stopped at the end, passed or failed. Every shell block in a "Try it
//! yourself" section must be a step: the prose cannot promise what no test
//! ran. An appendix whose steps are under another heading names it
//! (`try_chapter_section`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::book::chapters;
use crate::support::{bin, root};

/// How long a step may take unless it says otherwise.
const WITHIN: Duration = Duration::from_secs(10);

/// One thing to do in a terminal.
#[derive(Debug, Clone, Default, PartialEq)]
struct Step {
    /// Line of the chapter where the step's comment is, for messages.
    line: usize,
    terminal: String,
    /// The shell block; empty for an action on a running terminal.
    script: String,
    start: bool,
    ctrl_c: bool,
    wait: Option<String>,
    input: String,
    /// Typed into the terminal's running program (its stdin stays open).
    typed: Option<String>,
    expect: Vec<String>,
    status: i32,
    within: Duration,
    needs: Vec<String>,
    /// With `ctrl-c`: the program goes on after it (a graceful shutdown
    /// that waits for a client), instead of having to end.
    running: bool,
    /// Wait until the terminal's program has ended (its prompt is back).
    done: bool,
    /// Texts its output must not contain (checked once `expect` holds).
    lacks: Vec<String>,
}

/// The steps of a chapter's "Try it yourself" section, and its port.
#[derive(Debug, Default)]
struct Section {
    ports: Vec<u16>,
    steps: Vec<Step>,
}

/// Reads `key="value"` and bare words from a `<!-- try: ... -->` comment.
fn attributes(text: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut found = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(_) = chars.peek() else { break };
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            found.push((key, None));
            continue;
        }
        chars.next();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(c @ ('"' | '\\')) => value.push(c),
                        // A regular expression's \s, \d...: kept as is.
                        Some(other) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => return Err("a value ends in \\".into()),
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("unclosed quote after {key}="));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        found.push((key, Some(value)));
    }
    Ok(found)
}

fn parse_step(comment: &str, line: usize) -> Result<Step, String> {
    let attrs = attributes(comment)?;
    let mut attrs = attrs.into_iter();
    let Some((terminal, None)) = attrs.next() else {
        return Err("a step starts with its terminal's name".into());
    };
    let mut step = Step { line, terminal, within: WITHIN, ..Step::default() };
    for (key, value) in attrs {
        match (key.as_str(), value) {
            ("start", None) => step.start = true,
            ("ctrl-c", None) => step.ctrl_c = true,
            ("wait", Some(v)) => step.wait = Some(v),
            ("input", Some(v)) => step.input = v,
            ("type", Some(v)) => step.typed = Some(v),
            ("match", Some(v)) => step.expect.push(format!("~{v}")),
            ("expect", Some(v)) => step.expect.push(v),
            ("status", Some(v)) => {
                step.status = v.parse().map_err(|_| format!("status={v}"))?
            }
            ("within", Some(v)) => {
                let secs: f64 = v.parse().map_err(|_| format!("within={v}"))?;
                step.within = Duration::from_secs_f64(secs);
            }
            ("needs", Some(v)) => step.needs.push(v),
            ("running", None) => step.running = true,
            ("done", None) => step.done = true,
            ("lacks", Some(v)) => step.lacks.push(v),
            (key, _) => return Err(format!("unknown attribute {key:?}")),
        }
    }
    Ok(step)
}

/// The "Try it yourself" section of a chapter, or `None` if it has none.
fn section(text: &str) -> Result<Option<Section>, String> {
    section_under(text, "## Try it yourself")
}

/// The steps of the section under `heading` (a whole `## ...` line).
fn section_under(text: &str, heading: &str) -> Result<Option<Section>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == heading) else {
        return Ok(None);
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut found = Section::default();
    let mut pending: Option<Step> = None;
    let mut i = start + 1;
    while i < end {
        let line = lines[i].trim();
        if let Some(comment) =
            line.strip_prefix("<!-- try:").and_then(|l| l.strip_suffix("-->"))
        {
            if let Some(step) = pending.take() {
                found.steps.push(step);
            }
            let comment = comment.trim();
            if let Some(ports) = comment.strip_prefix("port ") {
                for port in ports.split_whitespace() {
                    found.ports.push(port.parse().map_err(|_| {
                        format!("line {}: port {port:?}", i + 1)
                    })?);
                }
            } else {
                pending = Some(
                    parse_step(comment, i + 1)
                        .map_err(|why| format!("line {}: {why}", i + 1))?,
                );
            }
        } else if line.starts_with("```sh") || line.starts_with("```bash") {
            let close = lines[i + 1..end]
                .iter()
                .position(|l| l.trim() == "```")
                .ok_or(format!("line {}: unclosed block", i + 1))?;
            let script = lines[i + 1..i + 1 + close].join("\n");
            let Some(mut step) = pending.take() else {
                return Err(format!(
                    "line {}: a shell block with no <!-- try: ... --> step: \
                     every command the section shows must be run by the test",
                    i + 1
                ));
            };
            step.script = script;
            found.steps.push(step);
            i += close + 1;
        } else if !line.is_empty()
            && let Some(step) = pending.take()
        {
            found.steps.push(step);
        }
        i += 1;
    }
    if let Some(step) = pending.take() {
        found.steps.push(step);
    }
    Ok(Some(found))
}

/// A terminal's program, left running, and everything it printed so far.
struct Running {
    child: Child,
    /// Its input, kept open for a program left running, so the reader can
    /// type into it later; closed (end of input) for one that must finish.
    stdin: Option<std::process::ChildStdin>,
    output: Arc<Mutex<Vec<u8>>>,
    /// Whether its output pipe has reached its end (1) or not (0).
    closed: Arc<AtomicUsize>,
}

impl Running {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Ctrl-C: SIGINT to the whole process group, as a terminal sends it.
    fn interrupt(&mut self) {
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGINT) };
    }

    fn kill(&mut self) {
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Runs a chapter's steps in order; `Err` says which step did what.
struct Reader {
    chapter: String,
    /// Each port the chapter names, and the free one used instead.
    ports: Vec<(u16, u16)>,
    shim: PathBuf,
    terminals: HashMap<String, Running>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        for running in self.terminals.values_mut() {
            running.kill();
        }
    }
}

impl Reader {
    /// The text with the chapter's port replaced by the free one.
    fn ported(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (from, to) in &self.ports {
            text = text.replace(&from.to_string(), &to.to_string());
        }
        text
    }

    fn spawn(&self, step: &Step) -> Running {
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(self.ported(&step.script))
            .current_dir(root())
            .env("PATH", path_with(&self.shim))
            .stdin(Stdio::piped());
        // One pipe for stdout and stderr, as one terminal shows both: the
        // order of what the program printed is kept.
        let (reader, writer) = std::io::pipe().expect("pipe");
        command.stdout(writer.try_clone().expect("dup pipe")).stderr(writer);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("run bash");
        // The parent's copies of the writing end must go, or the reader
        // never sees the end of the output.
        drop(command);
        let output = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicUsize::new(0));
        {
            let output = Arc::clone(&output);
            let closed = Arc::clone(&closed);
            thread::spawn(move || {
                let mut stream = reader;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                closed.store(1, Ordering::SeqCst);
            });
        }
        let mut stdin = child.stdin.take().unwrap();
        let mut kept = None;
        if step.start {
            // Left running: what the reader types later goes in here.
            let _ = stdin.write_all(step.input.as_bytes());
            kept = Some(stdin);
        } else {
            let input = step.input.clone().into_bytes();
            // Input goes in, then end of input, as when the reader is done
            // typing (Ctrl-D); a program that does not read it is fine.
            thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        Running { child, stdin: kept, output, closed }
    }

    /// Waits until `running` printed every text of `wanted`, or `within`.
    fn expect(
        &self,
        running: &Running,
        wanted: &[String],
        within: Duration,
    ) -> Result<(), String> {
        let until = Instant::now() + within;
        loop {
            let text = running.text();
            let missing: Vec<String> = wanted
                .iter()
                .map(|w| self.ported(w))
                .filter(|w| match w.strip_prefix("~") {
                    Some(re) => {
                        !Regex::new(re).is_ok_and(|re| re.is_match(&text))
                    }
                    None => !text.contains(w.as_str()),
                })
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!(
                    "after {within:?} the output lacks {missing:?}; it was:\n{text}"
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn run(&mut self, step: &Step) -> Result<(), String> {
        if step.script.is_empty() {
            let running = self.terminals.get_mut(&step.terminal).ok_or(
                format!("terminal {} has nothing running", step.terminal),
            )?;
            if let Some(typed) = &step.typed {
                let stdin =
                    running.stdin.as_mut().ok_or("its input is closed")?;
                stdin
                    .write_all(typed.as_bytes())
                    .map_err(|e| format!("typing into it: {e}"))?;
            }
            if step.ctrl_c {
                running.interrupt();
            }
            if (step.ctrl_c && !step.running) || step.done {
                let until = Instant::now() + step.within;
                while running.child.try_wait().ok().flatten().is_none() {
                    if Instant::now() >= until {
                        return Err(format!(
                            "still running after {:?}",
                            step.within
                        ));
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            }
            let running = &self.terminals[&step.terminal];
            self.expect(running, &step.expect, step.within)?;
            self.lacks(running, &step.lacks)?;
            let running = self.terminals.get_mut(&step.terminal).unwrap();
            if step.running && running.child.try_wait().ok().flatten().is_some()
            {
                return Err("it ended; it should still run".into());
            }
            return Ok(());
        }
        if let Some(mut old) = self.terminals.remove(&step.terminal)
            && old.child.try_wait().ok().flatten().is_none()
        {
            old.kill();
            return Err(format!(
                "terminal {} still runs its last program: stop it first",
                step.terminal
            ));
        }
        let mut running = self.spawn(step);
        if step.start {
            let wanted: Vec<String> = step.wait.iter().cloned().collect();
            let result = self.expect(&running, &wanted, step.within);
            self.terminals.insert(step.terminal.clone(), running);
            return result;
        }
        let until = Instant::now() + step.within;
        let status = loop {
            if let Some(status) = running.child.try_wait().ok().flatten() {
                break status;
            }
            if Instant::now() >= until {
                running.kill();
                return Err(format!(
                    "did not finish within {:?}; it printed:\n{}",
                    step.within,
                    running.text()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        };
        // Everything it printed is read once its pipe reaches its end (a
        // program it left running in the background may hold it open).
        while running.closed.load(Ordering::SeqCst) < 1
            && Instant::now() < until
        {
            thread::sleep(Duration::from_millis(5));
        }
        let code = status.code().unwrap_or(-1);
        if code != step.status {
            return Err(format!(
                "exit status {code}, not {}; it printed:\n{}",
                step.status,
                running.text()
            ));
        }
        let result = self
            .expect(&running, &step.expect, Duration::ZERO)
            .and_then(|()| self.lacks(&running, &step.lacks));
        self.terminals.insert(step.terminal.clone(), running);
        result
    }

    /// Fails if `running` printed any text of `unwanted`.
    fn lacks(
        &self,
        running: &Running,
        unwanted: &[String],
    ) -> Result<(), String> {
        let text = running.text();
        let found: Vec<String> = unwanted
            .iter()
            .map(|u| self.ported(u))
            .filter(|u| text.contains(u.as_str()))
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        Err(format!("the output shows {found:?}; it was:\n{text}"))
    }
}

/// `PATH` with `dir` first: where the `just` stand-in is, when needed.
fn path_with(dir: &std::path::Path) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    format!("{}:{path}", dir.display())
}

/// A directory holding a `just` that runs `just lesson-N ARGS` as the real
/// recipe does, for a machine without just (the README's two commands need
/// only Rust). Empty when just is installed: then the real one runs.
fn just_shim() -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("course-try-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("shim dir");
    let have_just = Command::new("just")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if have_just {
        return dir;
    }
    assert!(std::env::var_os("CI").is_none(), "CI must install just");
    let target = bin(1).parent().unwrap().to_path_buf();
    let script = format!(
        "#!/usr/bin/env bash\n\
         # Stands in for just's lesson-N recipes (see the justfile).\n\
         n=${{1#lesson-}}; shift\n\
         exec \"{}/lesson-$(printf %02d \"$n\")\" \"$@\"\n",
        target.display()
    );
    let shim = dir.join("just");
    std::fs::write(&shim, script).expect("write shim");
    let mut perms = std::fs::metadata(&shim).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&shim, perms).expect("chmod shim");
    dir
}

/// A port nobody uses now: the kernel's choice for port 0.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Runs the "Try it yourself" steps of `chapter` (a file of book/src).
fn try_chapter(chapter: &str) {
    try_chapter_section(chapter, "## Try it yourself");
}

/// Runs the steps of `chapter` under `heading` (a whole `## ...` line): an
/// appendix's steps may be in a section with another name.
fn try_chapter_section(chapter: &str, heading: &str) {
    let (_, text) = chapters()
        .into_iter()
        .find(|(path, _)| path.ends_with(chapter))
        .unwrap_or_else(|| panic!("no chapter {chapter}"));
    let section = section_under(&text, heading)
        .unwrap_or_else(|why| panic!("{chapter}: {why}"))
        .unwrap_or_else(|| panic!("{chapter} has no {heading:?}"));
    assert!(!section.steps.is_empty(), "{chapter}: no steps");
    bin(1);
    let mut reader = Reader {
        chapter: chapter.to_string(),
        ports: section.ports.iter().map(|&p| (p, free_port())).collect(),
        shim: just_shim(),
        terminals: HashMap::new(),
    };
    for step in &section.steps {
        if step.needs.iter().any(|tool| !crate::support::have(tool)) {
            continue;
        }
        if let Err(why) = reader.run(step) {
            panic!(
                "{}, the step at line {} (terminal {}):\n{}\n{why}",
                reader.chapter, step.line, step.terminal, step.script
            );
        }
    }
}

#[test]
fn lesson_02_try_it() {
    try_chapter("lesson-02.md");
}

#[test]
fn lesson_08_try_it() {
    try_chapter("lesson-08.md");
}

#[test]
fn steps_are_read_from_their_comments() {
    let text = "# x\n\n## Try it yourself\n\n<!-- try: port 8001 -->\n\
        First:\n\n<!-- try: A start wait=\"Listening on\" -->\n```sh\n\
        just lesson-2 server\n```\n\n<!-- try: B input=\"hi\\n\" \
        expect=\"Reply: hi\" expect=\"x y\" status=1 -->\n```sh\nclient\n```\n\
        <!-- try: A ctrl-c -->\n\n## Pitfalls\n\n```sh\nnot a step\n```\n";
    let found = section(text).unwrap().unwrap();
    assert_eq!(found.ports, [8001]);
    assert_eq!(found.steps.len(), 3);
    assert!(found.steps[0].start);
    assert_eq!(found.steps[0].wait.as_deref(), Some("Listening on"));
    assert_eq!(found.steps[0].script, "just lesson-2 server");
    assert_eq!(found.steps[1].input, "hi\n");
    assert_eq!(found.steps[1].expect, ["Reply: hi", "x y"]);
    assert_eq!(found.steps[1].status, 1);
    assert!(found.steps[2].ctrl_c && found.steps[2].script.is_empty());
}

#[test]
fn a_shell_block_that_is_not_a_step_is_refused() {
    let text = "## Try it yourself\n\n```sh\nnc 127.0.0.1 8001\n```\n";
    let why = section(text).unwrap_err();
    assert!(why.contains("every command the section shows"), "{why}");
}

#[test]
fn a_wrong_expectation_fails_the_step() {
    let step = Step {
        line: 1,
        terminal: "A".into(),
        script: "echo hello".into(),
        expect: vec!["goodbye".into()],
        within: WITHIN,
        ..Step::default()
    };
    let mut reader = Reader {
        chapter: "test".into(),
        ports: Vec::new(),
        shim: std::env::temp_dir(),
        terminals: HashMap::new(),
    };
    let why = reader.run(&step).unwrap_err();
    assert!(why.contains("lacks [\"goodbye\"]"), "{why}");
    let right = Step { expect: vec!["hello".into()], ..step };
    reader.run(&right).expect("the right expectation passes");
}

#[test]
fn lesson_12_try_it() {
    try_chapter("lesson-12.md");
}

#[test]
fn lesson_13_try_it() {
    try_chapter("lesson-13.md");
}

#[test]
fn reliability_appendix_try_it() {
    try_chapter("reliability.md");
}

#[test]
fn tools_appendix_try_it() {
    try_chapter_section(
        "tools.md",
        "## strace: the system calls, as the kernel saw them",
    );
    try_chapter_section("tools.md", "## Python: a second implementation");
}

#[test]
fn designs_appendix_try_it() {
    try_chapter_section("designs.md", "## Measuring them");
}

#[test]
fn done_lacks_and_running_are_read_and_lacks_fails_the_step() {
    let text = "## Try it yourself\n\n<!-- try: A ctrl-c running \
        expect=\"x\" -->\n<!-- try: A done lacks=\"error: \" -->\n";
    let found = section(text).unwrap().unwrap();
    assert!(found.steps[0].ctrl_c && found.steps[0].running);
    assert!(found.steps[1].done && !found.steps[1].running);
    assert_eq!(found.steps[1].lacks, ["error: "]);
    let step = Step {
        line: 1,
        terminal: "A".into(),
        script: "echo 'error: recipe failed'".into(),
        lacks: vec!["error: ".into()],
        within: WITHIN,
        ..Step::default()
    };
    let mut reader = Reader {
        chapter: "test".into(),
        ports: Vec::new(),
        shim: std::env::temp_dir(),
        terminals: HashMap::new(),
    };
    let why = reader.run(&step).unwrap_err();
    assert!(why.contains("the output shows [\"error: \"]"), "{why}");
}
