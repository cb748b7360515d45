//! Lesson 2: the article's server and client with raw socket2 calls.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;

use socket2::{Domain, Socket, Type};

use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, python, run, run_with, stable_demo, stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(2);
    assert!(transcript.contains("connected before the server accepted"));
    assert!(transcript.contains("= -1 EAGAIN"), "the timeout is an EAGAIN");
    snapshot!("lesson_02__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_02__help", help(2));
    snapshot!(
        "lesson_02__help_server",
        stdout_of(&run(2, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_02__help_client",
        stdout_of(&run(2, &["client", "--help"], b""))
    );
}

#[test]
fn our_client_talks_to_our_server() {
    let mut server = Server::lesson(2, &[]);
    let client =
        run(2, &["client", "--addr", &server.addr], b"hello\nsecond line\n\n");
    snapshot!("lesson_02__client", normalize(&stdout_of(&client)));
    server.wait_for("closed the connection");
    snapshot!("lesson_02__server", normalize(&server.transcript()));
}

#[test]
fn the_articles_python_client_talks_to_our_server() {
    let mut server = Server::lesson(2, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python(
        "article_client.py",
        &[&port],
        b"hello\nbytes, not str\n\n",
    ));
    assert_eq!(
        out,
        "Socket Created\nSocket Connected\nSend Successfully\nReply: hello\n\
         Send Successfully\nReply: bytes, not str\n"
    );
    server.wait_for("closed the connection");
    assert!(server.is_running());
}

#[test]
fn openbsd_nc_talks_to_our_server() {
    if !crate::support::have("nc") {
        return;
    }
    let mut server = Server::lesson(2, &[]);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    // -N: shut down our sending side at the end of stdin, so the server sees
    // end of stream, closes, and nc exits after printing the echo.
    let out = run_with(
        Command::new("nc").args(["-N", host, port]),
        b"hello from nc\n",
    );
    assert_eq!(stdout_of(&out), "hello from nc\n");
    server.wait_for("closed the connection");
}

#[test]
fn our_client_talks_to_a_python_server() {
    let mut server = Server::start(
        Command::new("python3")
            .arg(crate::support::root().join("tests/fixtures/echo_server.py")),
    );
    let client = run(2, &["client", "--addr", &server.addr], b"from rust\n\n");
    let out = stdout_of(&client);
    assert!(out.contains("Reply: from rust\n"), "{out}");
    server.wait_for("Done");
}

#[test]
fn a_silent_client_is_dropped_and_the_server_goes_on() {
    let mut server = Server::lesson(2, &["--timeout", "0.2"]);
    // A client that connects and never sends anything.
    let mut silent = TcpStream::connect(&server.addr).expect("connect");
    server.wait_for("No data from");
    // The server hung up on it: its read sees end of stream.
    let mut buf = [0u8; 16];
    assert_eq!(silent.read(&mut buf).expect("read"), 0);
    // And the next client is served.
    let out = stdout_of(&run(
        2,
        &["client", "--addr", &server.addr],
        b"still there?\n\n",
    ));
    assert!(out.contains("Reply: still there?\n"), "{out}");
    assert!(server.is_running());
}

#[test]
fn bind_to_a_port_in_use_fails_with_the_call_address_and_error() {
    let server = Server::lesson(2, &[]);
    let second = Command::new(bin(2))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-02: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
}

#[test]
fn connect_to_a_closed_port_fails_with_the_call_address_and_error() {
    // A port that is bound but not listening: nobody else can take it while
    // we hold it, and the kernel answers a SYN to it with RST.
    let holder = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    holder
        .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into())
        .unwrap();
    let addr = holder.local_addr().unwrap().as_socket().unwrap().to_string();
    let out = run(2, &["client", "--addr", &addr], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "lesson-02: connect {addr}: Connection refused (os error 111)\n"
        )
    );
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(2, &["server", "--timeout=-1"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-02: --timeout: -1 is not a number of seconds from 0.001 to 31536000\n"
    );
    let out = run(2, &["server", "--addr", "nowhere"], b"");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("invalid socket address syntax")
    );
}
