//! Lesson 12: non-blocking sockets and poll: one thread serves every client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::many_clients::{self, exchange};
use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, stable_demo, stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(12);
    // B is answered in the same turn that finds A's line unfinished.
    assert!(transcript.contains("= 2  (fd 8: POLLIN; fd 9: POLLIN)"));
    assert!(transcript.contains("(fd 7: POLLIN|POLLERR|POLLHUP)"));
    assert!(transcript.contains("= -1 ECONNRESET"));
    assert!(transcript.contains("fd 7 POLLIN|POLLOUT"));
    assert!(transcript.contains("E reads: 25 replies, all in order"));
    assert!(transcript.contains("poll([fd 8 POLLIN], 1, 0) = 0"));
    assert!(transcript.contains("write_all(100000 bytes) = Err(WouldBlock)"));
    assert!(transcript.contains("some, not all,"));
    assert!(
        transcript
            .contains("F's request, sent before the signal, was answered")
    );
    // read_exact took 6 bytes, failed, and only the last 4 were left.
    assert!(transcript.contains("read_exact returns Err(WouldBlock)"));
    assert!(transcript.contains(", 16) = 4  (\"6789\")"));
    // select watches fd 3, refuses fd 1024 (no call made), poll takes it.
    assert!(transcript.contains("select(4, [fd 3], NULL, NULL, NULL) = 1"));
    assert!(transcript.contains("fd 1024 is not below FD_SETSIZE (1024)"));
    assert!(!transcript.contains("select(1025"));
    assert!(transcript.contains("poll([fd 1024 POLLIN], 1, -1) = 1"));
    snapshot!("lesson_12__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_12__help", help(12));
    snapshot!(
        "lesson_12__help_server",
        stdout_of(&run(12, &["server", "--help"], b""))
    );
}

#[test]
fn a_shutdown_line_ends_the_server_cleanly() {
    let mut server = Server::lesson(12, &[]);
    let client = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
    assert_eq!(exchange(&client, b"shutdown\n"), b"shutdown\n");
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // The server's close lingers until its client closes too (lesson 10):
    // a client that kept its socket open would hold it to the idle limit.
    drop(client);
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    snapshot!("lesson_12__server", normalize(&server.transcript()));
}

#[test]
fn serves_many_clients_at_once() {
    let mut server =
        Server::lesson(12, &["--max-conns", "300", "--idle", "60"]);
    let report = many_clients::serve_them_all(&server.addr);
    eprintln!(
        "lesson 12: {} clients x {} lines in {:?}; the slow client got {} lines answered meanwhile",
        many_clients::CLIENTS,
        many_clients::LINES,
        report.elapsed,
        report.slow_lines
    );
    assert!(server.is_running());
}

#[test]
fn sigint_with_requests_in_flight_answers_them_all_and_exits_0() {
    let mut server = Server::lesson(12, &["--max-conns", "10"]);
    many_clients::shutdown_with_requests_in_flight(&mut server, 6);
}

#[test]
fn sigint_with_nobody_connected_exits_0() {
    let mut server = Server::lesson(12, &[]);
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGINT).unwrap();
    assert!(server.wait_exit().success());
    assert!(server.transcript().contains("a shutdown signal"));
}

#[test]
fn python_clients_are_served() {
    let server = Server::lesson(12, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("line_clients.py", &[&port, "50", "20"], b""));
    assert_eq!(
        out,
        "ok: 50 clients, 20 lines each, and an over-long line refused\n"
    );
}

#[test]
fn the_client_over_the_limit_is_told_and_closed() {
    let mut server = Server::lesson(12, &["--max-conns", "1"]);
    let first = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&first, b"first\n"), b"first\n");
    let second = TcpStream::connect(&server.addr).unwrap();
    let mut reply = Vec::new();
    (&second).read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"error: server busy\n");
    server.wait_for("the limit: refused");
    assert_eq!(exchange(&first, b"still here\n"), b"still here\n");
}

/// An idle client costs no thread here: the others are served at once,
/// and the idle limit still closes it.
#[test]
fn an_idle_client_is_dropped_and_holds_up_nobody() {
    let mut server = Server::lesson(12, &["--idle", "0.3"]);
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    let other = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&other, b"no waiting\n"), b"no waiting\n");
    server.wait_for("idle for 300 ms: closed");
    let mut buf = [0u8; 8];
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
}

#[test]
fn bind_to_a_port_in_use_fails_with_the_call_address_and_error() {
    let server = Server::lesson(12, &[]);
    let second = Command::new(bin(12))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-12: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(12, &["server", "--idle=-3"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-12: --idle: -3 is not a number of seconds from 0.001 to 31536000\n"
    );
}

/// The plain loop (`src/plain.rs`): one thread serves several clients at
/// once; a client's unfinished line holds up no one, and a client that
/// closes is dropped while the others go on.
#[test]
fn the_plain_loop_serves_several_clients_from_one_thread() {
    let mut server = Server::start(Command::new(bin(12)).args([
        "plain",
        "--addr",
        "127.0.0.1:0",
    ]));
    let slow = TcpStream::connect(&server.addr).unwrap();
    let other = TcpStream::connect(&server.addr).unwrap();
    (&slow).write_all(b"half a ").unwrap();
    assert_eq!(exchange(&other, b"at once\n"), b"at once\n");
    // Echoed as it came: "half a " was sent back in the meantime.
    assert_eq!(exchange(&slow, b"line\n"), b"half a line\n");
    drop(other);
    let third = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&third, b"third\n"), b"third\n");
    assert_eq!(exchange(&slow, b"still\n"), b"still\n");
    server.wait_for("Connected with");
    assert!(server.is_running());
}
