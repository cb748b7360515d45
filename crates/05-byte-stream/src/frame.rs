//! Framing: where each message ends in the byte stream. Two ways, a
//! newline after each frame or a length before it, each with a maximum
//! size. No socket calls here: the functions take whole frames off the
//! front of the bytes read so far, whatever pieces they arrived in.

use std::fmt::{self, Display};

use clap::ValueEnum;

// ANCHOR: framing
/// How the end of each message is marked in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Framing {
    /// Each frame is UTF-8 text ending in a newline (`\n`), which is not
    /// part of the frame
    Line,
    /// Each frame is a 4-byte big-endian length, then that many bytes of
    /// UTF-8 text
    Length,
}
// ANCHOR_END: framing

impl Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Line => "line",
            Framing::Length => "length",
        })
    }
}

// ANCHOR: next_frame
/// Takes the next whole frame off the front of `pending`, the bytes read so
/// far: `Ok(None)` if the frame is not complete yet (read more), an error if
/// it never can be. `pending` never needs to hold more than one frame of
/// `max` bytes plus its header or newline, whatever the peer sends.
pub fn next_frame(
    framing: Framing,
    pending: &mut Vec<u8>,
    max: usize,
) -> Result<Option<String>, FrameError> {
    let frame = match framing {
        Framing::Line => next_line(pending, max)?,
        Framing::Length => next_prefixed(pending, max)?,
    };
    match frame {
        Some(frame) => {
            String::from_utf8(frame).map(Some).map_err(|_| FrameError::NotText)
        }
        None => Ok(None),
    }
}
// ANCHOR_END: next_frame

// ANCHOR: next_line
/// Line framing: the bytes before the first newline. The newline is looked
/// for only as far as a frame may reach, and a line that grows past `max`
/// bytes without one is refused at once: no waiting for a newline that may
/// never come.
fn next_line(
    pending: &mut Vec<u8>,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let reach = pending.len().min(max + 1);
    match pending[..reach].iter().position(|&b| b == b'\n') {
        Some(end) => {
            let mut line: Vec<u8> = pending.drain(..=end).collect();
            line.pop(); // the newline marks the end; it is not data
            Ok(Some(line))
        }
        None if pending.len() > max => Err(FrameError::LineTooLong { max }),
        None => Ok(None),
    }
}
// ANCHOR_END: next_line

// ANCHOR: next_prefixed
/// Length framing: a 4-byte big-endian length, then that many bytes. The
/// length is judged before waiting for the bytes: a bad header must not
/// make the server wait for, or keep, 4 GB.
fn next_prefixed(
    pending: &mut Vec<u8>,
    max: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let Some(header) = pending.first_chunk::<4>() else {
        return Ok(None);
    };
    let announced = u32::from_be_bytes(*header);
    let len = usize::try_from(announced).unwrap_or(usize::MAX);
    if len > max {
        return Err(FrameError::LengthTooLong { announced, max });
    }
    if pending.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(pending.drain(..4 + len).skip(4).collect()))
}
// ANCHOR_END: next_prefixed

// ANCHOR: encode
/// The bytes that carry `payload` as one frame.
pub fn encode(framing: Framing, payload: &[u8]) -> Vec<u8> {
    match framing {
        Framing::Line => [payload, b"\n"].concat(),
        Framing::Length => {
            // Every payload here is at most MAX_REPLY bytes: it fits in u32.
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            [&len.to_be_bytes()[..], payload].concat()
        }
    }
}
// ANCHOR_END: encode

// ANCHOR: frame_error
/// Why a frame was refused. The server replies `error: ` and this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Line framing: more than `max` bytes and still no newline.
    LineTooLong { max: usize },
    /// Length framing: the header announces more than `max` bytes.
    LengthTooLong { announced: u32, max: usize },
    /// The frame's bytes are not UTF-8 text.
    NotText,
    /// The stream ended with part of a frame unread.
    Truncated,
}

impl Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::LineTooLong { max } => write!(
                f,
                "frame too long: more than {max} bytes before a newline"
            ),
            FrameError::LengthTooLong { announced, max } => write!(
                f,
                "frame too long: {announced} bytes announced, at most {max}"
            ),
            FrameError::NotText => f.write_str("frame is not UTF-8 text"),
            FrameError::Truncated => {
                f.write_str("connection closed in the middle of a frame")
            }
        }
    }
}
// ANCHOR_END: frame_error

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(
        framing: Framing,
        input: &[u8],
        max: usize,
    ) -> (Vec<String>, Option<FrameError>, usize) {
        let mut pending = input.to_vec();
        let mut out = Vec::new();
        loop {
            match next_frame(framing, &mut pending, max) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return (out, None, pending.len()),
                Err(e) => return (out, Some(e), pending.len()),
            }
        }
    }

    #[test]
    fn lines_split_and_merged() {
        assert_eq!(
            frames(Framing::Line, b"a\nbc\nd", 8),
            (vec!["a".into(), "bc".into()], None, 1)
        );
        // A line of exactly max bytes is fine; one more byte is not.
        assert_eq!(frames(Framing::Line, b"12345678\n", 8).0, vec!["12345678"]);
        assert_eq!(
            frames(Framing::Line, b"123456789", 8).1,
            Some(FrameError::LineTooLong { max: 8 })
        );
        // Not yet too long: wait for more.
        assert_eq!(frames(Framing::Line, b"12345678", 8), (vec![], None, 8));
        assert_eq!(
            frames(Framing::Line, b"ok\n\xff\n", 8).1,
            Some(FrameError::NotText)
        );
    }

    #[test]
    fn lengths_split_merged_and_refused_before_buffering() {
        let two =
            [encode(Framing::Length, b"hi"), encode(Framing::Length, b"")]
                .concat();
        assert_eq!(frames(Framing::Length, &two, 8).0, vec!["hi", ""]);
        assert_eq!(frames(Framing::Length, &two[..5], 8), (vec![], None, 5));
        assert_eq!(
            frames(Framing::Length, b"GET / HTTP/1.1", 8).1,
            Some(FrameError::LengthTooLong { announced: 0x4745_5420, max: 8 })
        );
        assert_eq!(
            frames(Framing::Length, b"\0\0\0\x01\xff", 8).1,
            Some(FrameError::NotText)
        );
    }
}
