//! The check of exercise 5: frames that come two in one write, one in two
//! writes, a header over the limit with no bytes after it, and the two
//! ends of a stream, clean and inside a frame.
//!
//! In the check's process, in a thread: `read_frame` is a function over a
//! stream it is given, not a program, and each step judges what one call
//! returned (a frame, `None`, an error's kind) while the check writes the
//! other end, pausing between writes where only it knows the call is.

use std::io::{self, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use crate::harness::{PATIENCE, Running, shown, start};

/// The limit `read_frame` is given.
const MAX: usize = 1024;

type ReadFrame = fn(&mut TcpStream, usize) -> io::Result<Option<Vec<u8>>>;
/// What one call of `read_frame` returned.
type Got = io::Result<Option<Vec<u8>>>;

/// Plays the peer on three connections, one after the other.
pub fn check(read_frame: ReadFrame) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's sockets: {err}");
    // Two frames in one write, then one frame in two writes.
    let (mut peer, mut conn) = connected().map_err(failed)?;
    peer.write_all(&[frame(b"hello"), frame(b"world")].concat())
        .map_err(failed)?;
    conn = expect(read_frame, conn, Some(b"hello"), "two frames in one write")?;
    conn = expect(read_frame, conn, Some(b"world"), "two frames in one write")?;
    let split = frame(b"split in two");
    peer.write_all(&split[..6]).map_err(failed)?;
    let (running, watch) = call(read_frame, conn);
    // The second part goes once the first has been read: the frame must
    // be put together from two reads.
    drained(&watch).map_err(failed)?;
    peer.write_all(&split[6..]).map_err(failed)?;
    conn = answer(running, Some(b"split in two"), "a frame in two writes")?;
    // A header over the limit, and nothing after it.
    peer.write_all(&u32::MAX.to_be_bytes()).map_err(failed)?;
    match call(read_frame, conn).0.wait(PATIENCE) {
        Ok((_, Err(err))) if err.kind() == io::ErrorKind::InvalidData => {}
        Ok((_, got)) => {
            return Err(format!(
                "read_frame must refuse a header announcing {} bytes (the \
                 limit is {MAX}) with an error of kind InvalidData; it \
                 returned {}",
                u32::MAX,
                described(&got)
            ));
        }
        Err(_) => {
            return Err(format!(
                "read_frame must refuse a header announcing {} bytes (the \
                 limit is {MAX}) at once; it was still reading after {} ms",
                u32::MAX,
                PATIENCE.as_millis()
            ));
        }
    }
    ends(read_frame)
}

/// A frame at the end of the stream, then the end; then a stream that ends
/// inside a frame.
fn ends(read_frame: ReadFrame) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's sockets: {err}");
    let (mut peer, mut conn) = connected().map_err(failed)?;
    peer.write_all(&frame(b"bye")).map_err(failed)?;
    drop(peer);
    conn = expect(read_frame, conn, Some(b"bye"), "the last frame")?;
    expect(read_frame, conn, None, "the peer closed after a frame")?;
    let (mut peer, conn) = connected().map_err(failed)?;
    peer.write_all(&frame(b"cut short")[..7]).map_err(failed)?;
    drop(peer);
    match call(read_frame, conn).0.wait(PATIENCE)? {
        (_, Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        (_, got) => Err(format!(
            "the peer closed 3 bytes into a frame of 9: read_frame must \
             fail with an error of kind UnexpectedEof; it returned {}",
            described(&got)
        )),
    }
}

/// Calls `read_frame` in a thread; also returns a handle on the same
/// socket, to see how much of what came it has read.
fn call(
    read_frame: ReadFrame,
    mut conn: TcpStream,
) -> (Running<(TcpStream, Got)>, Option<TcpStream>) {
    let watch = conn.try_clone().ok();
    let running = start("read_frame", move || {
        let got = read_frame(&mut conn, MAX);
        (conn, got)
    });
    (running, watch)
}

/// Calls `read_frame` and compares what it returns with `wanted`.
fn expect(
    read_frame: ReadFrame,
    conn: TcpStream,
    wanted: Option<&[u8]>,
    case: &str,
) -> Result<TcpStream, String> {
    answer(call(read_frame, conn).0, wanted, case)
}

fn answer(
    running: Running<(TcpStream, Got)>,
    wanted: Option<&[u8]>,
    case: &str,
) -> Result<TcpStream, String> {
    let (conn, got) = running.wait(PATIENCE)?;
    match &got {
        Ok(frame) if frame.as_deref() == wanted => Ok(conn),
        _ => Err(format!(
            "{case}: read_frame must return {}; it returned {}",
            described(&Ok(wanted.map(<[u8]>::to_vec))),
            described(&got)
        )),
    }
}

fn described(got: &Got) -> String {
    match got {
        Ok(Some(frame)) => format!("the frame {}", shown(frame)),
        Ok(None) => "Ok(None), the end".to_string(),
        Err(err) => format!("an error of kind {:?} ({err})", err.kind()),
    }
}

/// Waits until the reader's socket has no unread byte left: `read_frame`
/// has read what was sent so far. Bounded by `PATIENCE`: a function that
/// returned without reading is caught by `answer` afterwards.
fn drained(watch: &Option<TcpStream>) -> io::Result<()> {
    let Some(watch) = watch else { return Ok(()) };
    let since = Instant::now();
    while unread(watch)? > 0 && since.elapsed() < PATIENCE {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// The bytes received on `conn` that nobody has read yet (`FIONREAD`,
/// `man 7 tcp`).
fn unread(conn: &TcpStream) -> io::Result<i32> {
    let mut count: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points
    // at `count`, alive for the call.
    let rc =
        unsafe { libc::ioctl(conn.as_raw_fd(), libc::FIONREAD, &mut count) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(count) }
}

/// `payload` as one frame: its length, 4 bytes big-endian, then itself.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    [&len.to_be_bytes()[..], payload].concat()
}

/// A connection on 127.0.0.1: the peer's end, then the reader's.
fn connected() -> io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let conn = TcpStream::connect(listener.local_addr()?)?;
    let (peer, _) = listener.accept()?;
    // Each write goes at once, not held back to join the next.
    peer.set_nodelay(true)?;
    Ok((peer, conn))
}
