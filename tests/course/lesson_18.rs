//! Lesson 18: a packet socket watches one TCP conversation on loopback.
//!
//! The demo opens an AF_PACKET socket, which needs root or CAP_NET_RAW:
//! CI runs as root. Without either, these tests fail with the lesson's own
//! one-line message rather than passing without having looked.

use std::process::Command;

use crate::snapshot;
use crate::support::{bin, help, run, stable_demo, stdout_of};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(18);
    // The article's figure, drawn from the segments the kernel sent.
    for arrow in [
        "|--- SYN seq 0 ---",
        "|<-- SYN+ACK seq 0 ack 1 ---",
        "|--- PSH+ACK seq 1 ack 1 len 6 ---",
        "|<-- FIN+ACK seq 1 ack 8 ---",
        "|<-- RST+ACK seq 1 ack 1 ---",
    ] {
        assert!(transcript.contains(arrow), "no {arrow:?} in\n{transcript}");
    }
    snapshot!("lesson_18__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_18__help", help(18));
    snapshot!(
        "lesson_18__help_watch",
        stdout_of(&run(18, &["watch", "--help"], b""))
    );
}

#[test]
fn without_cap_net_raw_the_watcher_says_so_in_one_line() {
    // setpriv (util-linux) runs the watcher as nobody, with no capability.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .arg(bin(18))
        .args(["watch", "--port", "9"])
        .output()
        .expect("setpriv (util-linux) runs the watcher as nobody");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lesson-18: socket AF_PACKET: not permitted: \
         watching packets needs root or CAP_NET_RAW\n"
    );
}

#[test]
fn bad_arguments_get_a_message_and_a_non_zero_exit() {
    let out = run(18, &["watch", "--idle=0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("lesson-18: --idle:")
    );
}
