//! Lesson 14: UDP datagrams, an echo server and a client that retries.

use std::net::UdpSocket;
use std::process::Command;

use crate::snapshot;
use crate::support::{
    Server, bin, help, normalize, run, run_with, stable_demo, stdout_of,
};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(14);
    assert!(transcript.contains("= -1 ECONNREFUSED"), "ICMP, reported");
    assert!(transcript.contains("= -1 EACCES"), "broadcast needs a flag");
    assert!(
        transcript.contains("arrived N + dropped D = 500 sent, D > 0"),
        "the kernel's drop counter accounts for every datagram lost"
    );
    snapshot!("lesson_14__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_14__help", help(14));
    snapshot!(
        "lesson_14__help_server",
        stdout_of(&run(14, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_14__help_client",
        stdout_of(&run(14, &["client", "--help"], b""))
    );
}

#[test]
fn our_client_talks_to_our_server() {
    let mut server = Server::lesson(14, &[]);
    let client =
        run(14, &["client", "--addr", &server.addr], b"hello\nsecond line\n\n");
    snapshot!("lesson_14__client", normalize(&stdout_of(&client)));
    server.wait_for("second line");
    snapshot!("lesson_14__server", normalize(&server.transcript()));
}

#[test]
fn a_python_peer_talks_to_our_server_and_our_client_to_a_python_server() {
    let mut server = Server::lesson(14, &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let client = "import socket, sys\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.settimeout(10)\n\
        s.sendto(b'one', ('127.0.0.1', int(sys.argv[1])))\n\
        s.sendto(b'two', ('127.0.0.1', int(sys.argv[1])))\n\
        print(s.recvfrom(100)[0], s.recvfrom(100)[0])\n";
    let out =
        run_with(Command::new("python3").args(["-c", client, &port]), b"");
    assert_eq!(stdout_of(&out), "b'one' b'two'\n");
    server.wait_for("\"two\"");

    // A Python echo server that prints its port, then answers one datagram.
    let echo = "import socket\n\
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s.bind(('127.0.0.1', 0))\n\
        print('Listening on 127.0.0.1:%d' % s.getsockname()[1], flush=True)\n\
        data, peer = s.recvfrom(65535)\n\
        s.sendto(data, peer)\n\
        print('Done', flush=True)\n";
    let mut python = Server::start(Command::new("python3").args(["-c", echo]));
    let out = run(14, &["client", "--addr", &python.addr], b"from rust\n\n");
    let out = stdout_of(&out);
    assert!(out.contains("Reply: from rust\n"), "{out}");
    python.wait_for("Done");
}

#[test]
fn a_server_that_never_answers_gets_a_bounded_number_of_tries() {
    // Bound, so nobody else takes the port, and never read.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let args = ["client", "--addr", &addr, "--timeout", "0.05", "--tries", "3"];
    let out = run(14, &args, b"hello\n");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("No reply within 50ms: sending again").count(),
        2
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-14: no reply: 3 tries, 50ms each\n"
    );
    // Three datagrams arrived: the client sent each try.
    silent.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let got = (0..4).filter(|_| silent.recv(&mut buf).is_ok()).count();
    assert_eq!(got, 3);
}

#[test]
fn nobody_on_the_port_is_connection_refused_from_icmp() {
    // A port that was bound and is free again: nobody receives on it.
    let addr = {
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        gone.local_addr().unwrap().to_string()
    };
    let out = run(14, &["client", "--addr", &addr], b"hello\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-14: recv: Connection refused (os error 111)\n"
    );
}

#[test]
fn bind_to_a_port_in_use_and_bad_arguments_fail_with_one_line() {
    let server = Server::lesson(14, &[]);
    let second = Command::new(bin(14))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-14: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
    let out = run(14, &["client", "--tries", "0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-14: --tries: must be from 1 to 10\n"
    );
    let out = run(14, &["client", "--timeout", "0"], b"");
    assert_eq!(out.status.code(), Some(1));
}
