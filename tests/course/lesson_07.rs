//! Lesson 7: when things fail.

use std::net::SocketAddr;
use std::process::{Command, Output};

use socket2::{Domain, Socket, Type};

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

const IN_USE: &str =
    "= -1 EADDRINUSE  (Address already in use; ErrorKind::AddrInUse)";

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(7);

    // A listened-on address: EADDRINUSE, with SO_REUSEADDR or without.
    let in_use = section(&transcript, "a port someone listens on: EADDRINUSE");
    assert_eq!(in_use.iter().filter(|l| l.contains(IN_USE)).count(), 2);
    find(&in_use, "setsockopt(fd 4, SO_REUSEADDR, 1) = 0");

    // The staged race: the other program's bind wins, ours fails.
    let race =
        section(&transcript, "check that a port is free, then bind it: a race");
    let other = find(&race, "bind(fd 4, 127.0.0.1:[PORT]) = 0");
    let ours = find(&race, IN_USE);
    assert!(other < ours && race[ours].contains("bind(fd 5,"));

    // The 4-tuple: three accepted sockets on the listener's own address.
    let tuple =
        section(&transcript, "the 4-tuple: many connections on one port");
    assert_eq!(tuple.iter().filter(|l| l.contains("accept(fd 3)")).count(), 3);
    find(&tuple, "each accepted socket's local address is the listener's: yes");
    find(&tuple, "their peer ports all differ: yes");

    // SO_REUSEPORT: the second bind succeeds and both listeners get some.
    let shared =
        section(&transcript, "SO_REUSEPORT: two listeners on one port");
    find(&shared, "bind(fd 5, 127.0.0.1:[PORT]) = 0");
    find(&shared, "listen(fd 5, 128) = 0");
    find(&shared, "listener fd 4 accepted some of them: yes");
    find(&shared, "listener fd 5 accepted some of them: yes");
    find(&shared, "together: 40 of 40");

    let refused = section(&transcript, "nobody listening: ECONNREFUSED");
    find(
        &refused,
        "= -1 ECONNREFUSED  (Connection refused; ErrorKind::ConnectionRefused)",
    );

    // TIME_WAIT on the old server's port: raw socket2 cannot bind it, std can.
    let restart = section(
        &transcript,
        "TIME_WAIT and a restart: std binds, raw socket2 does not",
    );
    let waiting = find(&restart, ": TIME_WAIT");
    let raw = find(&restart, IN_USE);
    let std_bind = find(&restart, "bind(fd 4, 127.0.0.1:[PORT]) = 0");
    assert!(waiting < raw && raw < std_bind, "{}", restart.join("\n"));
    assert!(
        restart[std_bind - 1].contains("setsockopt(fd 4, SO_REUSEADDR, 1) = 0")
    );

    snapshot!("lesson_07__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_07__help", help(7));
    snapshot!(
        "lesson_07__help_server",
        stdout_of(&run(7, &["server", "--help"], b""))
    );
}

/// A failed run as a terminal would show it: the command, its stderr, its
/// exit status.
fn session(command: &str, out: &Output) -> String {
    format!(
        "$ {command}\n{}$ echo $?\n{}\n",
        String::from_utf8_lossy(&out.stderr),
        out.status.code().map_or("killed".to_string(), |c| c.to_string())
    )
}

/// A port that is bound but not listening: nobody else can take it while
/// we hold it, and the kernel answers a SYN to it with RST.
fn closed_port() -> (Socket, String) {
    let holder = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    holder.bind(&any.into()).unwrap();
    let addr = holder.local_addr().unwrap().as_socket().unwrap().to_string();
    (holder, addr)
}

#[test]
fn every_failure_exits_1_with_the_call_the_address_and_the_os_error() {
    let server = Server::lesson(7, &[]);
    let in_use = run(7, &["server", "--addr", &server.addr], b"");
    assert_eq!(in_use.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&in_use.stderr),
        format!(
            "lesson-07: bind {}: Address already in use (os error 98)\n",
            server.addr
        )
    );
    assert!(in_use.stdout.is_empty());

    let (_holder, closed) = closed_port();
    let refused = run(7, &["client", "--addr", &closed], b"");
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr),
        format!(
            "lesson-07: connect {closed}: Connection refused (os error 111)\n"
        )
    );
    assert!(refused.stdout.is_empty());

    let text =
        session(&format!("lesson-07 server --addr {}", server.addr), &in_use)
            + &session(&format!("lesson-07 client --addr {closed}"), &refused);
    snapshot!("lesson_07__failures", normalize(&text));
}

#[test]
fn accepted_connections_share_the_listeners_port() {
    let mut server = Server::lesson(7, &[]);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let out = stdout_of(&run(7, &["client", "--addr", &server.addr], b""));
        // "Connected: 127.0.0.1:C -> 127.0.0.1:P" then "Reply: you are
        // 127.0.0.1:C, I am 127.0.0.1:P (pid N)".
        let local = out
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("Connected: "))
            .and_then(|l| l.split(" -> ").next())
            .expect("Connected line")
            .to_string();
        assert!(
            out.contains(&format!(
                "Reply: you are {local}, I am {}",
                server.addr
            )),
            "{out}"
        );
        let line = server.wait_for(" <-> ");
        assert!(
            line.ends_with(&format!(": {} <-> {local}", server.addr)),
            "{line}"
        );
        seen.push(local);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "three clients, three ports, one server port");
    // A peer nobody here wrote sees the same.
    let port = server.addr.rsplit(':').next().unwrap().to_string();
    let out = stdout_of(&python("read_reply.py", &[&port], b""));
    let (me, reply) =
        out.trim_end().split_once(' ').expect("address and reply");
    assert!(
        reply.starts_with(&format!("you are {me}, I am {}", server.addr)),
        "{out}"
    );
}

/// Pitfall 11, with the real server: a restart fails while the last run's
/// connection sits in TIME_WAIT, unless both runs set SO_REUSEADDR (which
/// the server does unless told `--no-reuse-address`).
#[test]
fn a_restart_needs_so_reuseaddr_in_both_runs_while_time_wait_lasts() {
    for flags in [&["--no-reuse-address"][..], &[]] {
        let mut first = Server::lesson(7, flags);
        let addr = first.addr.clone();
        stdout_of(&run(7, &["client", "--addr", &addr], b""));
        first.wait_for(" <-> ");
        // The server wrote its reply and closed first: its end, on the
        // listening port, is in FIN_WAIT2 or TIME_WAIT. Stop it.
        drop(first);

        let mut restart = Command::new(bin(7));
        restart.args(["server", "--addr", &addr]).args(flags);
        if !flags.is_empty() {
            let out = run_with(&mut restart, b"");
            assert_eq!(out.status.code(), Some(1));
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                format!(
                    "lesson-07: bind {addr}: Address already in use (os error 98)\n"
                )
            );
        } else {
            let mut again = Server::start(&mut restart);
            assert_eq!(again.addr, addr);
            assert!(again.is_running());
        }
    }
}

/// What the chapter says about the kernel's rule: the TIME_WAIT remembers
/// the old socket's SO_REUSEADDR, so a new socket with it still fails if
/// the old one lacked it. (std's bind would fail just the same.)
#[test]
fn so_reuseaddr_must_be_set_on_the_old_socket_too() {
    for old_reuse in [false, true] {
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.set_reuse_address(old_reuse).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        listener.bind(&any.into()).unwrap();
        listener.listen(8).unwrap();
        let addr = listener.local_addr().unwrap();
        let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        client.connect(&addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        // The server closes first; the client's FIN completes the exchange.
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = [std::mem::MaybeUninit::new(0u8); 8];
        assert_eq!(client.recv(&mut buf).unwrap(), 0);
        drop(client);
        assert_eq!(conn.recv(&mut buf).unwrap(), 0);
        drop(conn);
        drop(listener);

        let new = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        new.set_reuse_address(true).unwrap();
        let bound = new.bind(&addr);
        if old_reuse {
            bound.expect("both set SO_REUSEADDR: the bind goes through");
        } else {
            let err = bound.expect_err("the old socket lacked SO_REUSEADDR");
            assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        }
    }
}

/// Pitfall 12: with SO_REUSEPORT two servers share a port and the kernel
/// gives each some of the connections; a server without it cannot join.
#[test]
fn two_servers_share_a_port_with_so_reuseport() {
    let first = Server::lesson(7, &["--reuse-port"]);
    let addr = first.addr.clone();
    let mut second = Command::new(bin(7));
    second.args(["server", "--addr", &addr, "--reuse-port"]);
    let second = Server::start(&mut second);
    assert_eq!(second.addr, addr);

    let without = run(7, &["server", "--addr", &addr], b"");
    assert_eq!(without.status.code(), Some(1), "all must set SO_REUSEPORT");

    // Which server answers is a hash of the 4-tuple: after 40 clients both
    // have answered, except with probability 2^-39.
    let mut pids = Vec::new();
    for _ in 0..40 {
        let out = stdout_of(&run(7, &["client", "--addr", &addr], b""));
        let pid = out
            .rsplit("(pid ")
            .next()
            .and_then(|p| p.split(')').next())
            .expect("a pid in the reply")
            .to_string();
        pids.push(pid);
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 2, "both servers answered: {pids:?}");
    drop(second);
    drop(first);
}

/// Pitfall 28: a client runs out of local ports. In a network namespace of
/// its own, with ten ports to choose from, the tenth connection fails.
#[test]
fn a_client_out_of_local_ports_gets_eaddrnotavail() {
    let script = format!(
        "ip link set lo up && \
         echo '50000 50009' > /proc/sys/net/ipv4/ip_local_port_range && \
         exec {} exhaust-ports",
        bin(7).display()
    );
    let probe = Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !probe {
        assert!(
            std::env::var_os("CI").is_none(),
            "unshare -n is required in CI"
        );
        eprintln!("cannot create a network namespace here: skipping");
        return;
    }
    let out = run_with(
        Command::new("unshare").args(["-n", "sh", "-c", &script]),
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The listener took one of the ten ports; the clients got the other nine.
    assert!(
        stdout.ends_with("9 connections made, then no local port was left\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let listening = stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("Listening on "))
        .expect("Listening line");
    assert_eq!(
        stderr,
        format!(
            "lesson-07: connect {listening}: Cannot assign requested address (os error 99)\n"
        )
    );
    snapshot!(
        "lesson_07__exhaust_ports",
        normalize(&format!("{stdout}{stderr}"))
    );
}

#[test]
fn without_a_small_port_range_the_ports_do_not_run_out() {
    let out = stdout_of(&run(7, &["exhaust-ports", "--max", "100"], b""));
    assert!(
        out.ends_with("100 connections made; no local port ran out\n"),
        "{out}"
    );
}
