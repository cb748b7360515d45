//! A process per connection, as the classic Unix servers do it: `accept`,
//! then `fork`. The child is a copy of the server, with a copy of every
//! descriptor, the listening socket included; it serves its one client as
//! a thread of `server.rs` does (the same `serve`), then exits. The parent
//! goes straight back to `accept`.
//!
//! Two copies of each socket mean two closes: the parent closes the
//! connection (the child has its own), and the child closes the listener
//! (it accepts nothing). And a child that exits stays a zombie until its
//! parent waits for it: this server asks the kernel to reap its children.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use nix::libc::{EMFILE, ENFILE};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid, close, fork};
use transcript::{
    Failure, OrFail, Told, child, event, log, server, server_note, tell,
};

use crate::server::serve;

// ANCHOR: fork_run
/// Listens on `addr` and serves each client in a process of its own, for
/// ever.
pub fn run(addr: SocketAddr, idle: Duration) -> Result<(), Failure> {
    let listener = TcpListener::bind(addr).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    log!("Listening on {local}");
    reap_automatically()?;
    loop {
        accept_one(&listener, idle);
    }
}
// ANCHOR_END: fork_run

// ANCHOR: reap_automatically
/// A child that has exited stays a zombie, an entry in the process table
/// that holds its exit status, until its parent waits for it. This server
/// needs no exit status: with SIGCHLD's action set to SIG_IGN, the kernel
/// reaps each child itself (`man 2 waitpid`). The other way, a SIGCHLD
/// handler that calls `waitpid(-1, WNOHANG)` until it finds none, needs a
/// handler, and interrupts a waiting `accept` with EINTR.
pub fn reap_automatically() -> Result<(), Failure> {
    let ignore =
        SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN runs no code of ours in a signal handler.
    unsafe { nix::sys::signal::sigaction(Signal::SIGCHLD, &ignore) }
        .map(|_| ())
        .told(|| server("sigaction").args("SIGCHLD, SIG_IGN"))
}
// ANCHOR_END: reap_automatically

// ANCHOR: fork_accept_one
/// Accepts one connection and forks a child to serve it; returns the
/// child's pid, if one could be started.
pub fn accept_one(listener: &TcpListener, idle: Duration) -> Option<Pid> {
    let accepted = listener.accept().traced(|| server("accept").on(listener));
    let (conn, peer) = match accepted {
        Ok(accepted) => accepted,
        Err(err) => {
            // One connection failed: not a reason to stop serving. Out of
            // descriptors, pause rather than spin (see `server.rs`).
            event(format_args!("accept: {err}"));
            if matches!(err.raw_os_error(), Some(EMFILE | ENFILE)) {
                thread::sleep(Duration::from_millis(100));
            }
            return None;
        }
    };
    log!("Connected with {peer}");
    // In the demo, a pipe that carries the child's narration to the parent.
    let home = child::before_fork();
    // SAFETY: this process has one thread, so the child's copy of memory
    // holds no lock that another thread was in the middle of.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            home.in_child();
            serve_in_child(listener, conn, peer, idle)
        }
        Ok(ForkResult::Parent { child }) => {
            let pid = i64::from(child.as_raw());
            tell(|| server("fork").gave(&pid).shown("pid of the child"));
            // The child has its own copy of the connection. Were this one
            // kept, the child's close would not end the connection.
            close_stream(conn);
            home.in_parent();
            Some(child)
        }
        Err(err) => {
            event(format_args!("{peer}: fork: {err}: closed"));
            None
        }
    }
}
// ANCHOR_END: fork_accept_one

// ANCHOR: serve_in_child
/// The child: closes its copy of the listener, which it will not accept
/// on (held open, it would keep the port busy after the parent has gone),
/// serves its one client like a thread of `server.rs`, and exits.
fn serve_in_child(
    listener: &TcpListener,
    conn: TcpStream,
    peer: SocketAddr,
    idle: Duration,
) -> ! {
    server_note("in the child: a copy of the server, and of its descriptors");
    let fd = listener.as_raw_fd();
    // The parent's `TcpListener` is never dropped here: the child ends with
    // _exit, which runs no destructor.
    let _ = close(fd).traced(|| server("close").on_fd(fd));
    serve(conn, peer, idle);
    // SAFETY: _exit ends the process at once, as a forked child should: no
    // atexit handler or buffer of the parent's runs twice.
    unsafe { nix::libc::_exit(0) }
}
// ANCHOR_END: serve_in_child

/// Closes a connection: dropping it is `close(2)`.
fn close_stream(conn: TcpStream) {
    let fd = conn.as_raw_fd();
    drop(conn);
    tell(|| server("close").on_fd(fd).gave(&()));
    server_note("the parent's copy is closed: back to accept");
}
