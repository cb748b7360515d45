//! `select`, the call `poll` replaced. It takes three sets of descriptors
//! (read, write, error) and sleeps until one of them is ready, like `poll`;
//! but a set, `fd_set`, is a bitmap with one bit per descriptor number, and
//! it has `FD_SETSIZE` bits: 1024 on Linux. A descriptor numbered 1024 or
//! more has no bit, however few descriptors the program watches.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::sys::select::{FD_SETSIZE, FdSet, select};
use transcript::{Failure, Told, server};

// ANCHOR: readable
/// Waits, with `select(2)`, until one of `fds` is readable, and returns
/// those that are. A descriptor of `FD_SETSIZE` or more is refused before
/// anything is done: C's `FD_SET` would write past the end of the set, and
/// nix's `FdSet::insert` panics. Only a different call can watch it: poll.
pub fn readable(fds: &[BorrowedFd]) -> Result<Vec<RawFd>, Failure> {
    let numbers: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    if let Some(&fd) = numbers.iter().find(|&&fd| fd as usize >= FD_SETSIZE) {
        return Err(Failure::new(
            "select",
            format!("fd {fd} is not below FD_SETSIZE ({FD_SETSIZE})"),
        ));
    }
    let mut set = FdSet::new();
    for fd in fds {
        set.insert(*fd);
    }
    // select looks at the bits below nfds: the highest descriptor, plus one.
    let nfds = numbers.iter().max().map_or(0, |fd| fd + 1);
    let watched = numbers.iter().map(|fd| format!("fd {fd}"));
    let watched = watched.collect::<Vec<_>>().join(" ");
    select(nfds, &mut set, None, None, None).map(i64::from).told(|| {
        server("select")
            .args(format_args!("{nfds}, [{watched}], NULL, NULL, NULL"))
    })?;
    // On return the set holds only the descriptors that are ready.
    Ok(fds
        .iter()
        .filter(|fd| set.contains(**fd))
        .map(|fd| fd.as_raw_fd())
        .collect())
}
// ANCHOR_END: readable
