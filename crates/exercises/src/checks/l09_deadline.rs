//! The check of exercise 9: a server that answers at once, then one that
//! sends a byte every 20 ms for ever.
//!
//! In the check's process, in a thread: `fetch` returns an error whose kind
//! (`TimedOut`) the check judges, and its time is measured against its
//! limit to tens of milliseconds, which a process's start on a loaded
//! machine would blur.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, shown, start};

type Fetch = fn(SocketAddr, &[u8], Duration) -> io::Result<Vec<u8>>;

/// The limit `fetch` is given against the dribbling server.
const LIMIT: Duration = Duration::from_millis(300);
/// How long after the limit `fetch` may still take to return.
const SLACK: Duration = Duration::from_millis(400);

/// Runs `fetch` against both servers.
pub fn check(fetch: Fetch) -> Result<(), String> {
    let failed = |err: io::Error| format!("the check's server: {err}");
    let request = b"GET\n";
    // A server that answers at once: the whole answer must come back.
    let addr = server(false).map_err(failed)?;
    let got = start("fetch", move || fetch(addr, request, PATIENCE))
        .wait(2 * PATIENCE)?;
    match got {
        Ok(answer) if answer == answer_text() => {}
        Ok(answer) => {
            return Err(format!(
                "fetch must return the whole answer, {} bytes; it returned {}",
                answer_text().len(),
                shown(&answer)
            ));
        }
        Err(err) => return Err(format!("fetch failed: {err}")),
    }
    // A server that never finishes: fetch must give up at its limit.
    let addr = server(true).map_err(failed)?;
    let began = Instant::now();
    let got = start("fetch", move || fetch(addr, request, LIMIT))
        .wait(LIMIT + SLACK)
        .map_err(|_| {
            format!(
                "the server sends a byte every 20 ms and never ends; fetch, \
                 with a limit of {} ms, was still reading after {} ms: a \
                 timeout on each read never fires at that pace",
                LIMIT.as_millis(),
                (LIMIT + SLACK).as_millis()
            )
        })?;
    let took = began.elapsed();
    match got {
        Err(err) if err.kind() == io::ErrorKind::TimedOut => {
            if took + Duration::from_millis(20) < LIMIT {
                return Err(format!(
                    "fetch gave up after {} ms, before its limit of {} ms",
                    took.as_millis(),
                    LIMIT.as_millis()
                ));
            }
            Ok(())
        }
        Err(err) => Err(format!(
            "when the limit passes, fetch must fail with an error of kind \
             TimedOut; it failed with {:?} ({err})",
            err.kind()
        )),
        Ok(answer) => Err(format!(
            "the server never finished its answer, but fetch returned {}",
            shown(&answer)
        )),
    }
}

/// The quick server's answer: more than one read returns.
fn answer_text() -> Vec<u8> {
    b"all of it\n".repeat(2000)
}

/// A server for one client, on 127.0.0.1, port 0: it reads the request
/// line, then answers at once and closes, or, if `dribble`, sends one
/// byte every 20 ms until the client goes (at most 3 s).
fn server(dribble: bool) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    thread::spawn(move || -> io::Result<()> {
        let (mut conn, _) = listener.accept()?;
        conn.set_read_timeout(Some(PATIENCE))?;
        let mut byte = [0u8; 1];
        while conn.read(&mut byte)? == 1 && byte[0] != b'\n' {}
        if !dribble {
            return conn.write_all(&answer_text());
        }
        let began = Instant::now();
        while began.elapsed() < 3 * PATIENCE {
            conn.write_all(b".")?;
            // The pacing is the point: a server that is slow on purpose.
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    });
    Ok(addr)
}
