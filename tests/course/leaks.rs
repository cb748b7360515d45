//! A reader's shell, editor or task runner may start the demos with
//! descriptors left open beyond stdin, stdout and stderr (just 1.43 leaked
//! fds 3 and 4; the shell this course was written in leaked 10 and 251).
//! Such a descriptor may change the numbers the kernel gives the demo's own
//! sockets, so the transcript differs from the book's, but it must never
//! change what a demo shows, nor make it hang: each demo still runs to the
//! end, exits 0, and none of its checks says it did not see what it shows.

use crate::kernel::lessons;
use crate::support::run_leaking;

/// What a demo prints when a step did not turn out as the lesson says.
const NOT_SHOWN: &str = "NOT what";

#[test]
fn every_demo_runs_to_the_end_with_descriptors_leaked_to_it() {
    // A descriptor number must be below the soft RLIMIT_NOFILE; 251 is
    // what the shell this course was written in leaked.
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit, which `limit` is.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0,
        "getrlimit"
    );
    let high = (limit.rlim_cur.saturating_sub(1)).min(251) as i32;
    for leaked in [vec![10, high], vec![3]] {
        for n in lessons() {
            let output = run_leaking(n, &[], &leaked);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "lesson {n} with fds {leaked:?} leaked: {:?}\nstdout:\n{stdout}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                !stdout.contains(NOT_SHOWN),
                "lesson {n} with fds {leaked:?} leaked did not show what it shows:\n{stdout}"
            );
        }
    }
}
