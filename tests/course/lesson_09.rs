//! Lesson 9: timeouts, and a server that survives them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use regex::Regex;
use socket2::{Domain, Socket, Type};

use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, stable_run, stdout_of,
};

/// The demo waits for real (a slow client, keepalive probes): about 4 s a
/// run, so fewer runs than other lessons; each run still has to match.
const DEMO_RUNS: usize = 8;

/// The one count in the transcript that depends on the kernel rather than
/// on the lesson: how many bytes fitted in the buffers before the write
/// timeout. It is checked to be a short count, then replaced.
fn without_partial_count(transcript: &str) -> String {
    let send = Regex::new(r"(send\(fd \d+, 1048576 bytes\) = )(\d+)").unwrap();
    let caps = send.captures(transcript).expect("the demo's first big send");
    let n: usize = caps[2].parse().unwrap();
    assert!(n > 0 && n < 1048576, "a short count, not {n}");
    send.replace(transcript, "${1}[PARTIAL]").into_owned()
}

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_run(9, &[], DEMO_RUNS);
    // A read timeout is EAGAIN (WouldBlock) on Linux, and the server goes on.
    assert!(transcript.contains(
        "recv(fd 5, 4096) = -1 EAGAIN  (Resource temporarily unavailable; ErrorKind::WouldBlock)\n      # no byte in 50 ms"
    ));
    assert!(
        transcript.contains(
            "# served: the timeout cost one connection, not the server"
        )
    );
    // A write timeout: a short count, then EAGAIN.
    assert!(transcript.contains("1048576 bytes) = -1 EAGAIN"));
    // Accept and connect time out too; a timed-out blocking connect says EINPROGRESS.
    assert!(transcript.contains("accept(fd 3) = -1 EAGAIN"));
    assert!(transcript.contains("POLLOUT], 50 ms) = 0"));
    assert_eq!(transcript.matches("= -1 EINPROGRESS").count(), 2);
    // The slow client never trips the read timeout; the deadline stops it.
    assert!(transcript.contains("longer than 300 ms in all: yes"));
    assert_eq!(transcript.matches("recv(fd 5, 4096) = 1  (").count(), 6);
    assert!(
        transcript.contains("# 500 ms since the first byte and no newline")
    );
    // Keepalive turns a vanished peer into ETIMEDOUT; a heartbeat catches a hung one.
    assert!(transcript.contains("(tcpi_state 1: ESTABLISHED)"));
    assert_eq!(
        transcript
            .matches(
                "= -1 ETIMEDOUT  (Connection timed out; ErrorKind::TimedOut)"
            )
            .count(),
        1
    );
    assert!(
        transcript
            .contains("# no answer in 300 ms: declare the peer dead and close")
    );
    snapshot!("lesson_09__demo", without_partial_count(&transcript));
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_09__help", help(9));
    snapshot!(
        "lesson_09__help_server",
        stdout_of(&run(9, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_09__help_plain",
        stdout_of(&run(9, &["plain", "--help"], b""))
    );
    snapshot!(
        "lesson_09__help_client",
        stdout_of(&run(9, &["client", "--help"], b""))
    );
}

/// How many descriptors process `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list /proc/<pid>/fd")
        .count()
}

/// The article's server dies of the first timeout. This one closes a slow
/// client (half a line, then nothing) and an idle one (nothing at all),
/// serves the well-behaved client queued behind them, leaks no descriptor,
/// and still answers afterwards.
#[test]
fn slow_and_idle_clients_do_not_stop_the_server() {
    let mut server = Server::lesson(9, &["--idle", "0.3", "--deadline", "5"]);
    let before = open_fds(server.pid());

    // They connect in this order, so the server takes them in this order.
    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    slow.write_all(b"hal").expect("half a line");
    let mut idle = TcpStream::connect(&server.addr).expect("connect");
    let good = run(9, &["client", "--addr", &server.addr], b"hello\n\n");
    let out = stdout_of(&good);
    assert!(out.contains("Reply: hello\n"), "{out}");

    assert!(server.wait_for("Closed ").ends_with(": idle for 300ms"));
    assert!(server.wait_for("Closed ").ends_with(": idle for 300ms"));
    assert!(
        server
            .wait_for("Closed ")
            .ends_with(": the client closed the connection")
    );
    // Each closed connection gave its descriptor back.
    assert_eq!(open_fds(server.pid()), before, "descriptors leaked");
    // The slow and idle clients see the server hang up: end of stream.
    let mut buf = [0u8; 8];
    assert_eq!(slow.read(&mut buf).expect("read"), 0);
    assert_eq!(idle.read(&mut buf).expect("read"), 0);

    // Still alive, still answering.
    let out = stdout_of(&run(
        9,
        &["client", "--addr", &server.addr],
        b"still there?\n\n",
    ));
    assert!(out.contains("Reply: still there?\n"), "{out}");
    server.wait_for("Closed ");
    assert!(server.is_running());
    assert_eq!(open_fds(server.pid()), before, "descriptors leaked");
    snapshot!("lesson_09__server", normalize(&server.transcript()));
}

/// One byte every 100 ms never trips a 500 ms idle timeout; the 1 s
/// deadline per request stops it.
#[test]
fn a_slow_drip_is_stopped_by_the_deadline_not_the_idle_timeout() {
    let mut server = Server::lesson(9, &["--idle", "0.5", "--deadline", "1"]);
    let stream = TcpStream::connect(&server.addr).expect("connect");
    let drip = thread::spawn(move || {
        let mut stream = stream;
        // At most 5 s of dripping; the server should hang up after about 1 s.
        for _ in 0..50 {
            if stream.write_all(b"x").is_err() {
                return true;
            }
            thread::sleep(Duration::from_millis(100));
        }
        false
    });
    let closed = server.wait_for("Closed ");
    assert!(closed.ends_with(": request deadline of 1s passed"), "{closed}");
    assert!(drip.join().unwrap(), "the server never hung up");
    assert!(server.is_running());
}

#[test]
fn our_client_talks_to_our_server() {
    let mut server = Server::lesson(9, &[]);
    let client =
        run(9, &["client", "--addr", &server.addr], b"hello\nsecond line\n\n");
    snapshot!("lesson_09__client", normalize(&stdout_of(&client)));
    server.wait_for("Closed ");
}

#[test]
fn the_articles_python_client_talks_to_our_server() {
    let mut server = Server::lesson(9, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out =
        stdout_of(&python("article_client.py", &[&port], b"one\ntwo\n\n"));
    assert_eq!(
        out,
        "Socket Created\nSocket Connected\nSend Successfully\nReply: one\nSend Successfully\nReply: two\n"
    );
    server.wait_for("Closed ");
    assert!(server.is_running());
}

/// Lesson 8's full accept queue makes a connect stall; the client's
/// --timeout turns that into a clear failure instead of a two-minute wait.
#[test]
fn the_client_gives_up_on_a_connect_that_stalls() {
    let full = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    full.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    full.listen(0).unwrap();
    let addr = full.local_addr().unwrap().as_socket().unwrap().to_string();
    // Backlog 0 holds one connection; nobody accepts it.
    let _first = TcpStream::connect(&addr).expect("connect");
    let out = run(9, &["client", "--addr", &addr, "--timeout", "0.2"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("lesson-09: connect {addr}: no answer within 200ms\n")
    );
}

/// Every duration flag is refused with one line and status 1 when it is
/// not from 1 ms to a year: `--idle 1e-7` rounded to a zero SO_RCVTIMEO,
/// which means "never", and `--deadline 1e19` overflowed `Instant + Duration`
/// at the first client (a panic, exit 101).
#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    for (args, shown) in [
        (&["server", "--idle", "0"][..], "--idle: 0"),
        (&["server", "--idle", "1e-7"], "--idle: 0.0000001"),
        (&["server", "--deadline", "1e19"], "--deadline: 10000000000000000000"),
        (&["plain", "--timeout", "1e-7"], "--timeout: 0.0000001"),
        (&["plain", "--timeout", "inf"], "--timeout: inf"),
        (&["client", "--timeout=-2"], "--timeout: -2"),
        (&["client", "--timeout", "1e19"], "--timeout: 10000000000000000000"),
    ] {
        let out = run(9, args, b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "lesson-09: {shown} is not a number of seconds \
                 from 0.001 to 31536000\n"
            ),
            "{args:?}"
        );
    }
}

/// The plain server (`plain.rs`, the chapter's first listing): it echoes,
/// drops a client that stays quiet for `--timeout`, and then serves the
/// next one, which waited in the accept queue meanwhile.
#[test]
fn the_plain_server_drops_a_quiet_client_and_serves_the_next() {
    let server = Server::start(Command::new(bin(9)).args([
        "plain",
        "--addr",
        "127.0.0.1:0",
        "--timeout",
        "0.3",
    ]));
    let patience = Some(Duration::from_secs(10));
    let mut quiet = TcpStream::connect(&server.addr).expect("connect");
    quiet.set_read_timeout(patience).unwrap();
    let mut next = TcpStream::connect(&server.addr).expect("connect");
    next.set_read_timeout(patience).unwrap();
    next.write_all(b"hello\n").expect("send");
    // The quiet client sees the server hang up: end of stream.
    let mut buf = [0u8; 16];
    assert_eq!(quiet.read(&mut buf).expect("read"), 0);
    let mut echo = [0u8; 6];
    next.read_exact(&mut echo).expect("the echo");
    assert_eq!(&echo, b"hello\n");
    drop(server);
}

/// The chapter shows the demo one part at a time, each part a line range
/// of the snapshot. A range must be one whole section (from its `-- ... --`
/// heading, or the column header for the first, to the line before the
/// next blank line), so that a demo that gains or loses a line fails here
/// instead of showing half a part.
#[test]
fn the_chapters_parts_are_whole_sections_of_the_transcript() {
    let root = crate::support::root();
    let chapter = std::fs::read_to_string(root.join("book/src/lesson-09.md"))
        .expect("the chapter");
    let snapshot = std::fs::read_to_string(
        root.join("tests/snapshots/lesson_09__demo.snap"),
    )
    .expect("the snapshot");
    let lines: Vec<&str> = snapshot.lines().collect();
    let range = Regex::new(r"lesson_09__demo\.snap:(\d+):(\d*)\}\}").unwrap();
    let mut parts = 0;
    for cap in range.captures_iter(&chapter) {
        let start: usize = cap[1].parse().unwrap();
        let end: usize = cap[2].parse().unwrap_or(lines.len());
        if start == 4 && end == lines.len() {
            continue; // the whole transcript
        }
        parts += 1;
        let first = lines[start - 1];
        assert!(
            first.starts_with("-- ") || first.starts_with("step  "),
            "part {start}:{end} starts with {first:?}"
        );
        assert!(
            end == lines.len() || lines[end].is_empty(),
            "part {start}:{end} ends before {:?}",
            lines[end]
        );
    }
    assert_eq!(parts, 8, "one range per part of the demo");
}
