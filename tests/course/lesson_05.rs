//! Lesson 5: a byte stream, not messages; framing by newline and by length.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::thread;

use crate::snapshot;
use crate::support::{
    CHILD_LIMIT, Server, bin, help, normalize, root, run, stable_demo,
    stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(5);
    // One send, three recvs; two sends, one recv.
    assert!(transcript.contains("recv(fd 5, 8) = 4  (\"ecvs\")"));
    assert!(transcript.contains("recv(fd 5, 4096) = 8  (\"one\\ntwo\\n\")"));
    // Each framing answers the good frames before refusing the bad one.
    assert!(transcript.contains(
        "# reply \"error: frame too long: more than 32 bytes before a newline\""
    ));
    assert!(transcript.contains("# reply \"error: frame too long: 1195725856 bytes announced, at most 32\""));
    assert_eq!(transcript.matches("# reply \"echo: world\"").count(), 2);
    // The end of the stream is 0, and stays 0.
    assert!(transcript.contains("0 again, and forever"));
    snapshot!("lesson_05__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_05__help", help(5));
    snapshot!(
        "lesson_05__help_server",
        stdout_of(&run(5, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_05__help_client",
        stdout_of(&run(5, &["client", "--help"], b""))
    );
}

#[test]
fn our_client_talks_to_our_server_by_lines() {
    let mut server = Server::lesson(5, &[]);
    let client =
        run(5, &["client", "--addr", &server.addr], b"hello\nsecond line\n\n");
    snapshot!("lesson_05__client", normalize(&stdout_of(&client)));
    server.wait_for("closed the connection");
    snapshot!("lesson_05__server", normalize(&server.transcript()));
}

#[test]
fn our_client_talks_to_our_server_by_length() {
    let mut server = Server::lesson(5, &["--framing", "length"]);
    let out = stdout_of(&run(
        5,
        &["client", "--addr", &server.addr, "--framing", "length"],
        b"hello\n\n",
    ));
    assert!(out.contains("Send Successfully (9 bytes)\n"), "{out}");
    assert!(out.contains("Reply: echo: hello\n"), "{out}");
    server.wait_for("frame from 127.0.0.1:");
    server.wait_for("closed the connection");
}

/// A reply dribbled out one byte per send is still one reply to our
/// client, which reads until the frame is whole.
#[test]
fn our_client_reassembles_a_reply_split_into_bytes() {
    let mut server = Server::start(
        Command::new("python3")
            .arg(root().join("tests/fixtures/dribble_server.py")),
    );
    let out = stdout_of(&run(
        5,
        &["client", "--addr", &server.addr],
        b"one reply, many pieces\n\n",
    ));
    assert!(out.contains("Reply: echo: one reply, many pieces\n"), "{out}");
    server.wait_for("Done");
}

/// Runs `framing_peer.py --lockstep` against `server`: whenever the peer
/// has sent one piece of a split frame, wait until the server has read
/// exactly those bytes, then let the peer send the next. Returns what the
/// peer printed, the "sent N" lines left out.
fn lockstep_peer(server: &mut Server, framing: &str, max: usize) -> String {
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let mut peer = Command::new("python3")
        .arg(root().join("tests/fixtures/framing_peer.py"))
        .args([port.as_str(), framing, &max.to_string(), "--lockstep"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let mut go = peer.stdin.take().unwrap();
    let (tx, lines) = channel();
    let stdout = peer.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = String::new();
    let mut pieces = 0;
    while let Ok(line) = lines.recv_timeout(CHILD_LIMIT) {
        if let Some(n) = line.strip_prefix("sent ") {
            server.wait_for(&format!(": {n} bytes "));
            pieces += 1;
            go.write_all(b"go\n").expect("tell the peer to go on");
        } else {
            printed.push_str(&line);
            printed.push('\n');
        }
    }
    let status = peer.wait().expect("wait for python3");
    assert!(status.success(), "framing_peer.py failed; it printed:\n{printed}");
    assert!(pieces > 10, "only {pieces} pieces were sent one at a time");
    printed
}

#[test]
fn a_python_peer_tries_every_split_merges_and_bad_frames_by_lines() {
    let mut server = Server::lesson(5, &["--max-frame", "16"]);
    let out = lockstep_peer(&mut server, "line", 16);
    assert_eq!(
        out,
        "split: 9 ways, each answered 'echo: split me'\n\
         merged: echo: one | echo: two | echo: three\n\
         oversized: echo: before | error: frame too long: more than 16 bytes before a newline | EOF\n\
         garbage: echo: before | error: frame is not UTF-8 text | EOF\n\
         not text: echo: before | error: frame is not UTF-8 text | EOF\n\
         truncated: echo: before | error: connection closed in the middle of a frame | EOF\n"
    );
    assert!(server.is_running());
}

#[test]
fn a_python_peer_tries_every_split_merges_and_bad_frames_by_length() {
    let mut server =
        Server::lesson(5, &["--framing", "length", "--max-frame", "16"]);
    let out = lockstep_peer(&mut server, "length", 16);
    assert_eq!(
        out,
        "split: 12 ways, each answered 'echo: split me'\n\
         merged: echo: one | echo: two | echo: three\n\
         oversized: echo: before | error: frame too long: 17 bytes announced, at most 16 | EOF\n\
         garbage: echo: before | error: frame too long: 1195725856 bytes announced, at most 16 | EOF\n\
         not text: echo: before | error: frame is not UTF-8 text | EOF\n\
         truncated: echo: before | error: connection closed in the middle of a frame | EOF\n"
    );
    assert!(server.is_running());
}

/// A peer that sends a megabyte without a newline is refused once the
/// frame passes the maximum; the server neither waits for the newline nor
/// keeps the megabyte, and the next client is served.
#[test]
fn a_flood_without_a_newline_is_refused_and_the_server_goes_on() {
    let mut server = Server::lesson(5, &["--max-frame", "100"]);
    let mut flood = TcpStream::connect(&server.addr).expect("connect");
    let writer = {
        let mut flood = flood.try_clone().unwrap();
        // The server stops reading after a while; then this write fails.
        thread::spawn(move || {
            let _ = flood.write_all(&vec![b'x'; 1 << 20]);
            let _ = flood.shutdown(Shutdown::Write);
        })
    };
    server.wait_for("bad frame from 127.0.0.1:");
    let mut reply = Vec::new();
    // The reply may be followed by a reset, once the server closes with
    // part of the megabyte unread: read what comes, an error ends it.
    let mut buf = [0u8; 256];
    while let Ok(n) = flood.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let _ = writer.join();
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.is_empty()
            || reply
                == "error: frame too long: more than 100 bytes before a newline\n",
        "{reply:?}"
    );
    server.wait_for("closed the connection with");
    let out =
        stdout_of(&run(5, &["client", "--addr", &server.addr], b"next\n\n"));
    assert!(out.contains("Reply: echo: next\n"), "{out}");
}

/// A length header announcing a gigabyte is refused at once: the server
/// does not wait for the gigabyte to arrive.
#[test]
fn a_huge_length_is_refused_without_waiting_for_its_bytes() {
    let server = Server::lesson(5, &["--framing", "length", "--timeout", "60"]);
    let mut stream = TcpStream::connect(&server.addr).expect("connect");
    stream.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("read the reply, then EOF");
    let text =
        "error: frame too long: 1073741824 bytes announced, at most 1024";
    let mut expected = (text.len() as u32).to_be_bytes().to_vec();
    expected.extend_from_slice(text.as_bytes());
    assert_eq!(reply, expected);
}

#[test]
fn a_bad_max_frame_is_refused_with_a_message() {
    let out = Command::new(bin(5))
        .args(["server", "--max-frame", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("expected a number of bytes from 1 to 1048576"),
        "{err}"
    );
}
