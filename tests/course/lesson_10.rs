//! Lesson 10: many clients, one thread each.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;

use crate::many_clients::{self, exchange};
use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, stable_demo, stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(10);
    // One thread: B's request waits, unanswered, behind A's half line.
    assert!(transcript.contains("recv(fd 5, 4096) = -1 EAGAIN"));
    assert!(transcript.contains("only now does the server get back to accept"));
    // A thread each: B is answered before A finishes its line.
    let threads = transcript
        .split("-- one thread per client --")
        .nth(1)
        .expect("the threads part");
    let b_answered = threads
        .find("recv(fd 5, 4096) = 13  (\"hello from B\\n\")")
        .expect("B's reply");
    let a_finishes = threads.find("send(fd 4, \"client\\n\"").expect("A's end");
    assert!(b_answered < a_finishes, "B waited for A");
    assert!(transcript.contains("Threads: 101"));
    // A process each: a zombie until waited for, none with SIG_IGN.
    assert!(transcript.contains("state Z (zombie)"));
    assert!(transcript.contains("waitpid(the child, 0) = -1 ECHILD"));
    snapshot!("lesson_10__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_10__help", help(10));
    snapshot!(
        "lesson_10__help_server",
        stdout_of(&run(10, &["server", "--help"], b""))
    );
}

/// The plain version, lesson 2's loop with a thread per connection: a
/// client that says nothing no longer holds up the next one.
#[test]
fn the_plain_server_serves_a_client_while_another_is_silent() {
    let mut server = Server::start(Command::new(bin(10)).args([
        "plain",
        "--addr",
        "127.0.0.1:0",
    ]));
    let silent = TcpStream::connect(&server.addr).unwrap();
    server.wait_for("Connected with");
    let client = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
    drop(client);
    server.wait_for("closed the connection");
    drop(silent);
}

#[test]
fn the_server_logs_each_connection() {
    let mut server = Server::lesson(10, &[]);
    let client = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
    drop(client);
    server.wait_for("closed by the client");
    snapshot!("lesson_10__server", normalize(&server.transcript()));
}

#[test]
fn serves_many_clients_at_once() {
    let mut server = Server::lesson(10, &["--idle", "60"]);
    let report = many_clients::serve_them_all(&server.addr);
    eprintln!(
        "lesson 10: {} clients x {} lines in {:?}; the slow client got {} lines answered meanwhile",
        many_clients::CLIENTS,
        many_clients::LINES,
        report.elapsed,
        report.slow_lines
    );
    assert!(report.slow_lines > 0);
    assert!(server.is_running());
}

#[test]
fn python_clients_are_served() {
    let server = Server::lesson(10, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("line_clients.py", &[&port, "50", "20"], b""));
    assert_eq!(
        out,
        "ok: 50 clients, 20 lines each, and an over-long line refused\n"
    );
}

#[test]
fn an_idle_client_is_dropped_and_the_others_are_not_held_up() {
    let mut server = Server::lesson(10, &["--idle", "0.2"]);
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    let busy = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&busy, b"meanwhile\n"), b"meanwhile\n");
    server.wait_for("idle for 200 ms: closed");
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap(), 0, "the server hung up");
}

#[test]
fn bind_to_a_port_in_use_fails_with_the_call_address_and_error() {
    let server = Server::lesson(10, &[]);
    let second = Command::new(bin(10))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-10: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(10, &["server", "--idle", "0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-10: --idle: 0 is not a number of seconds from 0.001 to 31536000\n"
    );
}

/// Beside the lesson, a process per connection: a silent client holds up
/// no one, and the children that have served leave no zombie behind.
#[test]
fn the_fork_server_serves_clients_at_once_and_leaves_no_zombie() {
    let mut server = Server::start(Command::new(bin(10)).args([
        "fork",
        "--addr",
        "127.0.0.1:0",
    ]));
    let silent = TcpStream::connect(&server.addr).unwrap();
    server.wait_for("Connected with");
    for _ in 0..3 {
        let client = TcpStream::connect(&server.addr).unwrap();
        assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
        drop(client);
        server.wait_for("closed by the client");
    }
    // Three children have exited; only the silent client's is alive. A
    // child gone from /proc has been reaped (bounded wait: exit is quick).
    let children = || -> Vec<String> {
        let path =
            format!("/proc/{}/task/{}/children", server.pid(), server.pid());
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(5);
    while children().len() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(children().len(), 1, "zombies left: {:?}", children());
    drop(silent);
}

/// What a process per connection costs next to a thread: the demo prints
/// the ratio of the times on stderr (the median of five rounds). Printed
/// here, not asserted: on a loaded machine it is a figure, not a verdict.
#[test]
fn the_demo_reports_what_a_process_costs_next_to_a_thread() {
    let out = run(10, &[], b"");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ratio: f64 = stderr
        .split("a process each took ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ratio on stderr: {stderr}"));
    assert!(ratio > 0.0);
    eprintln!(
        "lesson 10: a process per connection took {ratio:.1} x a thread's time"
    );
}
