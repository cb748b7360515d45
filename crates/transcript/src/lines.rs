//! The line protocol of the multi-client servers (lessons 10 to 13), as pure
//! buffer logic: bytes go in as they arrive, complete lines come out, and a
//! line longer than the maximum is refused. No socket calls: each lesson
//! makes its own `recv` and `send` and hands the bytes to a [`Lines`].
//!
//! The protocol: a request is a line ending in `\n`, at most [`MAX_LINE`]
//! bytes long without its `\n`. The reply to a line is the line itself,
//! `\n`-terminated. A longer line gets [`TOO_LONG`] and the server closes the
//! connection: reading on would mean buffering without bound, and whatever
//! follows is the middle of a line, not a request. Bytes after the last
//! `\n` when the client closes are an unfinished line, not a request.
//!
//! TCP delivers a byte stream (lesson 5): one `recv` may hold half a line or
//! several lines, so a server cannot treat what one `recv` returned as one
//! request. Keeping this logic in one place, tested once, lets the four
//! servers differ only in how they wait for bytes.

/// The longest line a server accepts, in bytes, not counting its `\n`.
pub const MAX_LINE: usize = 1024;

/// The reply to a line longer than [`MAX_LINE`]; the server then closes.
pub const TOO_LONG: &[u8] = b"error: line too long\n";

/// The reply to a client the server has no room for; the server then closes.
pub const BUSY: &[u8] = b"error: server busy\n";

/// The line that asks a server to shut down gracefully (lessons 11 to 13).
/// It is answered like any other line, and the server then shuts down.
pub const SHUTDOWN: &[u8] = b"shutdown";

/// A line that broke the limit: the connection must be closed after
/// [`TOO_LONG`] is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

// ANCHOR: lines
/// Bytes received on one connection, not yet returned as lines.
#[derive(Debug, Clone)]
pub struct Lines {
    /// Received bytes that are not part of a returned line yet.
    buf: Vec<u8>,
    /// How far `buf` is known to hold no `\n`, so a line that arrives one
    /// byte at a time is scanned once, not once per byte.
    scanned: usize,
    /// The longest line allowed, without its `\n`.
    max: usize,
    /// Set once a line broke the limit; from then on every call says so.
    too_long: bool,
}
// ANCHOR_END: lines

impl Lines {
    /// An empty buffer that accepts lines of up to `max` bytes.
    pub fn new(max: usize) -> Lines {
        Lines { buf: Vec::new(), scanned: 0, max, too_long: false }
    }

    /// Appends bytes just received.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, without its `\n`; `None` while the buffer
    /// holds no complete line; `Some(Err(TooLong))` as soon as a line is
    /// known to be longer than the limit, even before its `\n` arrives (so
    /// a client cannot make the server buffer without bound).
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, TooLong>> {
        if self.too_long {
            return Some(Err(TooLong));
        }
        match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = self.scanned + i;
                if end > self.max {
                    self.too_long = true;
                    return Some(Err(TooLong));
                }
                let line = self.buf[..end].to_vec();
                self.buf.drain(..=end);
                if self.buf.is_empty() {
                    // Nothing of a next line yet: give the memory back, so
                    // that an idle connection holds none (lesson 13).
                    self.buf = Vec::new();
                }
                self.scanned = 0;
                Some(Ok(line))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max {
                    self.too_long = true;
                    return Some(Err(TooLong));
                }
                None
            }
        }
    }

    /// How many bytes of an unfinished line the buffer holds.
    pub fn partial(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes of memory the buffer holds on to.
    pub fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

/// The reply to `line`: the line itself, `\n`-terminated.
pub fn reply(line: &[u8]) -> Vec<u8> {
    let mut reply = Vec::with_capacity(line.len() + 1);
    reply.extend_from_slice(line);
    reply.push(b'\n');
    reply
}

/// Whether `line` is the [`SHUTDOWN`] command; a trailing `\r` (telnet
/// and some `nc` builds end lines with `\r\n`) does not count.
pub fn is_shutdown(line: &[u8]) -> bool {
    line.strip_suffix(b"\r").unwrap_or(line) == SHUTDOWN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(lines: &mut Lines) -> Vec<Result<Vec<u8>, TooLong>> {
        let mut out = Vec::new();
        while let Some(line) = lines.next_line() {
            let stop = line.is_err();
            out.push(line);
            if stop {
                break;
            }
        }
        out
    }

    #[test]
    fn one_feed_may_hold_several_lines() {
        let mut lines = Lines::new(MAX_LINE);
        lines.feed(b"one\ntwo\nthr");
        assert_eq!(
            all(&mut lines),
            vec![Ok(b"one".to_vec()), Ok(b"two".to_vec())]
        );
        assert_eq!(lines.partial(), 3);
    }

    #[test]
    fn a_buffer_with_no_unfinished_line_holds_no_memory() {
        let mut lines = Lines::new(MAX_LINE);
        lines.feed(b"one\ntw");
        assert_eq!(all(&mut lines), vec![Ok(b"one".to_vec())]);
        assert!(lines.allocated() >= 2, "the unfinished line is kept");
        lines.feed(b"o\n");
        assert_eq!(all(&mut lines), vec![Ok(b"two".to_vec())]);
        assert_eq!(lines.allocated(), 0);
    }

    #[test]
    fn a_line_may_arrive_one_byte_at_a_time() {
        let mut lines = Lines::new(MAX_LINE);
        for &b in b"slow client" {
            lines.feed(&[b]);
            assert_eq!(lines.next_line(), None);
        }
        lines.feed(b"\n");
        assert_eq!(lines.next_line(), Some(Ok(b"slow client".to_vec())));
        assert_eq!(lines.next_line(), None);
        assert_eq!(lines.partial(), 0);
    }

    #[test]
    fn empty_lines_and_carriage_returns_are_kept_as_sent() {
        let mut lines = Lines::new(MAX_LINE);
        lines.feed(b"\nnc\r\n");
        assert_eq!(all(&mut lines), vec![Ok(vec![]), Ok(b"nc\r".to_vec())]);
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_accepted() {
        let mut lines = Lines::new(4);
        lines.feed(b"abcd\n");
        assert_eq!(lines.next_line(), Some(Ok(b"abcd".to_vec())));
    }

    #[test]
    fn a_complete_line_over_the_maximum_is_refused() {
        let mut lines = Lines::new(4);
        lines.feed(b"ok\nabcde\nnext\n");
        assert_eq!(all(&mut lines), vec![Ok(b"ok".to_vec()), Err(TooLong)]);
        // The connection is to be closed: nothing after the long line counts.
        assert_eq!(lines.next_line(), Some(Err(TooLong)));
    }

    #[test]
    fn an_unfinished_line_over_the_maximum_is_refused_before_its_end() {
        let mut lines = Lines::new(4);
        lines.feed(b"abcd");
        assert_eq!(lines.next_line(), None, "4 bytes may still end in \\n");
        lines.feed(b"e");
        assert_eq!(lines.next_line(), Some(Err(TooLong)));
    }

    #[test]
    fn the_buffer_never_holds_much_more_than_one_line() {
        let mut lines = Lines::new(MAX_LINE);
        let chunk = [b'x'; 100];
        let mut refused = false;
        for _ in 0..100 {
            lines.feed(&chunk);
            if lines.next_line() == Some(Err(TooLong)) {
                refused = true;
                break;
            }
        }
        assert!(refused);
        assert!(lines.partial() <= MAX_LINE + chunk.len());
    }

    #[test]
    fn shutdown_is_recognised_with_or_without_a_carriage_return() {
        assert!(is_shutdown(b"shutdown"));
        assert!(is_shutdown(b"shutdown\r"));
        assert!(!is_shutdown(b"shutdown now"));
    }

    #[test]
    fn the_reply_echoes_the_line() {
        assert_eq!(reply(b"hello"), b"hello\n");
        assert_eq!(reply(b""), b"\n");
    }
}
