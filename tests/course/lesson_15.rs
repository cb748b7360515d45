//! Lesson 15: Unix domain sockets.
//!
//! Every server here listens on a socket file in a directory of its own
//! under the temp dir, never on a fixed path: tests run at the same time,
//! in this checkout and in others on the same machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::snapshot;
use crate::support::{
    Server, bin, have, help, run, run_with, stable_demo, stdout_of,
};

/// A new, empty directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join(format!("lesson-15-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// The socket file's path, as a string for the command line.
    fn sock(&self) -> String {
        self.0.join("s.sock").to_str().expect("utf-8 temp dir").to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_at(path: &str) -> Server {
    Server::start(Command::new(bin(15)).args(["server", "--path", path]))
}

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(15);
    for shown in [
        "= -1 EADDRINUSE",
        "= -1 ECONNREFUSED",
        "refused: bind demo.sock: another server answers on it",
        "(pid = getpid(), uid = getuid(), gid = getgid())",
        "another number, the same inode",
        "recv(fd 4, 4096) = 8  (\"one\\ntwo\\n\")",
        "recv(fd 4, 4096) = 4  (\"one\\n\")",
        "(no descriptor, MSG_CTRUNC)",
    ] {
        assert!(transcript.contains(shown), "{shown:?} not in\n{transcript}");
    }
    assert!(!transcript.contains("NOT what"), "{transcript}");
    snapshot!("lesson_15__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_15__help", help(15));
    snapshot!(
        "lesson_15__help_server",
        stdout_of(&run(15, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_15__help_client",
        stdout_of(&run(15, &["client", "--help"], b""))
    );
}

#[test]
fn our_client_talks_to_our_server_who_knows_its_pid() {
    let dir = Scratch::new();
    let path = dir.sock();
    let mut server = server_at(&path);
    assert_eq!(server.addr, path);
    let client =
        run(15, &["client", "--path", &path], b"hello\nsecond line\n\n");
    let out = stdout_of(&client).replace(&path, "[PATH]");
    snapshot!("lesson_15__client", out);
    // The kernel told the server the client's uid: ours.
    let connected = server.wait_for("Connected: pid ");
    let uid = nix::unistd::getuid();
    assert!(connected.contains(&format!(", uid {uid}, ")), "{connected}");
    server.wait_for("closed the connection");
    assert!(server.is_running());
}

#[test]
fn pythons_af_unix_client_talks_to_our_server() {
    let dir = Scratch::new();
    let path = dir.sock();
    let mut server = server_at(&path);
    let script = "import os, socket, sys\n\
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
        s.connect(sys.argv[1])\n\
        s.sendall(b'from python\\n')\n\
        print(os.getpid(), s.recv(100))\n";
    let out =
        run_with(Command::new("python3").args(["-c", script, &path]), b"");
    let out = stdout_of(&out);
    let (pid, reply) = out.trim().split_once(' ').expect("pid and reply");
    assert_eq!(reply, "b'from python\\n'");
    // SO_PEERCRED named the Python process.
    server.wait_for(&format!("Connected: pid {pid}, "));
    server.wait_for("closed the connection");
}

#[test]
fn openbsd_nc_talks_to_our_server() {
    if !have("nc") {
        return;
    }
    let dir = Scratch::new();
    let path = dir.sock();
    let mut server = server_at(&path);
    // -U: a Unix socket; -N: shut down our side at the end of stdin.
    let out =
        run_with(Command::new("nc").args(["-N", "-U", &path]), b"from nc\n");
    assert_eq!(stdout_of(&out), "from nc\n");
    server.wait_for("closed the connection");
}

#[test]
fn a_live_servers_file_is_left_alone_and_a_stale_one_is_removed() {
    let dir = Scratch::new();
    let path = dir.sock();
    let mut first = server_at(&path);
    let second = Command::new(bin(15))
        .args(["server", "--path", &path])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-15: bind {path}: another server answers on it: \
             leaving it alone\n"
        )
    );
    // Its probe reached the first server, which goes on serving.
    first.wait_for("closed the connection");
    assert!(first.is_running());

    // Killed, the first server leaves its file; the next start removes it.
    drop(first);
    assert!(Path::new(&path).exists(), "the stale file stays");
    let mut third = server_at(&path);
    let out = stdout_of(&run(15, &["client", "--path", &path], b"hi\n\n"));
    assert!(out.contains("Reply: hi\n"), "{out}");
    third.wait_for("closed the connection");
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone() {
    let dir = Scratch::new();
    let path = dir.sock();
    std::fs::write(&path, "precious\n").unwrap();
    let out = run(15, &["server", "--path", &path], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("lesson-15: bind {path}: not a socket: leaving it alone\n")
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(15, &["client", "--path", "/nowhere/lesson-15.sock"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-15: connect /nowhere/lesson-15.sock: \
         No such file or directory (os error 2)\n"
    );
    let long = format!("/tmp/{}", "x".repeat(200));
    let out = run(15, &["server", "--path", &long], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with(&format!("lesson-15: {long}: ")), "{err}");
    let out = run(15, &["server", "--mode", "999"], b"");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("999 is not a mode from 0 to 777 in octal")
    );
}
