//! # Lesson 9: timeouts, and a server that survives them
//!
//! The idea: every blocking socket call can wait for ever, and each has its
//! own way to be bounded. `SO_RCVTIMEO` bounds `recv` and `accept`,
//! `SO_SNDTIMEO` bounds `send` and even a blocking `connect`; a nonblocking
//! `connect` plus `poll` bounds the handshake. A timeout is an ordinary
//! result to handle (on Linux `EAGAIN`, Rust's `WouldBlock`, not
//! `TimedOut`): the server closes that one connection and serves the next.
//! A per-read timeout does not bound a request, because every byte restarts
//! it; a deadline per request does. And a peer that vanished without a FIN
//! is never noticed by a reader unless something checks: keepalive probes
//! (hours by default) or a heartbeat of the program's own.
//!
//! What was wrong before: the article sets `settimeout(10)` and does not
//! catch the timeout, so the first quiet client kills its server. Lessons 2
//! and 3 caught it for reads only; lesson 8 showed a `connect` that waits
//! for a full accept queue. Here every wait gets a bound, and a slow, idle
//! or silent client costs the server one connection, never the server.
//!
//! The files, in reading order:
//! - `plain.rs`: the server a reader writes first, lesson 2's loop with a
//!   read timeout, and what it leaves open;
//! - `server.rs`: the server that bounds every wait (what you take away);
//! - `client.rs`: the client, with a bounded connect and bounded replies;
//! - `demo.rs`: each kind of timeout, one part at a time, as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod plain;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::seconds;

/// Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// The longest request line the server accepts, and so the longest reply
/// the client waits for.
const MAX_LINE: usize = 64 * 1024;

#[derive(Parser)]
#[command(
    name = "lesson-09",
    bin_name = "lesson-09",
    about = "Lesson 9: timeouts: read, write, connect and accept, \
             deadlines, dead peers, and a server that survives them"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Time out every kind of call, on loopback, and print the timeline (the default)
    Demo,
    /// The plain server: echo each client until it closes or goes quiet
    Plain {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Echo lines back, one client at a time, closing clients that stall
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent before the server closes it
        #[arg(long, default_value_t = 10.0)]
        idle: f64,
        /// Seconds a request (one line) may take from its first byte to its newline
        #[arg(long, default_value_t = 30.0)]
        deadline: f64,
    },
    /// Send each line typed on stdin and print the reply, giving up after --timeout
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds to wait for the connection, and then for each reply
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every duration goes through `seconds`, which refuses what a socket
    // option or a clock cannot hold (0, 1e-7, 1e19, NaN) with one line.
    transcript::run("lesson-09", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Plain { addr, timeout }) => {
            plain::run(addr, seconds("--timeout", timeout)?)
        }
        Some(Command::Server { addr, idle, deadline }) => {
            let limits = server::Limits {
                idle: seconds("--idle", idle)?,
                deadline: seconds("--deadline", deadline)?,
            };
            server::run(addr, limits)
        }
        Some(Command::Client { addr, timeout }) => {
            client::run(addr, seconds("--timeout", timeout)?)
        }
    })
}
