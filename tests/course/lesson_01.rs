//! Lesson 1: a socket is a file descriptor.

use crate::snapshot;
use crate::support::{help, stable_demo};

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(1);
    // The claims the chapter makes, asserted before the snapshot is compared.
    assert!(
        transcript.contains("(S_IFSOCK: a socket)"),
        "fstat names a socket"
    );
    assert!(transcript.contains("same inode as fstat's st_ino: yes"));
    assert!(transcript.contains("the closed number was reused: yes"));
    snapshot!("lesson_01__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_01__help", help(1));
}
