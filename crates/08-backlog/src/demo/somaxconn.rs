//! Experiment 1: `listen` takes any backlog and quietly lowers it to
//! `net.core.somaxconn`.

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};
use transcript::{Failure, Told, server, server_note};

use super::{STREAM, close, queue};

/// The kernel's ceiling for any backlog (see `man 2 listen`, NOTES).
const SOMAXCONN: &str = "/proc/sys/net/core/somaxconn";

// ANCHOR: every_backlog_is_capped
/// Asks `listen` for the largest backlog an `int` can say, then asks the
/// kernel what it kept: somaxconn, and no error to say so.
pub fn every_backlog_is_capped() -> Result<(), Failure> {
    let somaxconn = read_somaxconn()?;
    let greedy = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
    greedy
        .bind(&any_port.into())
        .told(|| server("bind").on(&greedy).args(any_port))?;
    // listen() takes any int and lowers it without a word.
    greedy
        .listen(i32::MAX)
        .told(|| server("listen").on(&greedy).args(i32::MAX))?;
    let limit = queue(&greedy)?.limit;
    server_note(
        "for a listener, TCP_INFO reports the accept queue: \
         tcpi_unacked = its length, tcpi_sacked = its limit",
    );
    server_note(if limit == somaxconn {
        format!(
            "asked for {}, got somaxconn = {somaxconn}: no error, no warning",
            i32::MAX
        )
    } else {
        format!("asked for {}, got {limit}", i32::MAX)
    });
    close(greedy, server);
    Ok(())
}
// ANCHOR_END: every_backlog_is_capped

// ANCHOR: read_somaxconn
/// The kernel's ceiling for every backlog, per network namespace: a number
/// in a file.
fn read_somaxconn() -> Result<u32, Failure> {
    let mut file = File::open(SOMAXCONN).told(|| {
        server("open").args(format!("{SOMAXCONN:?}, O_RDONLY|O_CLOEXEC"))
    })?;
    let mut text = [0u8; 32];
    let n = file
        .read(&mut text)
        .told(|| server("read").on(&file).args(text.len()).data(&text))?;
    close(file, server);
    String::from_utf8_lossy(&text[..n])
        .trim()
        .parse()
        .map_err(|err| Failure::new(format!("read {SOMAXCONN}"), err))
}
// ANCHOR_END: read_somaxconn
