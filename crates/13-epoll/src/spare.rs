//! A descriptor kept spare for the day `accept` fails with `EMFILE`.

use std::fs::File;
use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;

use socket2::Socket;
use transcript::{Failure, Told, event, server, server_note, tell};

use crate::server::busy;

/// An open descriptor that holds a number for a client the server has no
/// room for.
pub struct Spare(Option<File>);

/// What the spare found when `accept` failed with `EMFILE`.
pub enum Found {
    /// A client was waiting: it was told "server busy" and closed.
    Refused,
    /// Nobody was waiting after all.
    Nobody,
    /// The spare itself is gone: pause accepting instead.
    NoSpare,
}

impl Spare {
    /// Opens the spare: `/dev/null`, which any process may open.
    pub fn open() -> Result<Spare, Failure> {
        let file = File::open("/dev/null").told(|| {
            server("open").args("\"/dev/null\", O_RDONLY|O_CLOEXEC")
        })?;
        Ok(Spare(Some(file)))
    }
}

// ANCHOR: emfile
impl Spare {
    /// `accept` failed with `EMFILE` (this process's limit) or `ENFILE`
    /// (the system's). The client stays queued and the listener stays
    /// ready: a level-triggered loop that just retries would spin at full
    /// speed. Give up the spare descriptor, accept the client into its
    /// place, tell it "server busy", close it, and take the spare back. The
    /// kernel takes a descriptor number before it looks at the queue, so
    /// `EMFILE` comes even when nobody waits: only the `accept` with the
    /// spare's number says which it is.
    pub fn refuse_one(&mut self, listener: &Socket, err: io::Error) -> Found {
        let Some(spare) = self.0.take() else {
            event(format_args!("accept: {err}: pausing accepts"));
            return Found::NoSpare;
        };
        event(format_args!("accept: {err}: using the spare descriptor"));
        let fd = spare.as_raw_fd();
        drop(spare);
        tell(|| server("close").on_fd(fd).gave(&()));
        let accepted = listener
            .accept4(nix::libc::SOCK_NONBLOCK | nix::libc::SOCK_CLOEXEC)
            .traced(|| accept_call(listener));
        let found = match accepted {
            Ok((socket, _)) => {
                busy(TcpStream::from(socket));
                Found::Refused
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                server_note(
                    "nobody was waiting: accept takes a descriptor number \
                     before it looks at the queue",
                );
                Found::Nobody
            }
            Err(_) => Found::Nobody,
        };
        self.0 = Spare::open().ok().and_then(|spare| spare.0);
        found
    }
}
// ANCHOR_END: emfile

impl Spare {
    /// Closes the spare, after the loop.
    pub fn close(mut self) {
        if let Some(spare) = self.0.take() {
            let fd = spare.as_raw_fd();
            drop(spare);
            tell(|| server("close").on_fd(fd).gave(&()));
        }
    }
}

/// The narration of the server's `accept` calls.
pub fn accept_call(listener: &Socket) -> transcript::Call {
    server("accept").on(listener).args("SOCK_NONBLOCK|SOCK_CLOEXEC")
}
