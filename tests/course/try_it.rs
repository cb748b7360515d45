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
//! <!-- try: B start open input="hi\n" -->     typed, no Ctrl-D (below)
//! <!-- try: B done -->                        B's program has ended
//! <!-- try: B type="\n" -->                   Enter, typed into B's open input
//! <!-- try: C match="LISTEN\s+2\s+1" -->       a regular expression
//! <!-- try: A ctrl-z -->                      Ctrl-Z: A's job is stopped
//! <!-- try: A fg -->                          `fg`: A's job goes on
//! <!-- try: A ctrl-c running expect="..." --> Ctrl-C, and it runs on
//! <!-- try: A lacks="error:" -->              a text it must not print
//! ```
//!
//! A block runs as one `bash` script from the repository root, so it is
//! exactly what the reader pastes. `expect` (repeatable) and `wait` are
//! texts the output must contain within `within` seconds (default 10; a
//! step left running waits for both); `status` is the exit status (default
//! 0). The input ends (Ctrl-D) once typed, unless the step says `open`:
//! then it stays open until the program stops, as a terminal's does while
//! the reader types nothing more (OpenBSD `nc` stays after the peer closed
//! while its input is open, and exits when both are done). Each port a
//! chapter's steps use is replaced by a free one, so the test never
//! depends on a fixed port or on a TIME-WAIT left by another test; every
//! process a step started is stopped at the end, passed or failed. Every
//! shell block in a "Try it yourself" section must be a step: the prose
//! cannot promise what no test ran. An appendix whose steps are under
//! another heading names it (`try_chapter_section`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Ctrl-Z: SIGTSTP to the terminal's job, which stops.
    ctrl_z: bool,
    /// `fg`: SIGCONT to the stopped job, which goes on.
    fg: bool,
    wait: Option<String>,
    input: String,
    /// The input is not ended after it is typed (no Ctrl-D).
    open: bool,
    /// Typed later into the terminal's running program, whose input was
    /// left `open`.
    typed: Option<String>,
    /// Wait for the terminal's program to end (its prompt is back).
    done: bool,
    expect: Vec<String>,
    /// Texts the output must not contain (a second error from `just`).
    lacks: Vec<String>,
    /// After Ctrl-C the program must still run (it ignored or handled it).
    running: bool,
    status: i32,
    within: Duration,
    needs: Vec<String>,
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
            ("running", None) => step.running = true,
            ("lacks", Some(v)) => step.lacks.push(v),
            ("open", None) => step.open = true,
            ("type", Some(v)) => step.typed = Some(v),
            // A regular expression, where spacing varies (ss's columns).
            ("match", Some(v)) => step.expect.push(format!("~{v}")),
            ("done", None) => step.done = true,
            ("ctrl-z", None) => step.ctrl_z = true,
            ("fg", None) => step.fg = true,
            ("wait", Some(v)) => step.wait = Some(v),
            ("input", Some(v)) => step.input = v,
            ("expect", Some(v)) => step.expect.push(v),
            ("status", Some(v)) => {
                step.status = v.parse().map_err(|_| format!("status={v}"))?
            }
            ("within", Some(v)) => {
                let secs: f64 = v.parse().map_err(|_| format!("within={v}"))?;
                step.within = Duration::from_secs_f64(secs);
            }
            ("needs", Some(v)) => step.needs.push(v),
            (key, _) => return Err(format!("unknown attribute {key:?}")),
        }
    }
    Ok(step)
}

/// The "Try it yourself" section of a chapter, or `None` if it has none.
fn section(text: &str) -> Result<Option<Section>, String> {
    section_under(text, "## Try it yourself")
}

/// The steps under `heading` (a whole `## ...` line), up to the next `## `.
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
    output: Arc<Mutex<Vec<u8>>>,
    /// Whether its output pipe has reached its end.
    closed: Arc<AtomicBool>,
    /// Its input, while it stays open (`open`): closed when it is dropped.
    input: Arc<Mutex<Option<std::process::ChildStdin>>>,
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

    /// Ctrl-Z: SIGTSTP to the whole process group, as a terminal sends
    /// it; returns once every process of the job is stopped.
    fn stop(&mut self, within: Duration) -> Result<(), String> {
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGTSTP) };
        let until = Instant::now() + within;
        while !job_stopped(pgid) {
            if Instant::now() >= until {
                return Err("still running after Ctrl-Z".into());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `fg`: SIGCONT to the stopped job.
    fn resume(&mut self) {
        let pgid = self.child.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGCONT) };
    }
}

/// Whether every process in group `pgid` is stopped (state `T` in
/// `/proc/<pid>/stat`, whose fields after the name are state, ppid, pgrp;
/// a zombie, `Z`, has ended and counts as stopped).
fn job_stopped(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    let mut members = 0;
    for entry in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
        else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) != Some(&pgid.to_string().as_str()) {
            continue;
        }
        members += 1;
        if !matches!(fields[0], "T" | "Z") {
            return false;
        }
    }
    members > 0
}

/// Runs a chapter's steps in order; `Err` says which step did what.
struct Reader {
    chapter: String,
    /// Each port the chapter names, and the free one used instead.
    ports: Vec<(u16, u16)>,
    shim: PathBuf,
    terminals: HashMap<String, Running>,
    /// How many scripts it wrote into `shim`, one file per step.
    scripts: usize,
}

impl Drop for Reader {
    fn drop(&mut self) {
        for running in self.terminals.values_mut() {
            running.kill();
        }
        for n in 1..=self.scripts {
            let _ = std::fs::remove_file(self.shim.join(format!(
                "step-{}-{n}.sh",
                self.chapter.trim_end_matches(".md")
            )));
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

    fn spawn(&mut self, step: &Step) -> Running {
        // From a file, not `bash -c`: a reader's shell does not carry the
        // commands in its own command line, where `pgrep -f` would find them.
        self.scripts += 1;
        let file = self.shim.join(format!(
            "step-{}-{}.sh",
            self.chapter.trim_end_matches(".md"),
            self.scripts
        ));
        std::fs::write(&file, self.ported(&step.script)).expect("write step");
        let mut command = Command::new("bash");
        command
            .arg(&file)
            .current_dir(root())
            .env("PATH", path_with(&self.shim))
            // A temp dir of this test run's own: a default path under it
            // (lesson 15's socket file) is one no other run is using.
            .env("TMPDIR", &self.shim)
            .stdin(Stdio::piped());
        // One pipe for both outputs, as a terminal is one: what a program
        // writes to stderr stays in order with what it writes to stdout
        // (strace's lines with the traced program's).
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        command.stdout(writer.try_clone().expect("pipe")).stderr(writer);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().expect("run bash");
        // The parent's copies of the write end go, so that the pipe ends
        // when every program the step started has closed it.
        drop(command);
        let output = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        {
            let output = Arc::clone(&output);
            let closed = Arc::clone(&closed);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                closed.store(true, Ordering::SeqCst);
            });
        }
        let mut child = child;
        let stdin = Arc::new(Mutex::new(child.stdin.take()));
        let input = step.input.clone().into_bytes();
        let open = step.open;
        // Input goes in, then end of input, as when the reader is done
        // typing (Ctrl-D), unless it stays open; a program that does not
        // read it is fine.
        let typing = Arc::clone(&stdin);
        thread::spawn(move || {
            let mut stdin = typing.lock().unwrap();
            if let Some(pipe) = stdin.as_mut() {
                let _ = pipe.write_all(&input);
            }
            if !open {
                stdin.take();
            }
        });
        Running { child, output, closed, input: stdin }
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
                .filter(|w| match w.strip_prefix('~') {
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
                let mut input = running.input.lock().unwrap();
                let pipe = input.as_mut().ok_or("its input is not open")?;
                pipe.write_all(typed.as_bytes())
                    .map_err(|e| format!("typing into it: {e}"))?;
            }
            if step.ctrl_z {
                running.stop(step.within)?;
            }
            if step.fg {
                running.resume();
            }
            if step.ctrl_c {
                running.interrupt();
                if !step.running
                    && !exits_within(&mut running.child, step.within)
                {
                    return Err("still running after Ctrl-C".into());
                }
            }
            if step.done && !exits_within(&mut running.child, step.within) {
                return Err(format!("still running after {:?}", step.within));
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
        // The reader types the next command when the prompt is back: a
        // program that is ending gets a moment to exit.
        if let Some(mut old) = self.terminals.remove(&step.terminal)
            && !exits_within(&mut old.child, Duration::from_secs(2))
        {
            old.kill();
            return Err(format!(
                "terminal {} still runs its last program: stop it first",
                step.terminal
            ));
        }
        let mut running = self.spawn(step);
        if step.start {
            let wanted: Vec<String> =
                step.wait.iter().chain(&step.expect).cloned().collect();
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
        while !running.closed.load(Ordering::SeqCst) && Instant::now() < until {
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

/// Whether `child` has exited, or exits within `within`.
fn exits_within(child: &mut Child, within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
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
    // Root needs no sudo, and a container may have none: a stand-in runs
    // the command as it is.
    let have_sudo = Command::new("sudo")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if unsafe { libc::geteuid() } == 0 && !have_sudo {
        write_script(&dir.join("sudo"), "#!/bin/sh\nexec \"$@\"\n");
    }
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
    write_script(&dir.join("just"), &script);
    dir
}

/// Writes an executable script; several tests may write the same one.
fn write_script(path: &std::path::Path, script: &str) {
    // Written aside and renamed, so that no test runs a half-written file.
    let aside = path.with_extension(format!("{:?}", thread::current().id()));
    std::fs::write(&aside, script).expect("write shim");
    let mut perms = std::fs::metadata(&aside).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&aside, perms).expect("chmod shim");
    std::fs::rename(&aside, path).expect("rename shim");
}

/// Whether a step may use `tool`. `needs=just` means the real one (the
/// stand-in in `shim` knows only `just lesson-N`). `sudo` counts when it
/// asks no password (`sudo -n`): a test cannot type one; for root without
/// sudo, `shim` has one that runs the command as it is.
fn can_use(shim: &std::path::Path, tool: &str) -> bool {
    if tool != "sudo" {
        return !shim.join(tool).exists() && crate::support::have(tool);
    }
    if shim.join(tool).exists() {
        return true;
    }
    let works = Command::new("sudo")
        .args(["-n", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !works {
        eprintln!("sudo asks a password here: skipping the steps that use it");
    }
    works
}

/// A port nobody uses now, below the ephemeral range. The steps stop and
/// restart servers on it, leaving it free in between: a port the kernel
/// hands out for port 0, or to a `connect`, could meanwhile become some
/// other test's client port, and the restart would fail with
/// `EADDRINUSE`. Ports below 32768 (`ip_local_port_range`, `man 7 ip`)
/// are never given out that way; each call in this process takes the next.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Where this process starts, so that two test processes at once
    // (`cargo test` and `just test N`) are unlikely to meet.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 600) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 32_768, "no free port left below 32768");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
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
        scripts: 0,
    };
    for step in &section.steps {
        if step.needs.iter().any(|tool| !can_use(&reader.shim, tool)) {
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
        shim: unit_dir("lacks"),
        terminals: HashMap::new(),
        scripts: 0,
    };
    let why = reader.run(&step).unwrap_err();
    assert!(why.contains("the output shows [\"error: \"]"), "{why}");
}

#[test]
fn lesson_14_try_it() {
    try_chapter("lesson-14.md");
}

#[test]
fn lesson_16_try_it() {
    try_chapter("lesson-16.md");
}

/// Needs root or CAP_NET_RAW for the packet socket, as CI has.
#[test]
fn lesson_18_try_it() {
    try_chapter("lesson-18.md");
}

#[test]
fn lesson_15_try_it() {
    try_chapter("lesson-15.md");
}

#[test]
fn lesson_17_try_it() {
    try_chapter("lesson-17.md");
}

#[test]
fn lesson_09_try_it() {
    try_chapter("lesson-09.md");
}

#[test]
fn lesson_10_try_it() {
    try_chapter("lesson-10.md");
}

#[test]
fn lesson_11_try_it() {
    try_chapter("lesson-11.md");
}

/// A folder of its own for a unit test's step scripts: tests run at once.
fn unit_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("course-try-it-unit-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("unit test folder");
    dir
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
    assert!(!found.steps[1].open);
    let open = parse_step("B start open input=\"x\\n\"", 1).unwrap();
    assert!(open.open && open.start && open.input == "x\n");
    assert!(parse_step("B done", 1).unwrap().done);
}

#[test]
fn input_left_open_is_not_ended() {
    // `cat` copies its input until the input ends: with `open` it is
    // still running after what was typed came back.
    let step = Step {
        line: 1,
        terminal: "A".into(),
        script: "cat".into(),
        start: true,
        open: true,
        input: "typed\n".into(),
        wait: Some("typed".into()),
        within: WITHIN,
        ..Step::default()
    };
    let mut reader = Reader {
        chapter: "open-input".into(),
        ports: Vec::new(),
        shim: unit_dir("1"),
        terminals: HashMap::new(),
        scripts: 0,
    };
    reader.run(&step).expect("cat echoes what was typed");
    let cat = reader.terminals.get_mut("A").unwrap();
    assert!(!exits_within(&mut cat.child, Duration::from_millis(300)));
    cat.kill();
    let ended = Step { terminal: "B".into(), open: false, ..step };
    reader.run(&ended).expect("cat echoes what was typed");
    let cat = reader.terminals.get_mut("B").unwrap();
    assert!(exits_within(&mut cat.child, WITHIN));
}

#[test]
fn a_shell_block_that_is_not_a_step_is_refused() {
    let text = "## Try it yourself\n\n```sh\nnc 127.0.0.1 8001\n```\n";
    let why = section(text).unwrap_err();
    assert!(why.contains("every command the section shows"), "{why}");
}

#[test]
fn ctrl_z_stops_the_job_and_fg_continues_it() {
    let ticking = Step {
        line: 1,
        terminal: "A".into(),
        script: "while :; do echo tick; sleep 0.02; done".into(),
        start: true,
        wait: Some("tick".into()),
        within: WITHIN,
        ..Step::default()
    };
    let mut reader = Reader {
        chapter: "test".into(),
        ports: Vec::new(),
        shim: unit_dir("2"),
        terminals: HashMap::new(),
        scripts: 0,
    };
    reader.run(&ticking).expect("the loop starts");
    let action = |ctrl_z, fg| Step {
        line: 2,
        terminal: "A".into(),
        ctrl_z,
        fg,
        within: WITHIN,
        ..Step::default()
    };
    reader.run(&action(true, false)).expect("Ctrl-Z stops it");
    let ticks =
        |reader: &Reader| reader.terminals["A"].text().matches("tick").count();
    // What it printed before it stopped may still be in the pipe.
    thread::sleep(Duration::from_millis(100));
    let stopped = ticks(&reader);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(ticks(&reader), stopped, "a stopped job prints nothing");
    reader.run(&action(false, true)).expect("fg continues it");
    let until = Instant::now() + WITHIN;
    while ticks(&reader) == stopped {
        assert!(Instant::now() < until, "the job did not go on after fg");
        thread::sleep(Duration::from_millis(20));
    }
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
        shim: unit_dir("3"),
        terminals: HashMap::new(),
        scripts: 0,
    };
    let why = reader.run(&step).unwrap_err();
    assert!(why.contains("lacks [\"goodbye\"]"), "{why}");
    let right = Step { expect: vec!["hello".into()], ..step };
    reader.run(&right).expect("the right expectation passes");
}

#[test]
fn lesson_01_try_it() {
    try_chapter("lesson-01.md");
}

#[test]
fn lesson_08_try_it() {
    try_chapter("lesson-08.md");
}

#[test]
fn lesson_03_try_it() {
    try_chapter("lesson-03.md");
}

#[test]
fn lesson_04_try_it() {
    try_chapter("lesson-04.md");
}

#[test]
fn lesson_05_try_it() {
    try_chapter("lesson-05.md");
}

#[test]
fn lesson_06_try_it() {
    try_chapter("lesson-06.md");
}

#[test]
fn lesson_07_try_it() {
    try_chapter("lesson-07.md");
}
