//! How values and errors look in a transcript line.

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use socket2::{SockAddr, Socket};

use crate::Ret;

/// A successful result of a system call, as a transcript shows it.
pub trait Outcome {
    /// The value the kernel returned.
    fn ret(&self) -> Ret;
    /// Words printed after the value (a peer address), or nothing.
    fn detail(&self) -> String {
        String::new()
    }
}

/// Success with nothing to return: the call returned 0.
impl Outcome for () {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
}

/// A byte count (`send`, `recv`, `read`, `write`).
impl Outcome for usize {
    fn ret(&self) -> Ret {
        Ret::Value(*self as i64)
    }
}

/// A boolean socket option read with `getsockopt`: the call returns 0 and
/// fills in the option's value, shown after it.
impl Outcome for bool {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        if *self { "value 1: on" } else { "value 0: off" }.to_string()
    }
}

/// An integer socket option read with `getsockopt` (`SO_SNDBUF`): the call
/// returns 0 and fills in the value, shown after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionValue(pub usize);

impl Outcome for OptionValue {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        format!("value {}", self.0)
    }
}

/// A plain number, such as a file offset or an option's value.
impl Outcome for i64 {
    fn ret(&self) -> Ret {
        Ret::Value(*self)
    }
}

macro_rules! outcome_is_fd {
    ($($t:ty),*) => {$(
        impl Outcome for $t {
            fn ret(&self) -> Ret {
                Ret::Fd(self.as_raw_fd())
            }
        }
    )*};
}
outcome_is_fd!(
    Socket,
    OwnedFd,
    TcpStream,
    TcpListener,
    std::net::UdpSocket,
    std::fs::File
);

/// `getsockname` or `getpeername`: the call returns 0 and fills in the
/// address, shown after it.
impl Outcome for SockAddr {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        match self.as_socket() {
            Some(addr) => addr.to_string(),
            None => "unnamed".to_string(),
        }
    }
}

/// `getsockname` or `getpeername` with std: 0, and the address after it.
impl Outcome for SocketAddr {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        self.to_string()
    }
}

/// `accept` with socket2: the new descriptor and who is on the other end.
impl Outcome for (Socket, SockAddr) {
    fn ret(&self) -> Ret {
        self.0.ret()
    }
    fn detail(&self) -> String {
        match self.1.as_socket() {
            Some(addr) => format!("peer {addr}"),
            None => "peer unnamed".to_string(),
        }
    }
}

/// `socketpair` with socket2: the call returns 0 and fills in two
/// connected descriptors, shown after it.
impl Outcome for (Socket, Socket) {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        format!("fd {}, fd {}", self.0.as_raw_fd(), self.1.as_raw_fd())
    }
}

/// `accept` with std: the new stream and who is on the other end.
impl Outcome for (TcpStream, SocketAddr) {
    fn ret(&self) -> Ret {
        self.0.ret()
    }
    fn detail(&self) -> String {
        format!("peer {}", self.1)
    }
}

/// `recvfrom` with std: the datagram's length and who sent it.
impl Outcome for (usize, SocketAddr) {
    fn ret(&self) -> Ret {
        self.0.ret()
    }
    fn detail(&self) -> String {
        format!("from {}", self.1)
    }
}

/// An error a system call returned: std's `io::Error` or nix's `Errno`.
pub trait OsError {
    /// The errno's name (`ECONNREFUSED`), or the error kind for errors that
    /// did not come from the kernel.
    fn errno_name(&self) -> String;
    /// What a transcript prints after the name: the kernel's description
    /// and the `io::ErrorKind` a Rust program matches on.
    fn detail(&self) -> String;
}

impl OsError for io::Error {
    fn errno_name(&self) -> String {
        match self.raw_os_error() {
            Some(code) => Errno::from_raw(code).errno_name(),
            None => format!("{:?}", self.kind()),
        }
    }
    fn detail(&self) -> String {
        match self.raw_os_error() {
            Some(code) => Errno::from_raw(code).detail(),
            None => self.to_string(),
        }
    }
}

impl OsError for Errno {
    fn errno_name(&self) -> String {
        format!("{self:?}")
    }
    fn detail(&self) -> String {
        // std's message is the C library's strerror(), as `perror` prints it.
        let err = io::Error::from_raw_os_error(*self as i32);
        let message = err.to_string();
        let message = message.split(" (os error").next().unwrap_or_default();
        format!("{message}; ErrorKind::{:?}", err.kind())
    }
}

/// Bytes shown the way `strace` shows them: printable ASCII as is, the rest
/// escaped, and long buffers cut with `...` after 32 bytes.
pub fn bytes(data: &[u8]) -> String {
    const SHOWN: usize = 32;
    let mut out = String::from("\"");
    for &b in data.iter().take(SHOWN) {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if data.len() > SHOWN {
        out.push_str("...");
    }
    out
}

/// A duration as a socket option or a limit is usually given: whole seconds
/// as `5 s`, anything else in milliseconds, `250 ms` (rounded down).
pub fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_whole_seconds_or_milliseconds() {
        assert_eq!(duration(Duration::from_secs(5)), "5 s");
        assert_eq!(duration(Duration::ZERO), "0 s");
        assert_eq!(duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1500 ms");
        assert_eq!(duration(Duration::from_micros(2500)), "2 ms");
    }

    #[test]
    fn bytes_escape_like_strace() {
        assert_eq!(bytes(b"hi\n"), "\"hi\\n\"");
        assert_eq!(bytes(&[0, 255]), "\"\\x00\\xff\"");
        assert_eq!(bytes(&[b'a'; 40]), format!("\"{}\"...", "a".repeat(32)));
    }

    #[test]
    fn errno_names_come_from_the_os_error() {
        let err = io::Error::from_raw_os_error(libc_econnrefused());
        assert_eq!(err.errno_name(), "ECONNREFUSED");
        assert!(err.detail().contains("ErrorKind::ConnectionRefused"));
    }

    fn libc_econnrefused() -> i32 {
        Errno::ECONNREFUSED as i32
    }
}
