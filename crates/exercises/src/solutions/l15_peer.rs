//! A solution of exercise 15: a Unix socket server that tells each client
//! who it is, from `SO_PEERCRED`.

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::sys::socket::{getsockopt, sockopt};

/// Serves the clients of `listener` one after the other, for ever.
pub fn serve(listener: UnixListener) -> io::Result<()> {
    loop {
        let (conn, _addr) = listener.accept()?;
        // An error concerns this client only: the server goes on.
        if let Err(err) = tell(&conn) {
            eprintln!("{err}");
        }
    }
}

// ANCHOR: tell
/// Sends the client its pid and uid, as the kernel recorded them when it
/// called connect.
fn tell(conn: &UnixStream) -> io::Result<()> {
    let peer = getsockopt(conn, sockopt::PeerCredentials)?;
    let (pid, uid) = (peer.pid(), peer.uid());
    (&*conn).write_all(format!("pid {pid} uid {uid}\n").as_bytes())
}
// ANCHOR_END: tell
