//! Lesson 11: a bounded thread pool, a connection limit and a graceful
//! shutdown.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::many_clients::{self, exchange};
use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, stable_demo, stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(11);
    assert!(
        transcript.contains(
            "send(fd 12, \"error: server busy\\n\", MSG_NOSIGNAL) = 19"
        )
    );
    assert!(transcript.contains("recv(fd 7, 4096) = -1 EAGAIN"));
    assert!(transcript.contains("recv() { job() }: 1 job at a time"));
    assert!(transcript.contains("then run it: all 4 jobs at once"));
    assert_eq!(transcript.matches("later no accept has returned").count(), 2);
    assert!(
        transcript.contains("recv(fd 7, 4096) = 13  (\"hello from C\\n\")")
    );
    snapshot!("lesson_11__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_11__help", help(11));
    snapshot!(
        "lesson_11__help_server",
        stdout_of(&run(11, &["server", "--help"], b""))
    );
}

#[test]
fn a_shutdown_line_ends_the_server_cleanly() {
    let mut server = Server::lesson(11, &[]);
    let client = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
    assert_eq!(exchange(&client, b"shutdown\n"), b"shutdown\n");
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    snapshot!("lesson_11__server", normalize(&server.transcript()));
}

#[test]
fn serves_many_clients_at_once() {
    let mut server = Server::lesson(
        11,
        &["--workers", "8", "--max-conns", "300", "--idle", "60"],
    );
    let report = many_clients::serve_them_all(&server.addr);
    eprintln!(
        "lesson 11: {} clients x {} lines in {:?}; the slow client got {} lines answered meanwhile",
        many_clients::CLIENTS,
        many_clients::LINES,
        report.elapsed,
        report.slow_lines
    );
    assert!(server.is_running());
}

#[test]
fn sigint_with_requests_in_flight_answers_them_all_and_exits_0() {
    // Two workers for six clients: four of them are still queued, their
    // requests unread, when the signal comes.
    let mut server =
        Server::lesson(11, &["--workers", "2", "--max-conns", "10"]);
    many_clients::shutdown_with_requests_in_flight(&mut server, 6);
}

#[test]
fn sigint_with_nobody_connected_exits_0() {
    let mut server = Server::lesson(11, &[]);
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGINT).unwrap();
    assert!(server.wait_exit().success());
    assert!(server.transcript().contains("SIGINT: shutting down"));
}

#[test]
fn python_clients_are_served() {
    let server = Server::lesson(11, &["--workers", "4", "--max-conns", "60"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("line_clients.py", &[&port, "50", "20"], b""));
    assert_eq!(
        out,
        "ok: 50 clients, 20 lines each, and an over-long line refused\n"
    );
}

#[test]
fn the_client_over_the_limit_is_told_and_closed() {
    let mut server =
        Server::lesson(11, &["--workers", "1", "--max-conns", "1"]);
    let first = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&first, b"first\n"), b"first\n");
    let second = TcpStream::connect(&server.addr).unwrap();
    let mut reply = Vec::new();
    (&second).read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"error: server busy\n");
    server.wait_for("the limit: refused");
    // The first client is still served.
    assert_eq!(exchange(&first, b"still here\n"), b"still here\n");
}

/// Pitfall 7: idle connections hold workers. The idle limit gives them back.
#[test]
fn an_idle_client_holds_a_worker_until_the_idle_limit() {
    let mut server = Server::lesson(
        11,
        &["--workers", "1", "--max-conns", "4", "--idle", "0.3"],
    );
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    server.wait_for("Connected with");
    let waiting = TcpStream::connect(&server.addr).unwrap();
    // Answered only once the idle client has been dropped.
    assert_eq!(exchange(&waiting, b"my turn?\n"), b"my turn?\n");
    server.wait_for("idle for 300 ms: closed");
    let mut buf = [0u8; 8];
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
}

#[test]
fn bind_to_a_port_in_use_fails_with_the_call_address_and_error() {
    let server = Server::lesson(11, &[]);
    let second = Command::new(bin(11))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-11: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    for (flag, value, why) in [
        ("--workers", "0", "must be from 1 to 10000"),
        ("--workers", "18446744073709551615", "must be from 1 to 10000"),
        ("--workers", "1000000000000", "must be from 1 to 10000"),
        ("--max-conns", "0", "must be from 1 to 1000000"),
        (
            "--idle",
            "1e19",
            "10000000000000000000 is not a number of seconds from 0.001 to 31536000",
        ),
    ] {
        let out = run(11, &["server", flag, value], b"");
        assert_eq!(out.status.code(), Some(1), "{flag} {value}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("lesson-11: {flag}: {why}\n")
        );
    }
}

/// The plain version: a fixed pool of workers. With one worker, a second
/// client waits until the first leaves: the bound the pool puts on threads.
#[test]
fn the_plain_pool_serves_clients_one_per_worker() {
    let mut server = Server::start(Command::new(bin(11)).args([
        "plain",
        "--addr",
        "127.0.0.1:0",
        "--workers",
        "1",
    ]));
    let first = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&first, b"first\n"), b"first\n");
    let second = TcpStream::connect(&server.addr).unwrap();
    (&second).write_all(b"second\n").unwrap();
    second.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let waiting = (&second).read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(waiting.kind(), ErrorKind::WouldBlock, "served at once");
    second.set_read_timeout(None).unwrap();
    drop(first);
    assert_eq!(exchange(&second, b""), b"second\n");
    assert!(server.is_running());
}
