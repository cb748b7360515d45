//! A server that picks its backlog on purpose and reads back the queue it
//! got. It listens, waits for Enter before it accepts anyone (so that you
//! can fill its accept queue from another terminal and look at it with
//! `ss`), then accepts and holds connections, greeting each one with what
//! the queue looked like when it was taken.

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, log};

// ANCHOR: accept_queue
/// What the kernel says about a listener's accept queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptQueue {
    /// Connections whose handshake is done, waiting for `accept`.
    pub waiting: u32,
    /// The backlog as the kernel kept it; the queue holds one more.
    pub limit: u32,
}
// ANCHOR_END: accept_queue

// ANCHOR: tcp_info
/// `getsockopt(fd, IPPROTO_TCP, TCP_INFO)`. Neither socket2 nor nix wraps
/// it. For a listening socket Linux fills `tcpi_unacked` with the accept
/// queue's length and `tcpi_sacked` with its limit (the same two numbers
/// `ss -ltn` shows as Recv-Q and Send-Q).
pub fn accept_queue(listener: &Socket) -> io::Result<AcceptQueue> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is
    // that large, and sets `len` to what it wrote; the struct is plain data
    // for which all-zero bytes are a valid value.
    let rc = unsafe {
        libc::getsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised, then (partly) filled in by the kernel.
    let info = unsafe { info.assume_init() };
    Ok(AcceptQueue { waiting: info.tcpi_unacked, limit: info.tcpi_sacked })
}
// ANCHOR_END: tcp_info

// ANCHOR: server
/// Listens with `backlog`, waits for Enter, then accepts for ever, holding
/// the last `hold` connections open.
pub fn run(addr: SocketAddr, backlog: i32, hold: usize) -> Result<(), Failure> {
    let listener = listen(addr, backlog)?;
    log!(
        "Not accepting yet. Connect clients, watch `ss -ltn` and `ss -tan`, \
         then press Enter."
    );
    // Until Enter (or the end of input), the kernel alone answers clients:
    // it completes their handshakes and queues them, up to the limit.
    let mut line = Vec::new();
    io::stdin().lock().read_until(b'\n', &mut line).or_fail("read stdin")?;
    log!("Accepting");
    serve(&listener, hold)
}
// ANCHOR_END: server

// ANCHOR: listen
/// A listening socket on `addr`, and a log line saying what queue the
/// kernel gave it: `listen` lowers a backlog above `net.core.somaxconn`
/// without a word, so the server asks.
fn listen(addr: SocketAddr, backlog: i32) -> Result<Socket, Failure> {
    let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .or_fail("socket")?;
    // This server closes connections first, leaving them in TIME_WAIT:
    // without SO_REUSEADDR a restart could not bind the port (lesson 7).
    listener.set_reuse_address(true).or_fail("setsockopt SO_REUSEADDR")?;
    listener.bind(&addr.into()).or_fail(format!("bind {addr}"))?;
    let local = listener.local_addr().or_fail("getsockname")?;
    let local = local.as_socket().unwrap_or(addr);
    listener.listen(backlog).or_fail("listen")?;

    // Read back what the kernel kept: the limit, and the queue is empty.
    let queue = accept_queue(&listener).or_fail("getsockopt TCP_INFO")?;
    let limit = queue.limit;
    log!(
        "Listening on {local} (backlog {backlog}: \
         the accept queue holds {limit} + 1)"
    );
    if i64::from(limit) < i64::from(backlog) {
        log!("The kernel lowered backlog {backlog} to net.core.somaxconn");
    }
    Ok(listener)
}
// ANCHOR_END: listen

// ANCHOR: serve
/// Accepts for ever. Each connection is greeted and held until `hold`
/// newer ones have come, so the backlog can be seen not to limit them.
fn serve(listener: &Socket, hold: usize) -> Result<(), Failure> {
    let mut held = VecDeque::new();
    let mut count = 0u64;
    loop {
        let (conn, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            // Out of descriptors: let go of the oldest connection, which
            // frees one for the next. Other errors concern one connection
            // (ECONNABORTED, man 2 accept), not the server.
            Err(err) => {
                log!("accept: {err}");
                let no_fds = matches!(
                    err.raw_os_error(),
                    Some(libc::EMFILE | libc::ENFILE)
                );
                if no_fds && held.pop_front().is_none() {
                    return Err(Failure::new("accept", err));
                }
                continue;
            }
        };
        count += 1;
        let peer = peer.as_socket().map_or("unknown".into(), |p| p.to_string());
        let queue = accept_queue(listener).or_fail("getsockopt TCP_INFO")?;
        greet(&conn, &peer, count, queue);
        held.push_back(conn);
        if held.len() > hold {
            held.pop_front();
        }
        let holding = match held.len() {
            1 => "1 connection".to_string(),
            n => format!("{n} connections"),
        };
        log!(
            "Accepted #{count} from {peer}: holding {holding}, {} waiting \
             in the accept queue (limit {})",
            queue.waiting,
            queue.limit
        );
    }
}
// ANCHOR_END: serve

/// Tells the client what the accept queue looked like when it was taken.
fn greet(conn: &Socket, peer: &str, count: u64, queue: AcceptQueue) {
    let greeting = format!(
        "connection #{count}; {} waiting in the accept queue (limit {})\n",
        queue.waiting, queue.limit
    );
    // A client already gone is that client's problem; MSG_NOSIGNAL
    // (socket2 sets it) turns it into an error instead of a fatal SIGPIPE.
    // A fresh connection has room for these few bytes: this send does not
    // wait.
    if let Err(err) = conn.send(greeting.as_bytes()) {
        log!("send to {peer}: {err}");
    }
}
