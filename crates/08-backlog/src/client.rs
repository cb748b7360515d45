//! Many clients at once, to fill a server's accept queue: each connects
//! without blocking, and one `poll` watches every handshake, so the client
//! can report who got in at once, who got in later, and who is still
//! waiting, without a thread per connection.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail};

/// Opens `clients` connections at once, reports when each completes, and
/// holds them open until Enter.
pub fn run(
    addr: SocketAddr,
    clients: usize,
    wait: Duration,
) -> Result<(), Failure> {
    let start = Instant::now();
    let pending = start_all(addr, clients)?;
    say(&format!(
        "{clients} connect() calls made; waiting up to {wait:?} for the \
         handshakes\n"
    ))?;
    let (connected, failed, pending) = wait_for_all(pending, start, wait)?;
    say(&format!(
        "{} of {clients} connected, {} failed, {} still waiting\n",
        connected.len(),
        failed,
        pending.len()
    ))?;
    if !pending.is_empty() {
        say("still waiting means the server's accept queue was full: \
             see `ss -tan` (SYN-SENT)\n")?;
    }
    say("Holding the connections open; press Enter to close them\n")?;
    let mut line = Vec::new();
    io::stdin().lock().read_until(b'\n', &mut line).or_fail("read stdin")?;
    Ok(())
}

/// Starts `clients` handshakes without waiting for any: a nonblocking
/// `connect` sends the SYN and returns `EINPROGRESS`.
fn start_all(
    addr: SocketAddr,
    clients: usize,
) -> Result<Vec<(usize, Socket)>, Failure> {
    let mut pending = Vec::new();
    for number in 1..=clients {
        let domain = Domain::for_address(addr);
        let socket = Socket::new(domain, Type::STREAM.nonblocking(), None)
            .or_fail("socket")?;
        match socket.connect(&addr.into()) {
            Ok(()) => {
                say(&format!("connection {number}: connected at once\n"))?
            }
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(err) => {
                return Err(Failure::new(format!("connect {addr}"), err));
            }
        }
        pending.push((number, socket));
    }
    Ok(pending)
}

/// Sockets that got in, how many failed, and those still waiting.
type Handshakes = (Vec<Socket>, usize, Vec<(usize, Socket)>);

/// Waits until every handshake has ended or `wait` has passed since
/// `start`. `POLLOUT` says a handshake ended; `SO_ERROR` says how.
fn wait_for_all(
    mut pending: Vec<(usize, Socket)>,
    start: Instant,
    wait: Duration,
) -> Result<Handshakes, Failure> {
    let (mut connected, mut failed) = (Vec::new(), 0);
    while !pending.is_empty() {
        let left = wait.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        // poll counts in milliseconds up to about 24 days: wait in steps.
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds: Vec<PollFd> = pending
            .iter()
            .map(|(_, s)| PollFd::new(s.as_fd(), PollFlags::POLLOUT))
            .collect();
        match poll(&mut fds, timeout) {
            // Stopped (Ctrl-Z) and continued: nothing is wrong, wait on.
            Err(Errno::EINTR) => continue,
            other => other.or_fail("poll")?,
        };
        let ended: Vec<bool> = fds
            .iter()
            .map(|fd| fd.revents().is_some_and(|e| !e.is_empty()))
            .collect();
        let (done, still): (Vec<_>, Vec<_>) =
            pending.into_iter().zip(ended).partition(|(_, ended)| *ended);
        pending = still.into_iter().map(|(pair, _)| pair).collect();
        for ((number, socket), _) in done {
            let after = start.elapsed().as_secs_f64();
            match socket.take_error().or_fail("getsockopt SO_ERROR")? {
                None => say(&format!(
                    "connection {number}: connected after {after:.1} s\n"
                ))?,
                Some(err) => {
                    say(&format!(
                        "connection {number}: failed after {after:.1} s: \
                         {err}\n"
                    ))?;
                    failed += 1;
                    continue;
                }
            }
            connected.push(socket);
        }
    }
    Ok((connected, failed, pending))
}

/// Prints to the terminal, at once. A closed stdout ends the client with
/// an error instead of a panic.
fn say(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).or_fail("stdout")
}
