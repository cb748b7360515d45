//! What every check needs: run the reader's code in a thread and wait for
//! it a bounded time, read a bounded amount with a timeout, show bytes.
//! No exercise's socket code lives here.

use std::any::Any;
use std::io::{self, Read};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// The reader's code, running in its own thread.
pub struct Running<T> {
    what: String,
    done: Receiver<thread::Result<T>>,
}

/// Starts `f`, the reader's code, in a thread. A check then `wait`s for
/// it: a call that never returns fails the check instead of hanging it.
pub fn start<T, F>(what: impl Into<String>, f: F) -> Running<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, done) = mpsc::channel();
    thread::spawn(move || {
        // A panic is the reader's bug: report it, not crash the checker.
        let _ =
            tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    Running { what: what.into(), done }
}

impl<T> Running<T> {
    /// `None` while the reader's code runs; what it returned, or that it
    /// panicked, once it has ended.
    pub fn ended(&self) -> Option<Result<T, String>> {
        match self.done.try_recv() {
            Ok(Ok(value)) => Some(Ok(value)),
            Ok(Err(panic)) => Some(Err(self.panicked(&*panic))),
            Err(_) => None,
        }
    }

    fn panicked(&self, panic: &(dyn Any + Send)) -> String {
        format!("{} panicked: {}", self.what, panic_text(panic))
    }

    /// What the reader's code returned, or why the check fails: it is still
    /// running after `limit` (the thread is left behind), or it panicked.
    pub fn wait(self, limit: Duration) -> Result<T, String> {
        match self.done.recv_timeout(limit) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(self.panicked(&*panic)),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{} had not returned after {} ms",
                self.what,
                limit.as_millis()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                Err(format!("{} ended without a result", self.what))
            }
        }
    }
}

fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

/// Reads from `stream` until `enough` says the bytes so far are enough,
/// the peer closes, `limit` bytes have come, or nothing comes for
/// `timeout`: a check never waits for ever, whatever the reader's code
/// does. Returns what came.
pub fn read_until(
    stream: &TcpStream,
    limit: usize,
    timeout: Duration,
    enough: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(timeout))?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < limit && !enough(&got) {
        let room = (limit - got.len()).min(buf.len());
        match (&*stream).read(&mut buf[..room]) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

/// Bytes as a reader would write them in Rust: `"HELLO\n"`, `""`; long
/// ones cut, with their length.
pub fn shown(bytes: &[u8]) -> String {
    const MOST: usize = 40;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MOST)]);
    if bytes.len() > MOST {
        format!("{text:?}... ({} bytes)", bytes.len())
    } else {
        format!("{text:?}")
    }
}

/// How long a check waits for the reader's code to do what it should: far
/// more than loopback needs, short enough that a failing check ends soon.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// What exercise 18's `count` finds in a conversation: a struct of its
/// own here, so that the reader's file and the solution return the same
/// type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Every TCP segment, each counted once.
    pub segments: usize,
    /// Those with the SYN flag.
    pub syns: usize,
    /// Those with the FIN flag.
    pub fins: usize,
    /// The bytes of data they carried, both ways.
    pub bytes: usize,
}
