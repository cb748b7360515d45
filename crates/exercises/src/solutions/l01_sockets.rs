//! A solution of exercise 1: which of this process's descriptors are
//! sockets.

use std::fs;
use std::io;
use std::os::fd::RawFd;

// ANCHOR: sockets
/// The descriptors of this process that are sockets, each with its inode
/// (the N of `socket:[N]`), in any order.
pub fn sockets() -> io::Result<Vec<(RawFd, u64)>> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<RawFd>()
        else {
            continue;
        };
        // A descriptor another thread closed since read_dir listed it has
        // no link any more: there is nothing to report.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        let inode = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(inode) = inode {
            found.push((fd, inode));
        }
    }
    Ok(found)
}
// ANCHOR_END: sockets
