//! What a server process says about itself: the descriptors it has open
//! (read from `/proc/self/fd`, no socket call), and its log lines.
//!
//! The servers of lessons 11 to 13 list their open descriptors at start and
//! after a graceful shutdown, to show that every socket they opened was
//! closed; they write their log with [`log`], which a closed stdout cannot
//! stop.

use std::fmt;
use std::io::{self, Write as _};
use std::os::fd::RawFd;

/// The descriptors this process has open, lowest first, as listed in
/// `/proc/self/fd` (see `man 5 proc`).
pub fn open_fds() -> io::Result<Vec<RawFd>> {
    let mut fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        // The directory being read is itself an open descriptor, a link to
        // /proc/<pid>/fd: skip it, it is gone once the listing is done.
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .map(|t| !t.starts_with("/proc/"))
                .unwrap_or(false)
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    Ok(fds)
}

/// [`open_fds`] for a log line: `0 1 2 3`, or `unknown` when `/proc` cannot
/// be read.
pub fn open_descriptors() -> String {
    open_fds()
        .map(|fds| numbers(&fds))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn numbers(fds: &[RawFd]) -> String {
    fds.iter().map(RawFd::to_string).collect::<Vec<_>>().join(" ")
}

/// Writes a server's log line to stdout. Writing fails when stdout is gone
/// (a closed pipe, a terminal that went away): the server goes on serving
/// rather than panic as `println!` would.
pub fn log(line: fmt::Arguments) {
    let _ = writeln!(io::stdout(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn open_fds_lists_a_file_while_it_is_open() {
        // Not a file under /proc: descriptors on /proc are left out.
        let file = std::fs::File::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/Cargo.toml"
        ))
        .unwrap();
        let open = open_fds().unwrap();
        // Other test threads open and close descriptors meanwhile: only
        // this one is known to be open during the listing.
        assert!(
            open.contains(&file.as_raw_fd()),
            "fd {} not in {open:?}",
            file.as_raw_fd()
        );
        assert!(open.is_sorted());
    }

    #[test]
    fn descriptors_are_listed_by_number_separated_by_spaces() {
        assert_eq!(numbers(&[0, 1, 2, 10]), "0 1 2 10");
        assert_eq!(numbers(&[]), "");
    }
}
