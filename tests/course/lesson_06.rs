//! Lesson 6: ending a conversation.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, run_with, stable_demo, stdout_of,
};

/// The lines of `transcript` from the section titled `title` to the next.
fn section<'a>(transcript: &'a str, title: &str) -> Vec<&'a str> {
    transcript
        .lines()
        .skip_while(|l| *l != format!("-- {title} --"))
        .skip(1)
        .take_while(|l| !l.starts_with("-- "))
        .collect()
}

/// Index of the first line containing `needle`, failing with the section.
fn find(lines: &[&str], needle: &str) -> usize {
    lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| {
        panic!("no line with {needle:?} in:\n{}", lines.join("\n"))
    })
}

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(6);

    // Half-close: the server reads the request, then end of stream, and
    // still answers; the client, which sent the first FIN, is in TIME_WAIT.
    let half =
        section(&transcript, "shutdown(Write): done sending, still listening");
    let shut = find(&half, "shutdown(fd 4, SHUT_WR) = 0");
    let eof = find(&half, "recv(fd 5, 4096) = 0");
    let reply =
        find(&half, "send(fd 5, \"got 21 bytes\\n\", MSG_NOSIGNAL) = 13");
    assert!(shut < eof && eof < reply, "{}", half.join("\n"));
    find(&half, "-> 127.0.0.1:[PORT]: TIME_WAIT");

    // SO_LINGER 0: the client's read is a reset, and nothing is left behind.
    let abort = section(&transcript, "SO_LINGER 0: close sends RST");
    find(
        &abort,
        "recv(fd 4, 4096) = -1 ECONNRESET  (Connection reset by peer; ErrorKind::ConnectionReset)",
    );
    assert_eq!(abort.iter().filter(|l| l.ends_with(": no entry")).count(), 2);

    // Unread data: the full reply arrives, then a reset instead of the end.
    let unread = section(
        &transcript,
        "close with unread data sends RST, even after a full reply",
    );
    let reply = find(
        &unread,
        "recv(fd 4, 4096) = 25  (\"here is your whole reply\\n\")",
    );
    let reset = find(&unread, "recv(fd 4, 4096) = -1 ECONNRESET");
    assert!(reply < reset);
    assert!(unread[reset].contains("ErrorKind::ConnectionReset"));
    // The fix: the same reply, then a clean end of stream.
    let fixed =
        section(&transcript, "the fix: shutdown(Write), drain, then close");
    let reply = find(&fixed, "recv(fd 4, 4096) = 25");
    assert!(fixed[reply + 1].trim_end().ends_with("recv(fd 4, 4096) = 0"));
    assert!(!fixed.iter().any(|l| l.contains("ECONNRESET")));
    find(&fixed, "recv(fd 5, 4096) = 1536");

    // A write to a closed peer: Ok, the RST comes back, then EPIPE from
    // std (MSG_NOSIGNAL) and from socket2 (flags 0), and the process lives.
    let epipe = section(&transcript, "writing to a peer that has closed");
    let first =
        find(&epipe, "send(fd 5, \"a late reply\\n\", MSG_NOSIGNAL) = 13");
    let rst = find(&epipe, "= 1  (revents POLLERR|POLLHUP)");
    let second = find(
        &epipe,
        "send(fd 5, \"a late reply\\n\", MSG_NOSIGNAL) = -1 EPIPE  (Broken pipe; ErrorKind::BrokenPipe)",
    );
    let third = find(
        &epipe,
        "send(fd 5, \"a late reply\\n\", 0) = -1 EPIPE  (Broken pipe; ErrorKind::BrokenPipe)",
    );
    assert!(first < rst && rst < second && second < third);
    find(&epipe, "SIGPIPE ignored by this process: yes");

    // A panic halfway: the client reads the part, then a clean end.
    let panic = section(
        &transcript,
        "a handler panics halfway: the peer sees a clean end",
    );
    let part = find(&panic, "recv(fd 4, 4096) = 14  (\"numbers: 1 2 3\")");
    assert!(panic[part + 1].trim_end().ends_with("recv(fd 4, 4096) = 0"));

    // try_clone: closing one of two fds sends nothing.
    let clone = section(&transcript, "a try_clone keeps the connection open");
    find(&clone, "poll([{fd 4, POLLIN}], 1, 100 ms) = 0");

    snapshot!("lesson_06__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_06__help", help(6));
    snapshot!(
        "lesson_06__help_server",
        stdout_of(&run(6, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_06__help_broken_pipe",
        stdout_of(&run(6, &["broken-pipe", "--help"], b""))
    );
}

#[test]
fn our_half_closing_client_gets_its_answer_from_our_server() {
    let mut server = Server::lesson(6, &[]);
    let client = run(6, &["client", "--addr", &server.addr], b"hello\nworld\n");
    snapshot!("lesson_06__client", normalize(&stdout_of(&client)));
    server.wait_for("Closed");
    snapshot!("lesson_06__server", normalize(&server.transcript()));
}

#[test]
fn a_python_client_that_half_closes_gets_its_answer() {
    let mut server = Server::lesson(6, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out =
        stdout_of(&python("half_close_client.py", &[&port], b"from python\n"));
    assert_eq!(out, "Reply: received 12 bytes\n");
    server.wait_for("Closed");
    assert!(server.is_running());
}

#[test]
fn openbsd_nc_with_n_half_closes_and_gets_its_answer() {
    if !crate::support::have("nc") {
        return;
    }
    let mut server = Server::lesson(6, &[]);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    // -N: shutdown(SHUT_WR) at the end of stdin, then read until the server
    // closes. Without it, nc would neither end the request nor exit.
    let out = run_with(
        Command::new("nc").args(["-N", host, port]),
        b"hello from nc\n",
    );
    assert_eq!(stdout_of(&out), "received 14 bytes\n");
    server.wait_for("Closed");
}

#[test]
fn an_aborting_server_makes_the_clients_read_fail_with_connection_reset() {
    let mut server = Server::lesson(6, &["--abort"]);
    // The real lesson client: one line naming the call, address and error.
    let out = run(6, &["client", "--addr", &server.addr], b"hello\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "lesson-06: recv {}: Connection reset by peer (os error 104)\n",
            server.addr
        )
    );
    server.wait_for("aborted with RST");
    // The same reset as a Rust program sees it: ErrorKind::ConnectionReset.
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    stream.write_all(b"hello\n").expect("send");
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let mut reply = Vec::new();
    let err = stream.read_to_end(&mut reply).expect_err("a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(reply.is_empty());
    server.wait_for("aborted with RST");
    assert!(server.is_running());
}

#[test]
fn a_client_that_never_half_closes_is_dropped_and_the_server_goes_on() {
    let mut server = Server::lesson(6, &["--timeout", "0.2"]);
    // Sends a request but never says it is complete.
    let mut open = TcpStream::connect(&server.addr).expect("connect");
    open.write_all(b"no end in sight").expect("send");
    server.wait_for("No end of request from");
    let mut buf = [0u8; 16];
    assert_eq!(open.read(&mut buf).expect("read"), 0, "the server hung up");
    let out =
        stdout_of(&run(6, &["client", "--addr", &server.addr], b"next\n"));
    assert!(out.contains("Reply: received 5 bytes\n"), "{out}");
}

/// The second write to a closed peer: EPIPE as `BrokenPipe`, unless
/// SIGPIPE is at its default and the send lacks MSG_NOSIGNAL, which kills.
#[test]
fn the_second_write_gets_broken_pipe_or_sigpipe() {
    let epipe = "= -1 EPIPE  (Broken pipe; ErrorKind::BrokenPipe)";
    for args in [
        &["broken-pipe"][..],
        &["broken-pipe", "--send", "socket2"],
        &["broken-pipe", "--sigpipe", "default", "--send", "std"],
    ] {
        let out = run(6, args, b"");
        let text = stdout_of(&out);
        assert!(text.contains(epipe), "{args:?}:\n{text}");
        assert!(text.contains("still alive"), "{args:?}:\n{text}");
    }

    let killed = run(
        6,
        &["broken-pipe", "--sigpipe", "default", "--send", "socket2"],
        b"",
    );
    assert_eq!(killed.status.signal(), Some(13), "killed by SIGPIPE");
    assert_eq!(killed.status.code(), None);
    let text = String::from_utf8_lossy(&killed.stdout);
    assert!(!text.contains("EPIPE"), "{text}");
    assert!(text.trim_end().ends_with("(revents POLLERR|POLLHUP)"), "{text}");
    // The first write went through; the process died in the second.
    assert!(text.contains("send(fd 5, \"a late reply\\n\", 0) = 13"));
    snapshot!("lesson_06__broken_pipe_killed", normalize(&text));
}

/// What the chapter says about the flags, checked against the kernel:
/// std sends with MSG_NOSIGNAL and no SIGPIPE is raised; socket2 sends with
/// flags 0 and the kernel raises SIGPIPE (which Rust's runtime ignores).
#[test]
fn std_sends_with_msg_nosignal_and_socket2_raises_sigpipe() {
    if Command::new("strace").arg("-V").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "strace is required in CI");
        eprintln!("strace is not installed: skipping the SIGPIPE check");
        return;
    }
    let trace = |send: &str| {
        let out = run_with(
            Command::new("strace")
                .args([
                    "-f",
                    "-qq",
                    "-e",
                    "trace=sendto",
                    "-e",
                    "signal=SIGPIPE",
                ])
                .args(["-o", "/dev/stderr"])
                .arg(bin(6))
                .args(["broken-pipe", "--send", send]),
            b"",
        );
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
    };

    let std = trace("std");
    assert_eq!(
        std,
        [
            "sendto(5, \"a late reply\\n\", 13, MSG_NOSIGNAL, NULL, 0) = 13",
            "sendto(5, \"a late reply\\n\", 13, MSG_NOSIGNAL, NULL, 0) = -1 EPIPE (Broken pipe)",
        ]
    );

    let socket2 = trace("socket2");
    assert_eq!(socket2.len(), 3, "{socket2:#?}");
    assert_eq!(
        socket2[..2],
        [
            "sendto(5, \"a late reply\\n\", 13, 0, NULL, 0) = 13",
            "sendto(5, \"a late reply\\n\", 13, 0, NULL, 0) = -1 EPIPE (Broken pipe)",
        ]
    );
    assert!(
        socket2[2]
            .starts_with("--- SIGPIPE {si_signo=SIGPIPE, si_code=SI_USER"),
        "{socket2:#?}"
    );
}
