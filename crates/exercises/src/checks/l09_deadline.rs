//! The check of exercise 9: the reader's client runs as a process of its
//! own (`run 9 ADDR LIMIT_MS`), against a Python server that answers at
//! once, then against one that sends a byte every 20 ms for ever. The
//! client's own process times `fetch`, so a slow start on a loaded machine
//! does not count against it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, Peers, Program, Which, shown};

type Fetch = fn(SocketAddr, &[u8], Duration) -> io::Result<Vec<u8>>;

/// The limit `fetch` is given against the dribbling server.
const LIMIT: Duration = Duration::from_millis(300);
/// How long after the limit `fetch` may still take to return.
const SLACK: Duration = Duration::from_millis(400);
/// The request: one line.
const REQUEST: &[u8] = b"GET\n";
/// The line the program prints just before it calls `fetch`.
const FETCHING: &str = "Fetching from ";

/// The reader's program, `run 9 ADDR LIMIT_MS`: `fetch` the answer to
/// `GET\n` from ADDR, print it on stdout, and on stderr how many bytes
/// came in how long; or why it failed, and status 1.
pub fn run(fetch: Fetch, args: &[String]) -> io::Result<()> {
    use std::io::Write;
    let usage = || io::Error::other("usage: run 9 ADDR LIMIT_MS");
    let addr: SocketAddr =
        args.first().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let limit: u64 =
        args.get(1).and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    println!("{FETCHING}{addr}");
    let began = Instant::now();
    let got = fetch(addr, REQUEST, Duration::from_millis(limit));
    let took = began.elapsed().as_millis();
    match got {
        Ok(answer) => {
            let mut out = io::stdout().lock();
            out.write_all(&answer)?;
            out.flush()?;
            eprintln!("fetch returned {} bytes in {took} ms", answer.len());
            Ok(())
        }
        Err(err) => Err(io::Error::other(format!(
            "fetch failed in {took} ms: {:?}: {err}",
            err.kind()
        ))),
    }
}

/// Runs the client against both servers.
pub fn check(which: Which) -> Result<(), String> {
    let mut peers = Peers::start()?;
    // A server that answers at once: the whole answer must come back.
    let addr = peers.listen("quick")?;
    let limit = PATIENCE.as_millis().to_string();
    let mut client =
        Program::start("9", which, &[addr.clone(), limit], "your client")?;
    client.line_starting(FETCHING)?;
    let fetched = (|| {
        serve_the_request(&mut peers, "quick")?;
        let answer = answer_text();
        peers.send("quick-conn", &answer)?;
        peers.close("quick-conn")
    })();
    client.blame(fetched)?;
    let out = client.output(PATIENCE)?;
    let said = client.said();
    let count = format!("fetch returned {} bytes", answer_text().len());
    if out.as_bytes() != answer_text() || !said.starts_with(&count) {
        return Err(format!(
            "fetch must return the whole answer, {} bytes; it returned {} \
             ({said})",
            answer_text().len(),
            shown(out.as_bytes()),
        ));
    }
    // A server that never finishes: fetch must give up at its limit.
    let addr = peers.listen("slow")?;
    let limit = LIMIT.as_millis().to_string();
    let mut client = Program::start("9", which, &[addr, limit], "your client")?;
    client.line_starting(FETCHING)?;
    let began = Instant::now();
    client.blame(serve_the_request(&mut peers, "slow"))?;
    peers.dribble("slow-conn", Duration::from_millis(20))?;
    let left = (LIMIT + SLACK).saturating_sub(began.elapsed());
    let status = client.wait(left).map_err(|_| {
        format!(
            "the server sends a byte every 20 ms and never ends; fetch, with \
             a limit of {} ms, was still reading after {} ms: a timeout on \
             each read never fires at that pace",
            LIMIT.as_millis(),
            (LIMIT + SLACK).as_millis()
        )
    })?;
    let said = client.said();
    if status.success() {
        return Err(format!(
            "the server never finished its answer, but fetch returned ({said})"
        ));
    }
    let Some(failed) = said.strip_prefix("fetch failed in ") else {
        return client.blame(Err(format!("your client said {said:?}")));
    };
    let (took, why) = failed.split_once(" ms: ").unwrap_or(("0", failed));
    if !why.starts_with("TimedOut") {
        return Err(format!(
            "when the limit passes, fetch must fail with an error of kind \
             TimedOut; it failed with {why}"
        ));
    }
    let took: u128 = took.parse().unwrap_or(0);
    if took + 20 < LIMIT.as_millis() {
        return Err(format!(
            "fetch gave up after {took} ms, before its limit of {} ms",
            LIMIT.as_millis()
        ));
    }
    Ok(())
}

/// The server `name` accepts the client, as `NAME-conn`, and reads its
/// request line.
fn serve_the_request(peers: &mut Peers, name: &str) -> Result<(), String> {
    let conn = format!("{name}-conn");
    peers
        .accept(name, &conn, PATIENCE)?
        .map_err(|why| format!("the client did not connect: {why}"))?;
    let (got, _) = peers.recv(&conn, 64, PATIENCE, b"\n")?;
    if got != REQUEST {
        return Err(format!(
            "the client must send the request, {}; it sent {}",
            shown(REQUEST),
            shown(&got)
        ));
    }
    Ok(())
}

/// The quick server's answer: more than one read returns.
fn answer_text() -> Vec<u8> {
    b"all of it\n".repeat(2000)
}
