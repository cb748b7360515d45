//! A solution of exercise 5: a reader of length-prefixed frames that judges
//! the length before it reads the bytes.

use std::io::{self, Read};
use std::net::TcpStream;

// ANCHOR: read_frame
/// Reads the next frame from `conn`: a 4-byte big-endian length, then that
/// many bytes. `Ok(None)` at a clean end; a header over `max` is refused
/// before a byte of its frame is read or a byte of memory kept for it.
pub fn read_frame(
    conn: &mut TcpStream,
    max: usize,
) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    if !fill(conn, &mut header, true)? {
        return Ok(None);
    }
    let announced = u32::from_be_bytes(header);
    let len = usize::try_from(announced).unwrap_or(usize::MAX);
    if len > max {
        let why = format!("a frame of {announced} bytes (at most {max})");
        return Err(io::Error::new(io::ErrorKind::InvalidData, why));
    }
    let mut frame = vec![0u8; len];
    fill(conn, &mut frame, false)?;
    Ok(Some(frame))
}
// ANCHOR_END: read_frame

// ANCHOR: fill
/// Reads until `buf` is full, however many reads that takes. `Ok(false)`
/// if the stream ended before the first byte and `may_end` says that is
/// a clean end; an end anywhere else is `UnexpectedEof`.
fn fill(
    conn: &mut TcpStream,
    buf: &mut [u8],
    may_end: bool,
) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match conn.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 && may_end => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}
// ANCHOR_END: fill
