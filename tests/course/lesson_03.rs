//! Lesson 3: the same conversation with std::net, and the calls behind it.

use std::process::Command;

use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, run_with, stable_demo, stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(3);
    assert!(
        transcript
            .contains("getsockopt(fd 3, SO_REUSEADDR) = 0  (value 1: on)")
    );
    assert!(
        transcript.contains("= -1 ECONNRESET"),
        "an unanswered request ends in a reset"
    );
    assert!(
        transcript
            .contains("getsockopt(fd 4, SO_REUSEADDR) = 0  (value 0: off)")
    );
    snapshot!("lesson_03__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_03__help", help(3));
    snapshot!(
        "lesson_03__help_server",
        stdout_of(&run(3, &["server", "--help"], b""))
    );
}

/// The chapter's table of what std does, checked against the kernel: the
/// arguments too, which the course-wide kernel check does not compare.
#[test]
fn std_makes_the_calls_the_chapter_says() {
    if !crate::support::have("strace") {
        return;
    }
    let out = run_with(
        Command::new("strace")
            .args(["-e", "trace=network", "-o", "/dev/stdout"])
            .arg(bin(3))
            .env("NO_COLOR", "1"),
        b"",
    );
    let trace = String::from_utf8_lossy(&out.stdout);
    // strace pads short lines before " = "; fold runs of spaces to compare.
    let lines: Vec<String> = trace
        .lines()
        .filter(|l| l.contains('('))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let position = |needle: &str| {
        lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| {
            panic!("strace shows no {needle:?} in:\n{trace}")
        })
    };
    // TcpListener::bind: socket, then SO_REUSEADDR before bind, then listen(128).
    let socket = position("socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC");
    let reuse = position("setsockopt(3, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0");
    let bind = position("bind(3, ");
    let listen = position("listen(3, 128) = 0");
    assert!(socket < reuse && reuse < bind && bind < listen, "{trace}");
    // accept is accept4 with SOCK_CLOEXEC; writes are sendto with MSG_NOSIGNAL.
    position("accept4(3, ");
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("accept4("))
            .all(|l| l.contains("SOCK_CLOEXEC"))
    );
    let sends: Vec<_> =
        lines.iter().filter(|l| l.starts_with("sendto(")).collect();
    assert!(
        !sends.is_empty() && sends.iter().all(|l| l.contains("MSG_NOSIGNAL")),
        "{trace}"
    );
}

#[test]
fn our_client_talks_to_our_server() {
    let mut server = Server::lesson(3, &[]);
    let client =
        run(3, &["client", "--addr", &server.addr], b"hello\nsecond line\n\n");
    snapshot!("lesson_03__client", normalize(&stdout_of(&client)));
    server.wait_for("closed the connection");
    snapshot!("lesson_03__server", normalize(&server.transcript()));
}

#[test]
fn the_articles_python_client_talks_to_our_server() {
    let mut server = Server::lesson(3, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out =
        stdout_of(&python("article_client.py", &[&port], b"one\ntwo\n\n"));
    assert_eq!(
        out,
        "Socket Created\nSocket Connected\nSend Successfully\nReply: one\nSend Successfully\nReply: two\n"
    );
    server.wait_for("closed the connection");
    assert!(server.is_running());
}

#[test]
fn a_silent_client_is_dropped_and_the_server_goes_on() {
    let mut server = Server::lesson(3, &["--timeout", "0.2"]);
    let _silent = std::net::TcpStream::connect(&server.addr).expect("connect");
    server.wait_for("No data from");
    let out =
        stdout_of(&run(3, &["client", "--addr", &server.addr], b"next\n\n"));
    assert!(out.contains("Reply: next\n"), "{out}");
}

#[test]
fn bind_to_a_port_in_use_fails_with_the_call_address_and_error() {
    let server = Server::lesson(3, &[]);
    let second = Command::new(bin(3))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-03: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
}
