//! Numbers the kernel decides, read or measured on the machine the tests run
//! on, against what the book says about them.
//!
//! A chapter that states a resend time, a delay or a default says which
//! kernel setting decides it. These tests read that setting from
//! `/proc/sys` (or, where no setting exists, measure the number on
//! loopback for a second or two) and check the chapter's wording, so a
//! kernel that behaves otherwise makes a test fail instead of a page lie.
//! Every measurement here is bounded, uses loopback and port 0, and never
//! sleeps to wait for a server.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use regex::Regex;
use socket2::{Domain, Socket, Type};

use crate::support::{have, root};

/// A chapter's text with its line breaks and indentation made single spaces,
/// so that a phrase can be found wherever the lines were wrapped.
fn chapter(name: &str) -> String {
    let text = fs::read_to_string(root().join("book/src").join(name))
        .unwrap_or_else(|e| panic!("read {name}: {e}"));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asserts that a chapter says `phrase`, naming the setting it depends on.
fn says(name: &str, phrase: &str, because: &str) {
    assert!(
        chapter(name).contains(phrase),
        "{name} should say \"{phrase}\" ({because})"
    );
}

/// One value of `/proc/sys/...`, or `None` where this kernel lacks it.
fn sysctl(path: &str) -> Option<Vec<u64>> {
    let text = fs::read_to_string(format!("/proc/sys/{path}")).ok()?;
    text.split_whitespace().map(|v| v.parse().ok()).collect()
}

fn sysctl1(path: &str) -> u64 {
    sysctl(path).unwrap_or_else(|| panic!("no /proc/sys/{path}"))[0]
}

/// When Linux resends an unanswered SYN, in seconds after the first one, and
/// when it gives up: the first `linear + 1` timeouts are one second (TCP's
/// initial timeout; `tcp_syn_linear_timeouts`, Linux 6.5), then each one
/// doubles, up to 120 s. The kernel turns `tcp_syn_retries` into a time, that
/// of `retries` doubling timeouts (`tcp_model_timeout` in
/// `net/ipv4/tcp_timer.c`), and gives up at the first timer past it.
fn syn_schedule(linear: u64, retries: u64) -> (Vec<u64>, u64) {
    let budget = if retries <= 6 {
        (2 << retries) - 1
    } else {
        127 + (retries - 6) * 120
    };
    let mut resends = Vec::new();
    let mut at = 0;
    for k in 1.. {
        let rto = if k <= linear + 1 {
            1
        } else {
            (1u64 << (k - linear - 1)).min(120)
        };
        at += rto;
        if at >= budget {
            return (resends, at);
        }
        resends.push(at);
    }
    unreachable!()
}

/// Writes a schedule the way the book does: `1, 2, 3 and 4 s`.
fn listed(times: &[u64]) -> String {
    let (last, rest) = times.split_last().unwrap();
    let rest: Vec<String> = rest.iter().map(u64::to_string).collect();
    format!("{} and {last} s", rest.join(", "))
}

/// `tcpi_total_retrans` of a socket: how often it has resent.
fn total_retrans(socket: &Socket) -> u32 {
    // SAFETY: tcp_info is plain data; getsockopt writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(
        rc,
        0,
        "getsockopt(TCP_INFO): {}",
        std::io::Error::last_os_error()
    );
    info.tcpi_total_retrans
}

/// How many connections wait in a listener's accept queue (`tcpi_unacked`
/// for a socket in LISTEN, as lesson 8 explains).
fn queued(listener: &Socket) -> u32 {
    // SAFETY: as in `total_retrans`.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt(TCP_INFO)");
    info.tcpi_unacked
}

#[test]
fn the_syn_schedule_is_derived_as_the_book_lists_it() {
    // The defaults the book lists, before and since Linux 6.5.
    assert_eq!(
        syn_schedule(4, 6),
        (vec![1, 2, 3, 4, 5, 7, 11, 19, 35, 67], 131)
    );
    assert_eq!(syn_schedule(0, 6), (vec![1, 3, 7, 15, 31, 63], 127));
    let (linear, _) = syn_schedule(4, 6);
    let (doubling, _) = syn_schedule(0, 6);
    let why = "the SYN resend schedule for tcp_syn_linear_timeouts 4 and 0";
    says("lesson-08.md", &format!("resends at {}", listed(&linear)), why);
    says(
        "lesson-08.md",
        &format!("from the start: {}", listed(&doubling)),
        why,
    );
    for setting in
        ["net.ipv4.tcp_syn_linear_timeouts", "net.ipv4.tcp_syn_retries"]
    {
        says(
            "lesson-08.md",
            &format!("`{setting}`"),
            "the setting that decides",
        );
    }
    says("lesson-08.md", "after 127 s", "the give-up time before Linux 6.5");
    says("lesson-08.md", "131 s on the schedule", "the give-up time since 6.5");
    says(
        "lesson-09.md",
        "127 s on kernels older than 6.5",
        "lesson 8's schedule",
    );
    says("lesson-09.md", "about 131 s", "lesson 8's schedule");
}

#[test]
fn syn_resends_follow_the_setting_the_book_names() {
    // Before Linux 6.5 there is no such file, and the gaps double at once.
    let linear = sysctl("net/ipv4/tcp_syn_linear_timeouts").map_or(0, |v| v[0]);
    let retries = sysctl1("net/ipv4/tcp_syn_retries");
    let (schedule, give_up) = syn_schedule(linear, retries);
    eprintln!(
        "tcp_syn_linear_timeouts {linear}, tcp_syn_retries {retries}: resends \
         at {schedule:?} s, gives up at {give_up} s"
    );
    let window = Duration::from_millis(3500);
    let expected: Vec<u64> = schedule
        .iter()
        .copied()
        .filter(|&s| {
            Duration::from_secs(s) < window - Duration::from_millis(300)
        })
        .collect();

    // A queue of one, filled: listen(0) holds one connection (lesson 8).
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener.bind(&any.into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let _first = TcpStream::connect(addr.as_socket().unwrap()).unwrap();
    let filled = Instant::now();
    while queued(&listener) < 1 {
        assert!(
            filled.elapsed() < Duration::from_secs(2),
            "queue never filled"
        );
        std::thread::yield_now();
    }

    // The next client's SYN is dropped; watch its kernel resend it.
    let client =
        Socket::new(Domain::IPV4, Type::STREAM.nonblocking(), None).unwrap();
    let start = Instant::now();
    match client.connect(&addr) {
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        other => panic!("connect to a full queue: {other:?}"),
    }
    let mut seen = Vec::new();
    let mut count = 0;
    while start.elapsed() < window {
        let now = total_retrans(&client);
        if now != count {
            count = now;
            seen.push(start.elapsed());
        }
        // Sampling, not waiting for anyone: the kernel resends on its own.
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen_s: Vec<f64> = seen.iter().map(Duration::as_secs_f64).collect();
    assert_eq!(
        seen.len(),
        expected.len(),
        "resends seen at {seen_s:.2?} s, expected at {expected:?} s"
    );
    for (got, want) in seen.iter().zip(&expected) {
        let off = got.as_secs_f64() - *want as f64;
        assert!(
            (-0.1..0.4).contains(&off),
            "resends seen at {seen_s:.2?} s, expected at {expected:?} s"
        );
    }
}

#[test]
fn time_wait_lasts_what_the_book_says() {
    if !have("ss") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let port = client.local_addr().unwrap().port();
    let server_port = listener.local_addr().unwrap().port();
    // The client closes first, so its side ends in TIME_WAIT once the
    // server's FIN comes back.
    drop(client);
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).unwrap();
    drop(server);
    let timer = Regex::new(r"timer:\(timewait,([0-9.]+)(min|sec)").unwrap();
    let started = Instant::now();
    let left = loop {
        let out = Command::new("ss")
            .args(["-tanoH", "state", "time-wait"])
            // The whole 4-tuple: an older TIME_WAIT of the same ephemeral
            // port, to another server, may still be there.
            .arg(format!("sport = :{port} and dport = :{server_port}"))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(c) = timer.captures(&out) {
            let n: f64 = c[1].parse().unwrap();
            break if &c[2] == "min" { n * 60.0 } else { n };
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no TIME_WAIT entry for port {port}: {out}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // ss rounds the time left; a loaded machine may read it late, so the
    // bound below allows for the time the reading took.
    let late = started.elapsed().as_secs_f64();
    assert!(
        (58.0 - late..=60.0).contains(&left),
        "TIME_WAIT has {left} s left {late:.1} s after it began; the book says 60"
    );
    let why = "TIME_WAIT's length, TCP_TIMEWAIT_LEN";
    says("lesson-06.md", "Linux uses a fixed 60 seconds", why);
    says("glossary.md", "on Linux a fixed 60 seconds", why);
    says("lesson-07.md", "TIME_WAIT for 60 seconds", why);
}

#[test]
fn delayed_ack_costs_at_least_40_ms_a_round() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    const ROUNDS: usize = 6;
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 8];
        for _ in 0..ROUNDS {
            conn.read_exact(&mut request).unwrap();
            conn.write_all(b"ok").unwrap();
        }
    });
    let mut client = TcpStream::connect(addr).unwrap();
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        // Two small writes, then a read: Nagle holds the second write until
        // the first is acknowledged, and the server delays that ACK.
        client.write_all(b"head").unwrap();
        client.write_all(b"body").unwrap();
        let mut reply = [0u8; 2];
        client.read_exact(&mut reply).unwrap();
        rounds.push(start.elapsed());
    }
    server.join().unwrap();
    // The first round is quick: a new connection acknowledges at once.
    let mut timed = rounds[1..].to_vec();
    timed.sort();
    let median = timed[timed.len() / 2];
    assert!(
        (Duration::from_millis(39)..Duration::from_millis(220))
            .contains(&median),
        "a write-write-read round took {median:?} (median of {timed:?}); \
         the book says at least 40 ms and at most 200 ms"
    );
    let why = "TCP_DELACK_MIN and TCP_DELACK_MAX";
    says("lesson-04.md", "at least 40 ms and at most 200 ms", why);
    says("glossary.md", "at least 40 ms and at most 200 ms", why);
}

#[test]
fn keepalive_defaults_are_what_the_book_says() {
    let time = sysctl1("net/ipv4/tcp_keepalive_time");
    let intvl = sysctl1("net/ipv4/tcp_keepalive_intvl");
    let probes = sysctl1("net/ipv4/tcp_keepalive_probes");
    let why = "net.ipv4.tcp_keepalive_time, _intvl and _probes on this machine";
    says("lesson-09.md", &format!("{time} s, {intvl} s and {probes}"), why);
    let sum =
        format!("{time} + {probes} × {intvl} = {}", time + probes * intvl);
    says("lesson-09.md", &sum, why);
    says("glossary.md", &format!("{time} + {probes} × {intvl}"), why);
}

#[test]
fn buffer_sizes_are_doubled_below_the_sysctl_cap() {
    let wmem_max = sysctl1("net/core/wmem_max");
    let rmem_max = sysctl1("net/core/rmem_max");
    assert!(wmem_max >= 4096 && rmem_max >= 4096, "caps below the demo's 4096");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_send_buffer_size(4096).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    assert_eq!(socket.send_buffer_size().unwrap(), 8192);
    assert_eq!(socket.recv_buffer_size().unwrap(), 8192);
    says("lesson-04.md", "**8192, not 4096**", "the doubled SO_SNDBUF");
    says("lesson-04.md", "`net.core.wmem_max`", "the cap before doubling");
}

#[test]
fn the_port_range_is_what_the_book_says() {
    let range = sysctl("net/ipv4/ip_local_port_range").unwrap();
    let (low, high) = (range[0], range[1]);
    let count = high - low + 1;
    let grouped = format!("{},{:03}", count / 1000, count % 1000);
    let why = "net.ipv4.ip_local_port_range on this machine";
    says(
        "lesson-07.md",
        &format!("{low} to {high} by default: {grouped} ports"),
        why,
    );
    says("lesson-07.md", &format!("about {} a second", count / 60), why);
}
