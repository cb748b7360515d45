//! Exercise 1 (lesson 1): which of this process's descriptors are sockets.
//! Edit this file; `just check 1` says whether it works, `just hint 1`
//! gives a hint.

use std::fs;
use std::io;
use std::os::fd::RawFd;

/// The descriptors of this process that are sockets, each with its inode
/// (the N of `socket:[N]`), in any order.
///
/// To do: as it stands it lists every descriptor, files too, with inode 0.
/// Keep only the sockets, with their inodes.
pub fn sockets() -> io::Result<Vec<(RawFd, u64)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        // Each entry's name is a descriptor's number.
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>()
        else {
            continue;
        };
        found.push((fd, 0));
    }
    Ok(found)
}
