//! A solution of exercise 7: `SO_REUSEADDR` before `bind`, and the address
//! in the message.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

// ANCHOR: listen
/// A socket listening on `addr`, even while the connections of a server
/// that ran there before are in TIME_WAIT; when another server listens
/// there, one line that says so.
pub fn listen(addr: SocketAddr) -> Result<Socket, String> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .map_err(|err| format!("socket: {err}"))?;
    // What std does for every listener: TIME_WAIT does not block a bind,
    // a live listener still does (on Linux).
    socket
        .set_reuse_address(true)
        .map_err(|err| format!("setsockopt SO_REUSEADDR: {err}"))?;
    socket.bind(&addr.into()).map_err(|err| match err.kind() {
        io::ErrorKind::AddrInUse => format!(
            "{addr} is in use: another server listens there; stop it or \
             pick another port"
        ),
        _ => format!("bind {addr}: {err}"),
    })?;
    socket.listen(128).map_err(|err| format!("listen {addr}: {err}"))?;
    Ok(socket)
}
// ANCHOR_END: listen
