//! The check of exercise 1: a TCP listener, a UDP socket and a file are
//! open; the two sockets must be listed with their inodes, the file not.
//!
//! In the check's process, in a thread: `sockets` lists the descriptors of
//! the process that calls it, so the sockets it must find are opened in
//! that process.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::stat::fstat;

use crate::harness::{PATIENCE, start};

/// Opens the three, runs `sockets` and compares its list with `fstat`'s
/// inodes. Other descriptors may be open too: only these three are judged.
pub fn check(
    sockets: fn() -> io::Result<Vec<(RawFd, u64)>>,
) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let file = File::open("/proc/self/status").map_err(failed)?;
    let found = start("sockets", sockets)
        .wait(PATIENCE)?
        .map_err(|err| format!("sockets failed: {err}"))?;
    let fd = file.as_raw_fd();
    if let Some((_, inode)) = found.iter().find(|(f, _)| *f == fd) {
        return Err(format!(
            "fd {fd} is a file (/proc/self/status), not a socket, but \
             sockets listed it (with inode {inode})"
        ));
    }
    let inodes = [
        ("a TCP listener", tcp.as_raw_fd(), fstat(&tcp)),
        ("a UDP socket", udp.as_raw_fd(), fstat(&udp)),
    ];
    for (what, fd, stat) in inodes {
        let inode =
            stat.map_err(|err| format!("the check: fstat: {err}"))?.st_ino;
        match found.iter().find(|(f, _)| *f == fd) {
            Some((_, listed)) if *listed == inode => {}
            Some((_, listed)) => {
                return Err(format!(
                    "fd {fd}, {what}, is socket:[{inode}]; sockets listed \
                     it with inode {listed}"
                ));
            }
            None => {
                return Err(format!(
                    "fd {fd} is {what}, socket:[{inode}]; sockets did not \
                     list it"
                ));
            }
        }
    }
    Ok(())
}
