//! Lesson 16: IPv6, dual stack, and the many addresses of a name.
//!
//! Every test here needs IPv6 on loopback. A machine without it (a
//! container started with IPv6 disabled) fails them with a message that
//! says so, rather than passing without having tried.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;

use crate::snapshot;
use crate::support::{
    Server, have, help, normalize, run, run_with, stable_demo, stdout_of,
};

/// Fails the test, clearly, when this machine has no IPv6 loopback.
fn require_ipv6() {
    if let Err(err) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        panic!(
            "lesson 16 needs IPv6 on loopback, and bind [::1]:0 failed: \
             {err}. Check `ip -6 addr show lo` (expect ::1) and \
             `sysctl net.ipv6.conf.lo.disable_ipv6` (expect 0)."
        );
    }
}

/// Lesson 16's server on `addr`, port 0, with extra `args`.
fn server(addr: &str, args: &[&str]) -> Server {
    require_ipv6();
    Server::start(
        Command::new(crate::support::bin(16))
            .args(["server", "--addr", addr])
            .args(args),
    )
}

fn port(server: &Server) -> String {
    server.addr.rsplit(':').next().unwrap().to_string()
}

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    require_ipv6();
    let transcript = stable_demo(16);
    assert!(transcript.contains("(peer [::ffff:127.0.0.1]:[PORT])"));
    assert!(transcript.contains("= -1 EINVAL"), "V6ONLY refuses IPv4");
    assert!(transcript.contains("= -1 EADDRINUSE"), "[::] after 0.0.0.0");
    assert!(transcript.contains("= -1 ECONNREFUSED"), "::1 first, refused");
    snapshot!("lesson_16__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_16__help", help(16));
    snapshot!(
        "lesson_16__help_server",
        stdout_of(&run(16, &["server", "--help"], b""))
    );
    snapshot!(
        "lesson_16__help_client",
        stdout_of(&run(16, &["client", "--help"], b""))
    );
}

#[test]
fn our_client_talks_to_our_server_over_ipv6() {
    let mut server = server("[::1]:0", &[]);
    let client = run(16, &["client", "--addr", &server.addr], b"hello\n\n");
    snapshot!("lesson_16__client", normalize(&stdout_of(&client)));
    server.wait_for("closed the connection");
    snapshot!("lesson_16__server", normalize(&server.transcript()));
}

#[test]
fn an_ipv4_client_of_an_ipv6_socket_is_seen_mapped() {
    let mut server = server("[::ffff:127.0.0.1]:0", &[]);
    let addr = format!("127.0.0.1:{}", port(&server));
    let out = stdout_of(&run(16, &["client", "--addr", &addr], b"v4\n\n"));
    assert!(out.contains("Reply: v4\n"), "{out}");
    let line = server.wait_for("Connected with");
    assert!(
        line.contains("[::ffff:127.0.0.1]:")
            && line.contains("an IPv4 client (127.0.0.1), mapped into IPv6"),
        "{line}"
    );
}

#[test]
fn v6_only_refuses_the_mapped_address_with_the_call_and_error() {
    require_ipv6();
    let out = run(
        16,
        &["server", "--addr", "[::ffff:127.0.0.1]:0", "--v6-only"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-16: bind [::ffff:127.0.0.1]:0: Invalid argument (os error 22)\n"
    );
}

#[test]
fn python_over_af_inet6_talks_to_our_server() {
    let mut server = server("[::1]:0", &[]);
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n\
         s.connect(('::1', {}))\n\
         s.sendall(b'from python\\n')\n\
         print(s.recv(4096), s.getsockname()[0])\n",
        port(&server)
    );
    let out = stdout_of(&run_with(
        Command::new("python3").args(["-c", &script]),
        b"",
    ));
    assert_eq!(out, "b'from python\\n' ::1\n");
    server.wait_for("closed the connection");
}

#[test]
fn openbsd_nc_over_ipv6_talks_to_our_server() {
    if !have("nc") {
        return;
    }
    let mut server = server("[::1]:0", &[]);
    let out = run_with(
        Command::new("nc").args(["-6", "-N", "::1", &port(&server)]),
        b"hello from nc -6\n",
    );
    assert_eq!(stdout_of(&out), "hello from nc -6\n");
    server.wait_for("closed the connection");
}

#[test]
fn our_client_tries_every_address_of_localhost() {
    // A server on IPv4's loopback only. Whatever this machine's resolver
    // gives for localhost, the client must reach it: at once when
    // 127.0.0.1 comes first, after a refused ::1 otherwise.
    let mut server = server("127.0.0.1:0", &[]);
    let target = format!("localhost:{}", port(&server));
    let out = stdout_of(&run(16, &["client", "--addr", &target], b"hi\n\n"));
    assert!(out.contains("Reply: hi\n"), "{out}");
    let first = out.lines().next().unwrap_or_default();
    if first.contains(" is [::1]:") {
        assert!(out.contains("trying the next address"), "{out}");
    }
    server.wait_for("closed the connection");
}

#[test]
fn std_connect_tries_each_address_in_turn() {
    require_ipv6();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let addrs: [SocketAddr; 2] = [
        (Ipv6Addr::LOCALHOST, port).into(),
        (Ipv4Addr::LOCALHOST, port).into(),
    ];
    let stream = TcpStream::connect(&addrs[..]).expect("the second address");
    assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(16, &["client", "--addr", "localhost"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-16: resolve localhost: invalid socket address\n"
    );
    let out = run(16, &["server", "--addr", "::1:8016"], b"");
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let out = run(16, &["server", "--timeout", "1e19"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not a number of seconds from 0.001 to 31536000"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
