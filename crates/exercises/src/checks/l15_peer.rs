//! The check of exercise 15: the reader's server runs as a process of its
//! own; a Python client, another process, connects to the server's socket
//! file and prints its own pid, uid and the line it got; they must agree.

use std::fs;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::harness::{PATIENCE, Program, Which, announce, shown};

/// The Python client: connects, prints `pid PID uid UID`, then what the
/// server sent, then nothing once the server closed. Bounded by a timeout.
const CLIENT: &str = "\
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(float(sys.argv[2]))
s.connect(sys.argv[1])
print(f'pid {os.getpid()} uid {os.getuid()}')
got = b''
while True:
    part = s.recv(256)
    if not part:
        break
    got += part
sys.stdout.write(got.decode(errors='replace'))
";

/// The reader's program, `run 15 PATH`: `serve` on a socket file at PATH.
pub fn run(
    serve: fn(UnixListener) -> io::Result<()>,
    args: &[String],
) -> io::Result<()> {
    let path =
        args.first().ok_or_else(|| io::Error::other("usage: run 15 PATH"))?;
    let listener = UnixListener::bind(path)?;
    announce(path)?;
    serve(listener)
}

/// Starts the server on a socket file in the temporary directory, and two
/// Python clients in turn.
pub fn check(which: Which) -> Result<(), String> {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "exercise-15-{}-{}.sock",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_file(&path);
    let args = [path.to_string_lossy().into_owned()];
    let result = Program::start("15", which, &args, "your server").and_then(
        |mut server| {
            server.listening()?;
            (0..2).try_for_each(|_| client(&path))?;
            server.still_serving()
        },
    );
    let _ = fs::remove_file(&path);
    result
}

/// One Python client; its line and the server's must be the same.
fn client(path: &std::path::Path) -> Result<(), String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(CLIENT)
        .arg(path)
        .arg(PATIENCE.as_secs_f64().to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("the check runs python3, a client: {err}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let (Some(mine), told) = (lines.next(), lines.next().unwrap_or("")) else {
        return Err(format!(
            "the Python client failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    };
    if !out.status.success() {
        return Err(format!(
            "the Python client, {mine}, failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    if told != mine {
        let sent = if told.is_empty() {
            "nothing".to_string()
        } else {
            shown(format!("{told}\n").as_bytes())
        };
        return Err(format!(
            "the client, another process, is {mine:?}; the server must send \
             it {}, and then close; it sent {sent}",
            shown(format!("{mine}\n").as_bytes()),
        ));
    }
    Ok(())
}
