//! The check of exercise 16: the reader's client runs as a process of its
//! own (`run 16 EACH_MS ADDR...`), given three addresses of Python
//! servers: the first never answers (a listener whose accept queue is
//! full drops SYNs, lesson 8), the second refuses, the third listens; and
//! then two that refuse. The client's own process times `connect`, so a
//! slow start on a loaded machine does not count against it.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, Peers, Program, Which};

type Connect = fn(&[SocketAddr], Duration) -> io::Result<std::net::TcpStream>;

/// What `connect` is given for each address.
const EACH: Duration = Duration::from_millis(200);
/// The line the program prints just before it calls `connect`.
const CONNECTING: &str = "Connecting";

/// The reader's program, `run 16 EACH_MS ADDR...`: `connect` to the
/// addresses, and print to whom and in how long; or why not, in how
/// long, and status 1.
pub fn run(connect: Connect, args: &[String]) -> io::Result<()> {
    let usage = || io::Error::other("usage: run 16 EACH_MS ADDR...");
    let each: u64 =
        args.first().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let addrs = args[1..]
        .iter()
        .map(|a| a.parse().map_err(|_| usage()))
        .collect::<io::Result<Vec<SocketAddr>>>()?;
    println!("{CONNECTING}");
    let began = Instant::now();
    let got = connect(&addrs, Duration::from_millis(each));
    let took = began.elapsed().as_millis();
    match got {
        Ok(stream) => {
            println!("connected to {} in {took} ms", stream.peer_addr()?);
            Ok(())
        }
        Err(err) => Err(io::Error::other(format!(
            "connect failed in {took} ms: {:?}: {err}",
            err.kind()
        ))),
    }
}

/// Runs the client on the two lists.
pub fn check(which: Which) -> Result<(), String> {
    let mut peers = Peers::start()?;
    // Backlog 0 holds one connection that nobody accepts: then it is full.
    let silent = peers.listen_with("silent", 0)?;
    peers.tcp("filler", &silent)?;
    let refusing = peers.listen("gone")?;
    peers.close("gone")?;
    let good = peers.listen("good")?;
    let each = EACH.as_millis().to_string();
    let args = [each.clone(), silent, refusing.clone(), good.clone()];
    let mut client = Program::start("16", which, &args, "your client")?;
    client.line_starting(CONNECTING)?;
    let out = client.output(PATIENCE).map_err(|why| {
        if why.contains("had not ended") {
            format!(
                "connect had not returned after {} ms: the first address \
                 never answers, and each may take at most {} ms",
                PATIENCE.as_millis(),
                EACH.as_millis()
            )
        } else {
            format!(
                "the third address, {good}, listens: connect must reach it; \
                 {why}"
            )
        }
    })?;
    let out = out.trim();
    let Some((peer, took)) = out
        .strip_prefix("connected to ")
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|rest| rest.split_once(" in "))
    else {
        return Err(format!("your client printed {out:?}"));
    };
    if peer != good {
        return Err(format!(
            "connect must return the connection to {good}, the one that \
             listens; it returned one to {peer}"
        ));
    }
    let took: u128 = took.parse().unwrap_or(0);
    if took + 20 < EACH.as_millis() {
        return Err(format!(
            "connect gave the first address {took} ms, less than the {} ms \
             it may take",
            EACH.as_millis()
        ));
    }
    // None listens: the last address's error.
    let args = [each, refusing.clone(), refusing];
    let mut client = Program::start("16", which, &args, "your client")?;
    client.line_starting(CONNECTING)?;
    let ended = client.wait(PATIENCE)?;
    let said = client.said();
    if ended.success() {
        return Err("with two addresses that refuse, connect returned a \
                    connection"
            .into());
    }
    match said.split_once(" ms: ") {
        Some((_, why)) if why.starts_with("ConnectionRefused") => Ok(()),
        Some((_, why)) => Err(format!(
            "with two addresses that refuse, connect must fail with the \
             last one's error, ConnectionRefused; it failed with {why}"
        )),
        None => client.blame(Err(format!("your client said {said:?}"))),
    }
}
