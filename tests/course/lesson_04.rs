//! Lesson 4: a short send made on purpose, the write-all loop, std's
//! write_all, and Nagle's algorithm.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;

use transcript::{EVENTS_ENV, Event, Ret};

use crate::snapshot;
use crate::support::{
    Server, bin, help, python, run, run_with, stable_demo, stdout_of,
};

/// What the demo sends in one go, and the pattern every sender here uses.
const TOTAL: i64 = 1 << 20;

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(4);
    assert!(
        transcript.contains("getsockopt(fd 4, SO_SNDBUF) = 0  (value 8192)")
    );
    assert!(transcript.contains("= N  (short: N < 1048576)"));
    assert!(transcript.contains("in 2 sends: the loop ends"));
    assert!(transcript.contains("every byte arrived, in the order sent"));
    assert!(
        transcript.contains("send(fd 4, the rest, MSG_NOSIGNAL) = -1 EAGAIN")
    );
    assert!(
        transcript
            .contains("median round with Nagle slower by more than 10ms: yes")
    );
    snapshot!("lesson_04__demo", transcript);
}

/// The transcript shows the short count as `N`; the recorded events hold the
/// real numbers. They must say what the transcript claims: the first send
/// took some but not all, and the loop's one send took exactly the rest.
#[test]
fn the_short_count_the_transcript_calls_n_is_real() {
    let events_file = std::env::temp_dir()
        .join(format!("lesson-04-events-{}", std::process::id()));
    let out = run_with(Command::new(bin(4)).env(EVENTS_ENV, &events_file), b"");
    stdout_of(&out);
    let text = std::fs::read_to_string(&events_file).expect("events file");
    let _ = std::fs::remove_file(&events_file);
    let sends: Vec<Event> = text
        .lines()
        .filter_map(Event::from_line)
        .filter(|e| e.call == "send")
        .collect();
    let Ret::Value(n) = sends[0].ret else {
        panic!("the first send failed: {:?}", sends[0]);
    };
    assert!(0 < n && n < TOTAL, "N = {n}");
    assert_eq!(sends[1].ret, Ret::Value(TOTAL - n), "the loop sent the rest");
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_04__help", help(4));
    snapshot!(
        "lesson_04__help_server",
        stdout_of(&run(4, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_04__help_client",
        stdout_of(&run(4, &["client", "--help"], b""))
    );
}

/// Reads `stream` to EOF and checks the pattern.
fn read_pattern(mut stream: TcpStream) -> usize {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read to EOF");
    for (i, b) in all.iter().enumerate() {
        assert_eq!(*b, (i % 251) as u8, "byte {i} out of place");
    }
    all.len()
}

/// A client that does not read makes the server's sends short and then
/// EAGAIN; once it reads, the loop finishes and every byte arrives.
#[test]
fn sends_go_short_while_the_client_does_not_read_and_nothing_is_lost() {
    let mut server =
        Server::lesson(4, &["--size", "1048576", "--sndbuf", "4096"]);
    let stream = TcpStream::connect(&server.addr).expect("connect");
    server.wait_for("SO_SNDBUF: asked for 4096, the kernel set 8192");
    let short =
        server.wait_for("send: asked to take 1048576 bytes, the kernel took ");
    let took: usize = short.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(0 < took && took < 1 << 20, "{short}");
    server.wait_for("send would block after ");
    assert_eq!(read_pattern(stream), 1 << 20);
    let done = server.wait_for("Sent 1048576 bytes to ");
    assert!(
        done.contains("short") && done.contains("waits for room"),
        "{done}"
    );
}

#[test]
fn our_client_reads_everything_our_server_sends() {
    let mut server = Server::lesson(4, &["--size", "300000"]);
    let out = stdout_of(&run(
        4,
        &["client", "--addr", &server.addr, "--pause", "0.2"],
        b"",
    ));
    assert!(out.contains("Received 300000 bytes in "), "{out}");
    assert!(out.ends_with("Every byte arrived in the order sent\n"), "{out}");
    server.wait_for("Sent 300000 bytes to ");
}

#[test]
fn a_python_client_reads_everything_our_server_sends() {
    let mut server = Server::lesson(4, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("read_all.py", &[&port], b""));
    assert_eq!(out, "received 1048576 bytes, in order: True\n");
    server.wait_for("Sent 1048576 bytes to ");
}

/// A client that never reads cannot hold the server forever: after
/// `--timeout` with no room, the server drops it and serves the next one.
#[test]
fn a_client_that_stops_reading_is_dropped_and_the_server_goes_on() {
    let mut server = Server::lesson(4, &["--timeout", "2"]);
    let _stuck = TcpStream::connect(&server.addr).expect("connect");
    server.wait_for("stopped reading; closing");
    let next = TcpStream::connect(&server.addr).expect("connect");
    assert_eq!(read_pattern(next), 1 << 20);
    assert!(server.is_running());
}

#[test]
fn a_bad_timeout_is_refused_with_a_message() {
    let out = Command::new(bin(4))
        .args(["server", "--timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-04: --timeout: 0 is not a number of seconds from 0.001 to 31536000\n"
    );
}
