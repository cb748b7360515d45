//! Ctrl-C as a byte: the self-pipe. `poll` waits for descriptors and
//! nothing else, and a signal handler may do almost nothing (`man 7
//! signal-safety`), but it may `write` a byte. So the handler writes one
//! into a socket pair whose other end is in the `poll` list, and the loop,
//! back in ordinary code, starts the shutdown.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction,
};
use socket2::{Domain, Socket, Type};
use transcript::{
    Failure, OrFail, Outcome, Ret, Told, event, server, server_note, tell,
};

use crate::server::Server;

/// The write end of the self-pipe, for the signal handler. An atomic,
/// because a handler may read no lock and no ordinary `static mut`.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);

/// Shutdown signals received so far.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

// ANCHOR: handler
/// Runs in the middle of whatever the thread was doing: only
/// async-signal-safe calls (`man 7 signal-safety`). A second signal ends
/// the process at once, for when a client keeps the shutdown waiting.
extern "C" fn on_shutdown_signal(_signal: libc::c_int) {
    let saved = Errno::last_raw();
    if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: _exit is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(130) };
    }
    let byte = b"!";
    // SAFETY: write is async-signal-safe; the pointer and length describe
    // a live static byte. A full pipe (EAGAIN) already holds a wake-up.
    let _ = unsafe {
        libc::write(WAKE_FD.load(Ordering::SeqCst), byte.as_ptr().cast(), 1)
    };
    // The interrupted code may be about to read errno: leave it as it was.
    Errno::set_raw(saved);
}
// ANCHOR_END: handler

/// The self-pipe: `poll` watches `read`, the handler writes to `write`.
pub struct Signals {
    read: UnixStream,
    write: UnixStream,
}

/// What `socketpair` returned, as the transcript shows it.
struct Pair(Socket, Socket);

impl Outcome for Pair {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        format!("fds {} and {}", self.0.as_raw_fd(), self.1.as_raw_fd())
    }
}

// ANCHOR: catch
impl Signals {
    /// A socket pair as the self-pipe, then a handler for SIGINT and
    /// SIGTERM that writes a byte into it.
    pub fn catch() -> Result<Signals, Failure> {
        // A socket pair serves as a pipe, non-blocking at both ends: the
        // handler must never wait, nor the loop.
        let Pair(read, write) =
            Socket::pair(Domain::UNIX, Type::STREAM.nonblocking(), None)
                .map(|(a, b)| Pair(a, b))
                .told(|| {
                    server("socketpair")
                        .args("AF_UNIX, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC")
                })?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        // SA_RESTART: calls other than poll resume after the handler; poll
        // always returns EINTR, and the loop then finds the byte.
        let action = SigAction::new(
            SigHandler::Handler(on_shutdown_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: the handler only makes async-signal-safe calls and
            // reads atomics.
            unsafe { sigaction(signal, &action) }
                .or_fail(format!("sigaction {signal}"))?;
        }
        server_note(format_args!(
            "SIGINT and SIGTERM now run a handler that writes a byte to fd {}",
            write.as_raw_fd()
        ));
        let (read, write) = (UnixStream::from(read), UnixStream::from(write));
        Ok(Signals { read, write })
    }
}
// ANCHOR_END: catch

impl Signals {
    /// The end the handler writes to.
    pub fn writer(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// Takes the handler's byte out of the pipe, so that `poll` does not
    /// report it again.
    pub fn take(&self) {
        let mut byte = [0u8; 16];
        let _ = (&self.read)
            .read(&mut byte)
            .traced(|| server("recv").on(&self.read).args(byte.len()));
    }

    /// After the loop: the signals get their default action back, then
    /// the self-pipe is closed, so that a late signal cannot write to a
    /// descriptor number that something else may get next.
    pub fn release(self) {
        let default = SigAction::new(
            SigHandler::SigDfl,
            SaFlags::empty(),
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM] {
            // SAFETY: restoring the default disposition installs no handler.
            let _ = unsafe { sigaction(signal, &default) };
        }
        WAKE_FD.store(-1, Ordering::SeqCst);
        server_note(
            "the signals get their default action back; then the self-pipe goes",
        );
        close(self.read);
        close(self.write);
    }
}

impl AsFd for Signals {
    /// The end `poll` watches.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

// ANCHOR: on_signal
impl Server {
    /// The self-pipe is readable: a signal came.
    pub fn on_signal(&mut self) {
        self.signals.take();
        event(
            "a shutdown signal: stop accepting, \
             answer what has arrived, then close",
        );
        self.begin_shutdown();
    }
}
// ANCHOR_END: on_signal

// ANCHOR: begin_shutdown
impl Server {
    /// Stops accepting and ends every connection's input: what has arrived
    /// is answered, then each connection closes as its replies go out.
    pub fn begin_shutdown(&mut self) {
        if std::mem::replace(&mut self.stopping, true) {
            return;
        }
        // Clients in the listener's queue think they are connected (lesson
        // 8): take them, rather than reset them by closing the listener.
        self.accept_all();
        if let Some(listener) = self.listener.take() {
            close(listener);
        }
        for (_, conn) in self.conns.iter_mut() {
            // Read what has arrived, until EAGAIN, and answer it; but no
            // further than HIGH_WATER of replies, as in every turn: a
            // client that sends without end would keep this loop reading,
            // and its replies growing, for ever.
            while conn.reads() && conn.receive(&mut false) {}
            conn.end_input();
            conn.flush();
        }
    }
}
// ANCHOR_END: begin_shutdown

impl Server {
    /// After the loop: the signals get their default action back, and the
    /// self-pipe goes.
    pub fn stop(self) {
        self.signals.release();
    }
}

/// Closes a descriptor by dropping it, and says so.
pub fn close<T: AsRawFd>(fd: T) {
    let number: RawFd = fd.as_raw_fd();
    drop(fd);
    tell(|| server("close").on_fd(number).gave(&()));
}
