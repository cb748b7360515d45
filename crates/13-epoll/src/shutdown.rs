//! Ctrl-C as data: the shutdown signals, read from a signalfd that sits in
//! the same `epoll` as the sockets.

use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use transcript::{Failure, Outcome, Ret, Told, event, server, tell};

use crate::server::Server;

/// SIGINT is Ctrl-C; SIGTERM is what `kill` and service managers send.
fn shutdown_signals() -> SigSet {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
}

/// A descriptor nix wraps in a type of its own, for a transcript line
/// (`= fd 3`).
pub struct NewFd<T>(pub T);

impl<T: AsRawFd> Outcome for NewFd<T> {
    fn ret(&self) -> Ret {
        Ret::Fd(self.0.as_raw_fd())
    }
}

// ANCHOR: signalfd
/// Blocks the shutdown signals and opens a signalfd to read them from.
/// A blocked signal is not delivered; it waits, and a signalfd hands it
/// out as data to read (`man 2 signalfd`). Blocked before any thread
/// exists, so no thread takes them the old way (SIGINT's default action
/// kills the process).
pub fn signalfd() -> Result<SignalFd, Failure> {
    shutdown_signals()
        .thread_block()
        .told(|| server("sigprocmask").args("SIG_BLOCK, [SIGINT SIGTERM]"))?;
    let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
    let signals = SignalFd::with_flags(&shutdown_signals(), flags)
        .map(NewFd)
        .told(|| {
        server("signalfd")
            .args("-1, [SIGINT SIGTERM], SFD_NONBLOCK|SFD_CLOEXEC")
    })?;
    Ok(signals.0)
}

/// The signalfd is readable: reads one signal, and names it (`SIGINT`).
/// `None` if there was none after all.
pub fn read(signals: &SignalFd) -> Option<String> {
    const SIZE: usize = size_of::<libc::signalfd_siginfo>();
    let got = signals.read_signal();
    let name = match &got {
        Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32)
            .map_or("a signal".to_string(), |s| s.to_string()),
        _ => String::new(),
    };
    let fd = signals.as_raw_fd();
    tell(|| {
        let read = server("read").on_fd(fd).args(SIZE);
        match &got {
            Ok(Some(_)) => read.gave(&SIZE).detail(&name),
            Ok(None) => read.failed(&Errno::EAGAIN),
            Err(err) => read.failed(err),
        }
    });
    matches!(got, Ok(Some(_))).then_some(name)
}
// ANCHOR_END: signalfd

// ANCHOR: on_signal
impl Server {
    /// The signalfd is readable: a shutdown signal is waiting to be read.
    pub fn on_signal(&mut self) {
        let Some(name) = read(&self.signals) else { return };
        if !self.stopping {
            event(format_args!(
                "{name}: stop accepting, answer what has arrived, then close"
            ));
            return self.begin_shutdown();
        }
        // A second signal while clients hold the shutdown up: close them
        // all now. The loop still ends through `stop`, which closes the
        // rest and reports what is left open.
        event(format_args!("{name} again: closing every connection now"));
        self.forced = true;
        for (fd, conn) in self.conns.iter_mut() {
            conn.kill();
            self.touched.push(fd);
        }
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
        // Closing it also takes it off the interest list (man 7 epoll).
        if let Some(listener) = self.listener.take() {
            close(listener);
        }
        for (fd, conn) in self.conns.iter_mut() {
            self.touched.push(fd);
            // Read what has arrived, until EAGAIN, and answer it; but no
            // further than HIGH_WATER of replies, as in every turn: a
            // client that sends without end would keep this loop reading,
            // and its replies growing, for ever.
            let buf = &mut self.recv_buf;
            while conn.reads() && conn.receive(buf, &mut false) {}
            conn.end_input();
            conn.flush();
        }
    }
}
// ANCHOR_END: begin_shutdown

impl Server {
    /// After the loop: the signalfd, the spare and the epoll go. Returns
    /// whether a second signal cut the shutdown short.
    pub fn stop(self) -> bool {
        close(self.signals);
        self.spare.close();
        close(self.epoll.0);
        self.forced
    }
}

/// Closes a descriptor by dropping it, and says so.
pub fn close<T: AsRawFd>(fd: T) {
    let number: RawFd = fd.as_raw_fd();
    drop(fd);
    tell(|| server("close").on_fd(number).gave(&()));
}
