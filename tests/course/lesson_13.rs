//! Lesson 13: epoll, level- and edge-triggered, a signalfd shutdown, EMFILE.

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
    let transcript = stable_demo(13);
    // One read per event: level-triggered reports the rest, edge-triggered not.
    assert!(transcript.contains("epoll_wait(fd 6, 8, 0) = 1  (fd 5: EPOLLIN)"));
    assert!(transcript.contains("no event, yet 6 bytes are unread"));
    assert!(transcript.contains("tcpi_unacked 2"));
    assert!(transcript.contains("no event, yet a client still waits"));
    // EMFILE, and the spare descriptor.
    assert!(transcript.contains("= -1 EMFILE"));
    assert!(
        transcript
            .contains("recv(fd 7, 4096) = 19  (\"error: server busy\\n\")")
    );
    assert!(transcript.contains("nothing spins"));
    assert!(transcript.contains("(SIGINT)"));
    assert!(
        transcript.contains("F's request, sent after the signal but before the loop saw it, was answered")
    );
    // Without the spare, a level-triggered loop spins on EMFILE.
    assert!(
        transcript
            .contains("1000 more turns: each found the listener ready at once")
    );
    snapshot!("lesson_13__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_13__help", help(13));
    snapshot!(
        "lesson_13__help_server",
        stdout_of(&run(13, &["server", "--help"], b""))
    );
}

#[test]
fn a_shutdown_line_ends_the_server_cleanly() {
    let mut server = Server::lesson(13, &[]);
    let client = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
    assert_eq!(exchange(&client, b"shutdown\n"), b"shutdown\n");
    let mut rest = Vec::new();
    (&client).read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    // The server closes by lingering: it waits for the client to close.
    drop(client);
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    snapshot!("lesson_13__server", normalize(&server.transcript()));
}

/// The plain loop of `plain.rs` serves several clients at once, and
/// answers each with what it sent.
#[test]
fn the_plain_loop_serves_several_clients_at_once() {
    let mut server = Server::start(Command::new(bin(13)).args([
        "plain",
        "--addr",
        "127.0.0.1:0",
    ]));
    let clients: Vec<TcpStream> =
        (0..3).map(|_| TcpStream::connect(&server.addr).unwrap()).collect();
    for round in 0..3 {
        for (n, client) in clients.iter().enumerate() {
            let line = format!("client {n}, round {round}\n");
            assert_eq!(exchange(client, line.as_bytes()), line.as_bytes());
        }
    }
    assert!(server.is_running());
}

#[test]
fn serves_many_clients_at_once_level_triggered() {
    many_clients_with(&[]);
}

#[test]
fn serves_many_clients_at_once_edge_triggered() {
    many_clients_with(&["--edge"]);
}

fn many_clients_with(trigger: &[&str]) {
    let mut server = Server::lesson(
        13,
        &[&["--max-conns", "300", "--idle", "60"], trigger].concat(),
    );
    let report = many_clients::serve_them_all(&server.addr);
    eprintln!(
        "lesson 13 ({}): {} clients x {} lines in {:?}; the slow client got {} lines answered meanwhile",
        if trigger.is_empty() { "level" } else { "edge" },
        many_clients::CLIENTS,
        many_clients::LINES,
        report.elapsed,
        report.slow_lines
    );
    assert!(server.is_running());
}

#[test]
fn sigint_with_requests_in_flight_answers_them_all_and_exits_0() {
    let mut server = Server::lesson(13, &["--max-conns", "10"]);
    many_clients::shutdown_with_requests_in_flight(&mut server, 6);
}

#[test]
fn sigint_with_requests_in_flight_edge_triggered() {
    let mut server = Server::lesson(13, &["--max-conns", "10", "--edge"]);
    many_clients::shutdown_with_requests_in_flight(&mut server, 6);
}

#[test]
fn sigint_with_nobody_connected_exits_0() {
    let mut server = Server::lesson(13, &[]);
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGINT).unwrap();
    assert!(server.wait_exit().success());
    assert!(server.transcript().contains("SIGINT: stop accepting"));
}

#[test]
fn python_clients_are_served() {
    let server = Server::lesson(13, &["--edge"]);
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("line_clients.py", &[&port, "50", "20"], b""));
    assert_eq!(
        out,
        "ok: 50 clients, 20 lines each, and an over-long line refused\n"
    );
}

#[test]
fn the_client_over_the_limit_is_told_and_closed() {
    let mut server = Server::lesson(13, &["--max-conns", "1"]);
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
    let mut server = Server::lesson(13, &["--idle", "0.3"]);
    let mut idle = TcpStream::connect(&server.addr).unwrap();
    let other = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&other, b"no waiting\n"), b"no waiting\n");
    server.wait_for("idle for 300 ms: closed");
    let mut buf = [0u8; 8];
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
}

#[test]
fn bind_to_a_port_in_use_fails_with_the_call_address_and_error() {
    let server = Server::lesson(13, &[]);
    let second = Command::new(bin(13))
        .args(["server", "--addr", &server.addr])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!(
            "lesson-13: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(13, &["server", "--idle=-3"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-13: --idle: -3 is not a number of seconds from 0.001 to 31536000\n"
    );
}

/// Pitfall 10: out of descriptors, `accept` fails with EMFILE while clients
/// wait. The server accepts each one into its spare descriptor, tells it
/// "server busy", and does not spin.
#[test]
fn out_of_descriptors_the_next_client_is_told_and_nothing_spins() {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(bin(13));
    command.args(["server", "--addr", "127.0.0.1:0", "--edge"]);
    // SAFETY: runs in the child between fork and exec, and makes one
    // system call (prlimit64), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                16,
                16,
            )
            .map_err(std::io::Error::from)
        });
    }
    let mut server = Server::start(&mut command);
    // 0 to 2, the signalfd, the listener, the spare and the epoll: 7 open,
    // so 9 clients fit under the limit of 16.
    let held: Vec<TcpStream> = (0..9)
        .map(|n| {
            let client = TcpStream::connect(&server.addr).unwrap();
            let line = format!("client {n}\n");
            assert_eq!(exchange(&client, line.as_bytes()), line.as_bytes());
            client
        })
        .collect();
    let refused = TcpStream::connect(&server.addr).unwrap();
    let mut reply = Vec::new();
    (&refused).read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"error: server busy\n");
    server.wait_for(
        "Too many open files (os error 24): using the spare descriptor",
    );
    // Nothing spins: over the next 300 ms the server uses almost no CPU.
    let before = cpu_time(server.pid());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let used = cpu_time(server.pid()) - before;
    assert!(used < 100, "the server used {used} ms of CPU in 300 ms");
    // And the clients it holds are still served.
    assert_eq!(exchange(&held[0], b"still here\n"), b"still here\n");
}

/// User plus system CPU time of process `pid`, in milliseconds.
fn cpu_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> =
        stat.rsplit(')').next().unwrap().split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf takes no pointers.
    let per_second =
        unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) } as u64;
    ticks * 1000 / per_second
}

/// A line too long ends the connection with a lingering close: a client
/// that reads slowly still gets every earlier reply and the refusal, then
/// the end of the stream, not a reset that would discard them.
#[test]
fn a_slow_reader_gets_every_reply_and_the_refusal() {
    for trigger in [&[][..], &["--edge"][..]] {
        let server = Server::lesson(13, trigger);
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            None,
        )
        .unwrap();
        // Before connect, so the window it advertises is small too.
        socket.set_recv_buffer_size(4096).unwrap();
        socket
            .connect(
                &server.addr.parse::<std::net::SocketAddr>().unwrap().into(),
            )
            .unwrap();
        let stream = TcpStream::from(socket);
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let lines: Vec<u8> = (0..200)
            .flat_map(|i| {
                format!("line {i:03} {}\n", ".".repeat(90)).into_bytes()
            })
            .collect();
        (&stream)
            .write_all(&[lines.as_slice(), &[b'x'; 5000]].concat())
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = (&stream).read(&mut buf).unwrap_or_else(|e| {
                panic!("{trigger:?}: {e} after {} bytes", got.len())
            });
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            // Pacing only: this client is slow on purpose.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(
            got == [lines.as_slice(), b"error: line too long\n"].concat(),
            "{trigger:?}: {} bytes",
            got.len()
        );
    }
}

/// A second signal while a client holds the shutdown up (the server
/// lingers, waiting for it to close) closes every connection at once; the
/// server still closes what it opened, says so, and exits with status 1.
#[test]
fn a_second_signal_cuts_the_shutdown_short_and_still_reports() {
    let mut server = Server::lesson(13, &[]);
    let client = TcpStream::connect(&server.addr).unwrap();
    assert_eq!(exchange(&client, b"hello\n"), b"hello\n");
    let pid = Pid::from_raw(server.pid() as i32);
    kill(pid, Signal::SIGTERM).unwrap();
    server.wait_for("SIGTERM: stop accepting");
    kill(pid, Signal::SIGTERM).unwrap();
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(1));
    let log = server.transcript();
    assert!(log.contains("SIGTERM again: closing every connection now"));
    assert!(log.contains("closed at once: a second signal"), "{log}");
    assert!(
        log.ends_with("Shut down: every descriptor it opened is closed\n"),
        "{log}"
    );
    drop(client);
}
