//! The check of exercise 6: the reader's client runs as a process of its
//! own (`run 6 ADDR`), against a Python server that reads a request to its
//! end, then answers with more bytes than one read returns, then closes.

use std::io;
use std::net::SocketAddr;

use crate::harness::{End, PATIENCE, Peers, Program, Which, shown};

type Ask = fn(SocketAddr, &[u8]) -> io::Result<Vec<u8>>;

/// The line the program prints just before it calls `ask`.
const ASKING: &str = "Asking ";

/// The request: 24 kB, more than one write of the client may take.
fn request() -> Vec<u8> {
    b"how many bytes is this?\n".repeat(1000)
}

/// The reader's program, `run 6 ADDR`: `ask` ADDR the request, print the
/// answer on stdout and on stderr how many bytes it was; or why it
/// failed, and status 1.
pub fn run(ask: Ask, args: &[String]) -> io::Result<()> {
    use std::io::Write;
    let addr: SocketAddr = args
        .first()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| io::Error::other("usage: run 6 ADDR"))?;
    println!("{ASKING}{addr}");
    let answer = ask(addr, &request())
        .map_err(|err| io::Error::other(format!("ask failed: {err}")))?;
    let mut out = io::stdout().lock();
    out.write_all(&answer)?;
    out.flush()?;
    eprintln!("ask returned {} bytes", answer.len());
    Ok(())
}

/// Runs the client against the server, and compares what each side got.
pub fn check(which: Which) -> Result<(), String> {
    let mut peers = Peers::start()?;
    let addr = peers.listen("server")?;
    let mut client = Program::start("6", which, &[addr], "your client")?;
    client.line_starting(ASKING)?;
    let served = (|| {
        peers
            .accept("server", "conn", PATIENCE)?
            .map_err(|why| format!("the client did not connect: {why}"))?;
        let request = request();
        let (got, end) =
            peers.recv("conn", 2 * request.len(), PATIENCE, b"")?;
        if end == End::Quiet {
            return Err(format!(
                "the server received {} bytes and then, for {} ms, neither \
                 more nor the end of the request (a 0-byte read), so it \
                 never answered: the client must say it is done sending",
                got.len(),
                PATIENCE.as_millis()
            ));
        }
        if got != request {
            return Err(format!(
                "the server received {}, not the {} bytes of the request",
                shown(&got),
                request.len()
            ));
        }
        peers.send("conn", &answer_to(&request))?;
        peers.close("conn")
    })();
    client.blame(served)?;
    let answer = client.output(PATIENCE)?;
    let said = client.said();
    let wanted = answer_to(&request());
    let count = format!("ask returned {} bytes", wanted.len());
    if answer.as_bytes() != wanted || said != count {
        return Err(format!(
            "the server answered {} bytes; ask returned {}: it must read \
             until the server closes",
            wanted.len(),
            said.strip_prefix("ask returned ").unwrap_or(&said)
        ));
    }
    Ok(())
}

/// The answer: a line with the size of the request, then the request in
/// upper case, 24 kB in all, more than one read returns.
fn answer_to(request: &[u8]) -> Vec<u8> {
    let head = format!("{} bytes\n", request.len());
    [head.as_bytes(), &request.to_ascii_uppercase()].concat()
}
