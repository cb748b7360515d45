//! A solution of exercise 12: a chat server, one thread, one `poll` per
//! turn.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// One client: its socket and the start of a line not yet complete.
struct Client {
    conn: TcpStream,
    partial: Vec<u8>,
}

// ANCHOR: serve
/// Serves the clients of `listener` from this one thread, for ever: each
/// line a client sends goes to every other client connected.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut clients: Vec<Client> = Vec::new();
    loop {
        let mut watched =
            vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        for client in &clients {
            watched.push(PollFd::new(client.conn.as_fd(), PollFlags::POLLIN));
        }
        poll(&mut watched, PollTimeout::NONE)?;
        let ready: Vec<bool> =
            watched.iter().map(|p| p.any() == Some(true)).collect();
        drop(watched);
        for i in (0..clients.len()).rev() {
            if ready[i + 1] && !read_lines(&mut clients, i) {
                clients.swap_remove(i); // dropped: closed
            }
        }
        // Accept until EAGAIN: several clients may be waiting.
        while ready[0]
            && let Ok((conn, _peer)) = listener.accept()
        {
            conn.set_nonblocking(true)?;
            clients.push(Client { conn, partial: Vec::new() });
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: read_lines
/// One `recv` from client `i`; each line it completes goes to the others.
/// `false` when the client is over.
fn read_lines(clients: &mut [Client], i: usize) -> bool {
    let mut buf = [0u8; 4096];
    let n = match (&clients[i].conn).read(&mut buf) {
        Ok(0) => return false, // the client closed
        Ok(n) => n,
        Err(err) => return err.kind() == ErrorKind::WouldBlock,
    };
    clients[i].partial.extend_from_slice(&buf[..n]);
    while let Some(end) = clients[i].partial.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = clients[i].partial.drain(..=end).collect();
        for (j, other) in clients.iter().enumerate() {
            // A peer too slow to take a line loses it: a server that
            // waited for it would stop serving everyone else.
            if j != i {
                let _ = (&other.conn).write_all(&line);
            }
        }
    }
    true
}
// ANCHOR_END: read_lines
