//! Lesson 8: what listen(backlog) really bounds.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;

use regex::Regex;

use crate::snapshot;
use crate::support::{
    Server, help, normalize, python, run, stable_demo, stdout_of,
};

/// This machine's `net.core.somaxconn`: a setting of the machine (4096 by
/// default since Linux 5.4, 128 before), not of the lesson.
fn somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .expect("read somaxconn")
        .trim()
        .parse()
        .expect("somaxconn is a number")
}

/// The transcript with this machine's somaxconn (and the length of the
/// text that holds it) replaced by placeholders, after checking that the
/// demo printed the real value.
fn without_somaxconn(transcript: &str) -> String {
    let value = somaxconn();
    let read =
        Regex::new(r#"read\(fd (\d+), 32\) = (\d+)  \("(\d+)\\n"\)"#).unwrap();
    let caps = read.captures(transcript).expect("the demo reads somaxconn");
    assert_eq!(caps[3].parse::<u32>().unwrap(), value);
    assert_eq!(caps[2].parse::<usize>().unwrap(), caps[3].len() + 1);
    let transcript = read
        .replace(transcript, r#"read(fd $1, 32) = [LEN]  ("[SOMAXCONN]\n")"#);
    transcript
        .replace(&format!("limit {value})"), "limit [SOMAXCONN])")
        .replace(&format!("somaxconn = {value}:"), "somaxconn = [SOMAXCONN]:")
}

/// How many clients' polls timed out in the first round (the SYNs dropped).
fn stalled(transcript: &str) -> usize {
    transcript
        .lines()
        .filter(|l| l.contains("POLLOUT], 200 ms) = 0  (timed out)"))
        .count()
}

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(8);
    // listen() lowered the largest int to somaxconn, without an error.
    assert!(
        transcript.contains(&format!(
            "listen(fd 3, 2147483647) = 0\n   7  getsockopt(fd 3, TCP_INFO) = 0  (accept queue 0, limit {})",
            somaxconn()
        )),
        "{transcript}"
    );
    // Backlog 1: two handshakes complete, two clients stall.
    assert!(transcript.contains("(accept queue 2, limit 1)"), "{transcript}");
    assert!(
        transcript
            .contains("# 2 of 4 clients finished the handshake: backlog 1 + 1")
    );
    // A newcomer overtakes a client whose SYN was dropped.
    assert!(
        transcript.contains("that is C: it came after B and is accepted first"),
        "{transcript}"
    );
    assert_eq!(stalled(&transcript), 2, "{transcript}");
    // Once the server accepted, the stalled clients got in at the SYN resend.
    assert!(transcript.contains("each got in about 1 s after its connect()"));
    assert_eq!(transcript.matches("(value 0: connected)").count(), 4);
    // Accepted connections do not count: 8 held, the limit is still 1.
    assert!(
        transcript.contains(
            "# holding 8 connections with listen(1): 0 queued, limit 1"
        )
    );
    snapshot!("lesson_08__demo", without_somaxconn(&transcript));
}

/// The kernel lets `backlog + 1` handshakes finish, whatever the backlog.
#[test]
fn the_queue_holds_backlog_plus_one() {
    for (backlog, clients) in [(0, 3), (5, 8)] {
        let args = [
            "demo",
            "--backlog",
            &backlog.to_string(),
            "--clients",
            &clients.to_string(),
        ];
        let transcript = normalize(&stdout_of(&run(8, &args, b"")));
        let done = backlog + 1;
        assert!(
            transcript.contains(&format!(
                "# {done} of {clients} clients finished the handshake: backlog {backlog} + 1"
            )),
            "{transcript}"
        );
        assert!(
            transcript
                .contains(&format!("(accept queue {done}, limit {backlog})"))
        );
        assert_eq!(stalled(&transcript), clients - done, "{transcript}");
        assert!(
            transcript.contains("each got in about 1 s after its connect()")
        );
        assert!(transcript.contains(&format!(
            "# holding {} connections with listen({backlog}): 0 queued, limit {backlog}",
            clients + 4
        )));
    }
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_08__help", help(8));
    snapshot!(
        "lesson_08__help_demo",
        stdout_of(&run(8, &["demo", "--help"], b""))
    );
    snapshot!(
        "lesson_08__help_server",
        stdout_of(&run(8, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_08__help_client",
        stdout_of(&run(8, &["client", "--help"], b""))
    );
}

/// Ten connections on a server with backlog 1: once accepted, they no
/// longer count against it.
#[test]
fn the_server_holds_more_connections_than_its_backlog() {
    // With no input, the server stops waiting for Enter and accepts at once.
    let mut server = Server::lesson(8, &["--backlog", "1"]);
    server.wait_for("Accepting");
    let mut held = Vec::new();
    for number in 1..=10 {
        let stream = TcpStream::connect(&server.addr).expect("connect");
        // Reading the greeting waits for the server to have accepted this
        // one, so every accept finds the queue otherwise empty.
        let mut greeting = String::new();
        BufReader::new(&stream)
            .read_line(&mut greeting)
            .expect("read greeting");
        assert_eq!(
            greeting,
            format!(
                "connection #{number}; 0 waiting in the accept queue (limit 1)\n"
            )
        );
        held.push(stream);
    }
    server.wait_for("Accepted #10 ");
    assert!(server.is_running());
    snapshot!("lesson_08__server", normalize(&server.transcript()));
}

/// A backlog above somaxconn is lowered without an error from `listen`;
/// the server reads back the queue it got and says so.
#[test]
fn the_server_says_when_the_kernel_lowered_its_backlog() {
    let mut server = Server::lesson(8, &["--backlog", "2147483647"]);
    let limit = somaxconn();
    assert!(
        server.transcript().contains(&format!(
            "(backlog 2147483647: the accept queue holds {limit} + 1)"
        )),
        "{}",
        server.transcript()
    );
    let line = server.wait_for("The kernel lowered");
    assert_eq!(
        line,
        "The kernel lowered backlog 2147483647 to net.core.somaxconn"
    );
    // A backlog the kernel grants gets no such line.
    let mut server = Server::lesson(8, &["--backlog", "1"]);
    server.wait_for("Accepting");
    assert!(!server.transcript().contains("lowered"));
}

#[test]
fn our_client_against_our_server() {
    let mut server = Server::lesson(8, &["--backlog", "2"]);
    server.wait_for("Accepting");
    let out = stdout_of(&run(
        8,
        &["client", "--addr", &server.addr, "--clients", "6"],
        b"",
    ));
    assert!(
        out.contains("6 of 6 connected, 0 failed, 0 still waiting"),
        "{out}"
    );
    server.wait_for("Accepted #6 ");
}

#[test]
fn the_articles_python_client_is_greeted() {
    let mut server = Server::lesson(8, &["--backlog", "5"]);
    server.wait_for("Accepting");
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("article_client.py", &[&port], b"hello\n\n"));
    assert_eq!(
        out,
        "Socket Created\nSocket Connected\nSend Successfully\n\
         Reply: connection #1; 0 waiting in the accept queue (limit 5)\n"
    );
    assert!(server.is_running());
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(8, &["demo", "--backlog=-1"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-08: --backlog: -1 is negative; use 0 or more\n"
    );
    let out = run(8, &["demo", "--clients", "0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-08: --clients: 0 is not between 1 and 200\n"
    );
    let out = run(8, &["client", "--wait", "1e19"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("lesson-08: --wait: ")
    );
}
