//! The check of exercise 13: two clients connect at once, each sends
//! 20,000 bytes in one write, and each must get them all back; and every
//! `epoll` entry of the process must be edge-triggered.

use std::fs;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};

use crate::harness::{PATIENCE, read_until, start};

/// More than one read of 4096 bytes takes: what is left after the first
/// read gets no new edge.
const SIZE: usize = 20_000;

/// Runs `serve` on a listener at 127.0.0.1, port 0, with two clients.
pub fn check(serve: fn(TcpListener) -> io::Result<()>) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check: {err}");
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(failed)?;
    let addr = listener.local_addr().map_err(failed)?;
    // The server runs for ever; its thread is left when the check ends.
    let server = start("serve", move || serve(listener));
    let a = connect(addr)?;
    let b = connect(addr)?;
    for (who, client) in [("A", &a), ("B", &b)] {
        let sent: Vec<u8> = (0..SIZE).map(|i| b'a' + (i % 26) as u8).collect();
        (&*client).write_all(&sent).map_err(failed)?;
        let got =
            read_until(client, SIZE, PATIENCE, |_| false).map_err(failed)?;
        if got != sent {
            return Err(format!(
                "client {who} sent {SIZE} bytes in one write; it must get \
                 them all back, and got {} in {} ms: with EPOLLET, a socket \
                 is reported once per arrival, not while bytes are unread",
                got.len(),
                PATIENCE.as_millis()
            ));
        }
    }
    edge_triggered()?;
    match server.ended() {
        None => Ok(()),
        Some(Ok(Ok(()))) => {
            Err("serve returned: it must serve for ever".into())
        }
        Some(Ok(Err(err))) => Err(format!("serve failed: {err}")),
        Some(Err(panicked)) => Err(panicked),
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect(addr).map_err(|err| format!("a client: {err}"))
}

/// Every entry of every `epoll` in this process has `EPOLLET`: its
/// `/proc/self/fdinfo` lists one `tfd:` line per entry, with the events
/// in hexadecimal (`man 5 proc`).
fn edge_triggered() -> Result<(), String> {
    const EPOLLET: u32 = 1 << 31;
    let failed = |err: io::Error| format!("the check: /proc/self/fd: {err}");
    let mut entries = 0;
    for entry in fs::read_dir("/proc/self/fd").map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let is_epoll = fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]");
        let info = entry.file_name();
        let info = format!("/proc/self/fdinfo/{}", info.to_string_lossy());
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
        return Err("the server must wait with epoll; no epoll of the \
                    process has an entry"
            .into());
    }
    Ok(())
}
