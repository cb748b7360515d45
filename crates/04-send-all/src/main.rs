//! # Lesson 4: `send` is not `send_all`
//!
//! The idea: `send` hands bytes to the kernel, and the kernel may take fewer
//! than you offered. It returns how many it took; the rest is still yours to
//! send. A correct program loops until every byte is taken, which is what
//! Python's `sendall` and Rust's `write_all` do for you. And "taken" is not
//! "sent": the kernel decides when the bytes leave, and by default (Nagle's
//! algorithm) it holds a small write back while an earlier one is
//! unacknowledged, which costs a request written in two pieces 40 ms
//! or more per round (a delayed ACK), even on loopback.
//!
//! What was wrong before: lesson 2's server called `send` once and only
//! complained when it came up short; the article presents `sendall` and
//! `send` as two equal choices. Here a short `send` is made to happen on
//! purpose, the loop that finishes the job is written out, std's
//! `write_all` is shown to be that loop (and to hide how far it got when it
//! fails), and `TCP_NODELAY` removes the Nagle delay.
//!
//! The files, in reading order:
//! - `server.rs`: the write-all loop, and a server that sends each client a
//!   block of bytes with it (what you take away);
//! - `client.rs`: a client that reads until the server closes;
//! - `demo.rs`: a short send made on purpose, the loop, `write_all`, and
//!   Nagle's algorithm, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use transcript::Failure;
use transcript::cli::{between_one_and, seconds};

/// The default address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much the server sends each client by default, and the demo at once:
/// far more than the small buffers hold.
const TOTAL: usize = 1 << 20;

/// The most `--size` may ask for: the server keeps the block in memory.
const LARGEST_SIZE: usize = 64 << 20;

/// The largest `--sndbuf`: the option is a C `int`.
const LARGEST_SNDBUF: usize = i32::MAX as usize;

/// The buffer size the demo and the server ask for; Linux doubles it
/// (`man 7 socket`).
const SMALL_BUFFER: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lesson-04",
    bin_name = "lesson-04",
    about = "Lesson 4: send is not send_all: short writes, a write-all loop, \
             and Nagle's algorithm"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Send each client a block of bytes with a nonblocking write-all loop,
    /// printing every short send and every wait for room
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How many bytes to send each client, from 1 to 67108864
        #[arg(long, default_value_t = TOTAL)]
        size: usize,
        /// SO_SNDBUF to ask for on each connection (the kernel doubles it);
        /// small, so that short sends are easy to see
        #[arg(long, default_value_t = SMALL_BUFFER)]
        sndbuf: usize,
        /// Seconds to wait for room in the send buffer before giving up on a
        /// client that stopped reading
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Read everything the server sends until it closes, and check it
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds to wait before reading, so the server's sends go short
        #[arg(long, default_value_t = 0.0)]
        pause: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-04", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, size, sndbuf, timeout }) => server::run(
            addr,
            between_one_and("--size", size, LARGEST_SIZE)?,
            between_one_and("--sndbuf", sndbuf, LARGEST_SNDBUF)?,
            seconds("--timeout", timeout)?,
        ),
        Some(Command::Client { addr, pause }) => {
            client::run(addr, pause_for(pause)?)
        }
    })
}

/// `--pause`: zero (the default) or a positive number of seconds.
fn pause_for(value: f64) -> Result<Duration, Failure> {
    if value == 0.0 { Ok(Duration::ZERO) } else { seconds("--pause", value) }
}

/// The bytes the demo and the server send: a pattern that shows any byte
/// out of place (251 is prime, so no buffer size lines up with it).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
