//! The check of exercise 13: the reader's server runs as a process of its
//! own; two Python clients connect at once, each sends 20,000 bytes in one
//! write, and each must get them all back; and every `epoll` entry of the
//! server's process must be edge-triggered.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};

use crate::harness::{PATIENCE, Peers, Program, Which, announce};

/// More than one read of 4096 bytes takes: what is left after the first
/// read gets no new edge.
const SIZE: usize = 20_000;

/// The reader's program: `serve` on a listener at 127.0.0.1, port 0.
pub fn run(serve: fn(TcpListener) -> io::Result<()>) -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    announce(listener.local_addr()?)?;
    serve(listener)
}

/// Starts the server, with two clients.
pub fn check(which: Which) -> Result<(), String> {
    let mut server = Program::start("13", which, &[], "your server")?;
    let addr = server.listening()?;
    // A client that finds the server gone says only that it is gone:
    // how the server ended says more.
    let talked = (|| {
        let mut peers = Peers::start()?;
        peers.tcp("A", &addr)?;
        peers.tcp("B", &addr)?;
        for who in ["A", "B"] {
            let sent: Vec<u8> =
                (0..SIZE).map(|i| b'a' + (i % 26) as u8).collect();
            peers.send(who, &sent)?;
            let (got, _) = peers.recv(who, SIZE, PATIENCE, b"")?;
            if got != sent {
                return Err(format!(
                    "client {who} sent {SIZE} bytes in one write; it must \
                     get them all back, and got {} in {} ms: with EPOLLET, a \
                     socket is reported once per arrival, not while bytes \
                     are unread",
                    got.len(),
                    PATIENCE.as_millis()
                ));
            }
        }
        edge_triggered(server.pid())?;
        Ok(())
    })();
    server.blame(talked)?;
    server.still_serving()
}

/// Every entry of every `epoll` in process `pid` has `EPOLLET`: its
/// `/proc/PID/fdinfo` lists one `tfd:` line per entry, with the events
/// in hexadecimal (`man 5 proc`).
fn edge_triggered(pid: u32) -> Result<(), String> {
    const EPOLLET: u32 = 1 << 31;
    let failed = |err: io::Error| format!("the check: /proc/{pid}/fd: {err}");
    let mut entries = 0;
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let is_epoll = fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]");
        let info = entry.file_name();
        let info = format!("/proc/{pid}/fdinfo/{}", info.to_string_lossy());
        let Ok(info) = fs::read_to_string(info) else {
            continue;
        };
        for line in info.lines().filter(|l| is_epoll && l.starts_with("tfd:")) {
            entries += 1;
            let events = line
                .split_whitespace()
                .skip_while(|w| *w != "events:")
                .nth(1)
                .and_then(|e| u32::from_str_radix(e, 16).ok());
            if events.is_none_or(|e| e & EPOLLET == 0) {
                return Err(format!(
                    "every socket must be registered with EPOLLET; an entry \
                     of the epoll is not: {line}"
                ));
            }
        }
    }
    if entries == 0 {
        return Err("the server must wait with epoll; no epoll of its \
                    process has an entry"
            .into());
    }
    Ok(())
}
