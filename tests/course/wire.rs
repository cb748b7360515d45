//! The packets beside the calls: lessons 2, 4, 6, 8 and 9 run by `lesson-18
//! beside N --steady`, their segments checked where the chapters cite
//! them, and snapshotted where they are deterministic.
//!
//! Needs root: `beside` moves into a network namespace of its own
//! (`unshare(CLONE_NEWNET)`, CAP_SYS_ADMIN) and opens a packet socket
//! (CAP_NET_RAW). CI runs as root. Without root these tests fail with the
//! program's one-line reason; they never pass without having looked.
//! Cost: each test takes its demo's own time (lesson 2 0.1 s, 4 0.6 s, 6
//! 0.3 s, 8 1.2 s: the SYN resent after 1 s, 9 3.6 s: keepalive's 1 s
//! waits, 10 and 11 about 1.5 s each); they run in parallel, about 4 s of
//! wall time in all.

use crate::snapshot;
use crate::support::{normalize, run, stdout_of};

/// Lesson `n`'s demo with its segments, ports normalised.
pub fn beside(n: u32) -> String {
    let out = run(18, &["beside", &n.to_string(), "--steady"], b"");
    normalize(&stdout_of(&out))
}

/// The index of the first line containing `needle`, after line `from`.
fn find(lines: &[&str], from: usize, needle: &str) -> usize {
    lines[from..]
        .iter()
        .position(|line| line.contains(needle))
        .map(|at| from + at)
        .unwrap_or_else(|| {
            panic!("no {needle:?} after line {from} in\n{}", lines.join("\n"))
        })
}

/// Asserts that `first` appears before `then` (each searched after the
/// line `from`), and returns where `then` is.
fn before(lines: &[&str], from: usize, first: &str, then: &str) -> usize {
    let (a, b) = (find(lines, from, first), find(lines, from, then));
    assert!(
        a < b,
        "{first:?} (line {a}) should come before {then:?} (line {b}) in\n{}",
        lines.join("\n")
    );
    b
}

/// The lines from the section titled `from` up to the next section.
fn section<'a>(text: &'a str, from: &str) -> Vec<&'a str> {
    let mut lines = text.lines().skip_while(|line| !line.contains(from));
    let first = lines.next().into_iter();
    first.chain(lines.take_while(|line| !line.starts_with("-- "))).collect()
}

#[test]
fn lesson_02_wire_handshake_before_accept_and_fin_before_the_0_byte_recv() {
    let text = beside(2);
    let lines: Vec<&str> = text.lines().collect();
    // The handshake is over when connect returns, before accept.
    let syn_ack = "wire #1 server > client  SYN+ACK";
    before(&lines, 0, syn_ack, "connect(fd 4");
    before(&lines, 0, syn_ack, "accept(fd 3)");
    // The client's close sends its FIN; the server's recv then says 0.
    let at = before(&lines, 0, "close(fd 4) = 0", "recv(fd 5, 4096) = 0");
    before(&lines, 0, "wire #1 client > server  FIN+ACK", "close(fd 4)");
    assert!(!lines[at - 1].contains("wire"), "no segment between them");
    snapshot!("lesson_02__wire", text);
}

#[test]
fn lesson_04_wire_a_zero_window_when_the_reader_stops() {
    let text = beside(4);
    let part = section(&text, "std's write_all");
    // The server reads nothing: its buffer fills, and its ACK says so.
    let zero = before(&part, 0, "win 0", "= -1 EAGAIN");
    let zero = find(&part, 0, "win 0").min(zero);
    assert!(part[zero].contains("server > client  ACK"), "{part:#?}");
    // Closing with the data unread: RST (lesson 6).
    before(&part, 0, "close(fd 4) = 0", "server > client  RST+ACK");
    // The client's data segments: how many, and how long each, depends
    // on the buffer sizes; the first stands for them all. Whether the
    // client probes the zero window before its 100 ms are up, and so
    // whether the server says win 0 again, depends on timers: each
    // segment is shown once, probes not at all.
    let mut shown: Vec<&str> = Vec::new();
    for line in part {
        let data = line.contains("client > server") && line.contains("len ");
        let wire = line.contains("wire #");
        if (data && shown.iter().any(|l| l.contains("len ")))
            || line.contains("a probe")
            || (wire && shown.contains(&line))
        {
            continue;
        }
        shown.push(line);
    }
    snapshot!("lesson_04__wire", shown.join("\n") + "\n");
}

#[test]
fn lesson_06_wire_half_close_rst_and_time_wait_last_ack() {
    let text = beside(6);
    let lines: Vec<&str> = text.lines().collect();
    // shutdown(Write) sends a FIN; the server still sends its reply.
    let at = before(&lines, 0, "client > server  FIN+ACK", "SHUT_WR");
    before(&lines, at, "server > client  PSH+ACK  seq 1  ack 23", "= 13");
    // The client closed first: its last ACK ends the conversation and
    // leaves it in TIME_WAIT.
    before(&lines, at, "client > server  ACK      seq 23  ack 15", "TIME_WAIT");
    // SO_LINGER 0: close sends RST, and the client's recv fails.
    let at = find(&lines, 0, "SO_LINGER, {on, 0 s}");
    before(&lines, at, "wire #2 server > client  RST+ACK", "close(fd 5)");
    before(&lines, at, "RST+ACK", "ECONNRESET");
    // Unread data: RST even after a full reply.
    let at = find(&lines, 0, "close with unread data");
    before(&lines, at, "wire #3 server > client  RST+ACK", "close(fd 5)");
    // Writing to a closed peer: its kernel answers the data with RST.
    let at = find(&lines, 0, "writing to a peer that has closed");
    before(&lines, at, "wire #5 client > server  RST", "EPIPE");
    snapshot!("lesson_06__wire", text);
}

#[test]
fn lesson_08_wire_the_full_queue_drops_a_syn_and_it_is_resent() {
    let text = beside(8);
    let mut part = section(&text, "listen(1), 4 clients");
    part.extend(section(&text, "accept() makes room"));
    // The third client's SYN gets no SYN+ACK: the queue is full.
    let at = find(&part, 0, "wire #3 client > server  SYN ");
    let next = find(&part, at + 1, "wire #");
    assert!(part[next].contains("#4 client > server  SYN "), "{part:#?}");
    // After accept makes room, the same SYN, resent, is answered.
    let at = find(&part, 0, "accept(fd 3)");
    before(&part, at, "wire #3 client > server  SYN ", "SO_ERROR");
    let again = find(&part, at, "wire #3 client > server  SYN ");
    assert!(part[again + 1].contains("#3 server > client  SYN+ACK"));
    snapshot!("lesson_08__wire", part.join("\n") + "\n");
}

#[test]
fn lesson_09_wire_a_keepalive_probe_then_the_reset() {
    // About 3.5 s, the demo's own time (its keepalive waits 1 s, twice).
    let text = beside(9);
    let part = section(&text, "a peer that vanished without a FIN");
    // Keepalive on, the peer gone: after TCP_KEEPIDLE, one probe, a pure
    // ACK one byte behind, which nobody answers; then the kernel gives up
    // with a RST, and recv fails with ETIMEDOUT.
    let at = find(&part, 0, "TCP_KEEPIDLE, 1 s");
    let probe = find(&part, at, "server > client  ACK      seq 0  ack 1");
    assert!(part[probe].contains("a probe"), "{part:#?}");
    assert!(part[probe + 1].contains("server > client  RST+ACK"));
    assert!(part[probe + 2].contains("ETIMEDOUT"), "{part:#?}");
    snapshot!("lesson_09__wire", part.join("\n") + "\n");
}

#[test]
fn lesson_03_wire_accepting_without_answering_is_a_reset() {
    let text = beside(3);
    let lines: Vec<&str> = text.lines().collect();
    let at = find(&lines, 0, "accepting is not answering");
    // The request arrived; the server closes with it unread: RST.
    before(&lines, at, "wire #2 client > server  PSH+ACK", "accept(fd 3");
    before(&lines, at, "wire #2 server > client  RST+ACK", "close(fd 5)");
    before(&lines, at, "RST+ACK", "ECONNRESET");
    snapshot!("lesson_03__wire", text);
}

#[test]
fn lesson_05_wire_one_send_one_segment_two_sends_two_segments() {
    let text = beside(5);
    let lines: Vec<&str> = text.lines().collect();
    // One send of 20 bytes is one segment, which three recvs read.
    let one = find(&lines, 0, "client > server  PSH+ACK  seq 1  ack 1  len 20");
    assert!(lines[one + 1].contains("send(fd 4, \"one send, many recvs\")"));
    // Two sends are two segments, and one recv reads both.
    let two = before(&lines, one, "len 4", "recv(fd 5, 4096) = 8");
    let segments = lines[one..two].iter().filter(|l| l.contains("len 4"));
    assert_eq!(segments.count(), 2, "{text}");
    snapshot!("lesson_05__wire", text);
}

#[test]
fn lesson_07_wire_refused_is_a_rst_and_the_4_tuple() {
    let text = beside(7);
    let mut part = section(&text, "the 4-tuple");
    part.extend(section(&text, "nobody listening"));
    part.extend(section(&text, "TIME_WAIT and a restart"));
    // Nobody listens: the SYN is answered by RST, connect fails.
    let at = find(&part, 0, "nobody listening");
    let syn = find(&part, at, "client > server  SYN ");
    assert!(part[syn + 1].contains("server > client  RST+ACK"), "{part:#?}");
    assert!(part[syn + 2].contains("ECONNREFUSED"), "{part:#?}");
    // The old server closed first: it holds the TIME_WAIT.
    let at = find(&part, 0, "TIME_WAIT and a restart");
    before(&part, at, "server > client  FIN+ACK", "client > server  FIN+ACK");
    snapshot!("lesson_07__wire", part.join("\n") + "\n");
}

#[test]
fn lesson_12_wire_a_reset_client_and_a_half_closing_one() {
    let text = beside(12);
    let lines: Vec<&str> = text.lines().collect();
    let at = find(&lines, 0, "SO_LINGER, 0 s");
    before(&lines, at, "client > server  RST+ACK", "close(fd 6)");
    before(&lines, at, "RST+ACK", "ECONNRESET");
    // Client D's shutdown(Write) is a FIN; the server still answers.
    let at = find(&lines, at, "send(fd 6, \"bye\\n\"");
    before(&lines, at, "client > server  FIN+ACK", "SHUT_WR");
    before(&lines, at, "server > client  PSH+ACK", "send(fd 7, \"bye\\n\"");
    snapshot!("lesson_12__wire", text);
}

#[test]
fn lesson_13_wire_every_client_served_by_one_epoll_loop() {
    snapshot!("lesson_13__wire", beside(13));
}

#[test]
fn lesson_17_wire_connection_close_is_the_server_s_fin() {
    let text = beside(17);
    let part = section(&text, "Connection: close");
    // The reply, then at once the server's FIN, before the client has
    // read either.
    let reply = find(&part, 0, "server > client  PSH+ACK");
    assert!(part[reply + 2].contains("server > client  FIN+ACK"));
    before(&part, reply, "FIN+ACK", "recv(fd 6, 4096) = 0");
    snapshot!("lesson_17__wire", text);
}

#[test]
fn lesson_16_wire_localhost_refused_on_ipv6_then_ipv4() {
    let text = beside(16);
    let lines: Vec<&str> = text.lines().collect();
    // The first address, [::1]: nobody listens, the SYN gets RST.
    let at = find(&lines, 0, "connect(fd 4, [::1]:[PORT]) = -1 ECONNREFUSED");
    assert!(lines[at - 1].contains("server > client  RST+ACK"), "{text}");
    assert!(lines[at - 2].contains("client > server  SYN "), "{text}");
    // The second, 127.0.0.1: a handshake.
    let at = find(&lines, at, "connect(fd 4, 127.0.0.1:[PORT]) = 0");
    assert!(lines[at - 2].contains("server > client  SYN+ACK"), "{text}");
    snapshot!("lesson_16__wire", text);
}

#[test]
fn lesson_14_wire_datagrams_keep_their_boundaries_and_icmp_refuses() {
    let text = beside(14);
    let lines: Vec<&str> = text.lines().collect();
    // Two sendto calls, two datagrams of 5 bytes each.
    let hello = find(&lines, 0, "sendto(fd 4, \"hello\"");
    assert!(lines[hello - 1].contains("client > server  UDP      len 5"));
    assert!(lines[hello + 1].contains("client > server  UDP      len 5"));
    // Nobody on the port: ICMP port unreachable answers the datagram,
    // and the connected socket's next call fails with ECONNREFUSED.
    let at = find(&lines, 0, "a connected UDP socket, and nobody there");
    let icmp = find(&lines, at, "server > client  ICMP     port unreachable");
    assert!(lines[icmp - 1].contains("client > server  UDP      len 7"));
    before(&lines, icmp, "send(fd 5, \"anyone?\")", "ECONNREFUSED");
    // The unconnected socket gets the same ICMP, and is not told.
    let icmp = find(&lines, icmp + 1, "ICMP     port unreachable");
    before(&lines, icmp, "sendto(fd 4, \"anyone?\"", "EAGAIN");
    snapshot!("lesson_14__wire", text);
}

#[test]
fn lesson_18_beside_without_root_says_so_in_one_line() {
    // setpriv (util-linux) runs it as nobody, with no capability.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .arg(crate::support::bin(18))
        .args(["beside", "2"])
        .output()
        .expect("setpriv (util-linux) runs beside as nobody");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-18: unshare CLONE_NEWNET: Operation not permitted \
         (os error 1): a network namespace of its own needs root\n"
    );
}

#[test]
fn lesson_10_wire_b_waits_for_a_thread_then_is_answered_at_once() {
    // The server's threads (and forked children) run paced under beside:
    // each waits until its line is shown before its next call, so every
    // segment lands before the line of the call that sent it.
    let text = beside(10);
    let mut part: Vec<&str> = text
        .lines()
        .take_while(|line| !line.contains("waiting threads cost"))
        .collect();
    let fork = section(&text, "one process per client");
    // The timing's 200 short connections, which the transcript sums up in
    // a note, are left out: only their segments come between these two.
    let reaped = find(&fork, 0, "ECHILD: with SIG_IGN");
    let timing = find(&fork, reaped, "short connections a process each");
    assert!(fork[reaped + 1..timing].iter().all(|l| l.contains("wire #")));
    part.extend(&fork[..=reaped]);
    part.extend(&fork[timing..]);
    // One thread: B's line is in the server's buffer at once, but its
    // reply goes only once A's connection is closed.
    let at = find(&part, 0, "wire #2 client > server  PSH+ACK");
    assert!(part[at + 1].contains("send(fd 5, \"hello from B\\n\""));
    before(&part, at, "close(fd 6) = 0", "wire #2 server > client  PSH+ACK");
    // A thread each: B's reply goes before A has sent the rest of its line.
    let at = find(&part, 0, "one thread per client");
    let b = "#4 server > client  PSH+ACK";
    before(&part, at, b, "#3 client > server  PSH+ACK  seq 6");
    snapshot!("lesson_10__wire", part.join("\n") + "\n");
}

#[test]
fn lesson_11_wire_d_refused_and_c_answered_after_ctrl_c() {
    let text = beside(11);
    let lines: Vec<&str> = text.lines().collect();
    // D is over the limit: the server's one line, then its FIN.
    let at = find(&lines, 0, "3 connections open, the limit: refused");
    let reply = find(&lines, at, "wire #4 server > client  PSH+ACK");
    assert!(lines[reply + 1].contains("\"error: server busy\\n\", MSG_"));
    assert!(lines[reply + 2].contains("wire #4 server > client  FIN+ACK"));
    // After Ctrl-C, A and B get a FIN; C, queued, is answered first.
    let at = find(&lines, 0, "Ctrl-C: stop accepting");
    before(
        &lines,
        at,
        "wire #2 server > client  FIN",
        "#3 server > client  PSH",
    );
    snapshot!("lesson_11__wire", text);
}
