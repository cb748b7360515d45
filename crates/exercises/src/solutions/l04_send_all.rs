//! A solution of exercise 4: a write-all loop on a nonblocking socket.

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

// ANCHOR: send_all
/// Sends every byte of `data` on the nonblocking `conn`: offer what is
/// left, advance by what the kernel took; when it takes nothing, wait for
/// room.
pub fn send_all(conn: &TcpStream, data: &[u8]) -> io::Result<()> {
    let mut sent = 0;
    while sent < data.len() {
        match (&*conn).write(&data[sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                wait_for_room(conn)?
            }
            // A signal came before any byte was taken: send again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
// ANCHOR_END: send_all

// ANCHOR: wait_for_room
/// Sleeps in `poll` until the send buffer has room again: the peer's ACKs
/// free it. Without this the loop would spin on `WouldBlock`.
fn wait_for_room(conn: &TcpStream) -> io::Result<()> {
    let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::NONE) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}
// ANCHOR_END: wait_for_room
