//! # Lesson 8: what `listen(backlog)` really bounds
//!
//! The idea: the backlog is the length of the *accept queue*, the queue of
//! connections whose handshake the kernel has finished and that the program
//! has not yet taken with `accept`. It is not a limit on connections: an
//! accepted connection leaves the queue and no longer counts. On Linux the
//! queue holds `backlog + 1` connections, `net.core.somaxconn` silently
//! lowers any larger backlog, and when the queue is full the kernel drops
//! new SYNs, so a client's `connect` does not fail: it waits, and gets in
//! when its SYN is sent again after the server has accepted.
//!
//! What was wrong before: the article comments `listen(5)` as "the maximum
//! number of connections". Lessons 2 and 3 passed a backlog without saying
//! what it does. Here the server picks its backlog and reads back the queue
//! it got, and clients connect with nonblocking `connect` (it returns
//! `EINPROGRESS`; `poll` says when the handshake ends;
//! `getsockopt(SO_ERROR)` says how), so the demo can count who got in
//! without hanging.
//!
//! The files, in reading order:
//! - `server.rs`: a server that picks its backlog, reads its accept queue
//!   with `TCP_INFO`, and accepts only when you press Enter (the takeaway);
//! - `client.rs`: many nonblocking connects at once, watched by one `poll`;
//! - `demo.rs` and `demo/`: the experiments, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::Failure;
use transcript::cli::{at_least_one, seconds};

/// Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// The demo's defaults: the smallest queue that still shows the `+ 1`, and
/// two clients more than it holds.
const DEFAULT_BACKLOG: i32 = 1;
const DEFAULT_CLIENTS: usize = 4;

#[derive(Parser)]
#[command(
    name = "lesson-08",
    bin_name = "lesson-08",
    about = "Lesson 8: what listen(backlog) really bounds: \
             the accept queue, not the connections"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Fill the accept queue, watch connect stall, then accept (the default)
    Demo {
        /// The backlog passed to listen()
        #[arg(long, default_value_t = DEFAULT_BACKLOG)]
        backlog: i32,
        /// How many clients connect before the server accepts anyone
        #[arg(long, default_value_t = DEFAULT_CLIENTS)]
        clients: usize,
    },
    /// Listen, wait for Enter before accepting, then accept and hold
    /// connections
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// The backlog passed to listen()
        #[arg(long, default_value_t = 1)]
        backlog: i32,
        /// How many accepted connections to keep open; beyond that the
        /// oldest is closed
        #[arg(long, default_value_t = 64)]
        hold: usize,
    },
    /// Open many connections at once and report when each one completes
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How many connections to open
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Seconds to wait for the last connection before giving up on it
        #[arg(long, default_value_t = 10.0)]
        wait: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-08", || match cli.command {
        None => demo::run(DEFAULT_BACKLOG, DEFAULT_CLIENTS),
        Some(Command::Demo { backlog, clients }) => {
            demo::run(checked_backlog(backlog)?, checked_clients(clients)?)
        }
        Some(Command::Server { addr, backlog, hold }) => server::run(
            addr,
            checked_backlog(backlog)?,
            at_least_one("--hold", hold)?,
        ),
        Some(Command::Client { addr, clients, wait }) => client::run(
            addr,
            checked_clients(clients)?,
            seconds("--wait", wait)?,
        ),
    })
}

/// A backlog `listen` will take as meant: negative values are legal in C
/// but mean "as large as allowed", which is not what anyone types on
/// purpose.
fn checked_backlog(backlog: i32) -> Result<i32, Failure> {
    if backlog < 0 {
        return Err(Failure::new(
            "--backlog",
            format!("{backlog} is negative; use 0 or more"),
        ));
    }
    Ok(backlog)
}

/// Enough clients to overflow a small queue; few enough to print.
fn checked_clients(clients: usize) -> Result<usize, Failure> {
    const MOST: usize = 200;
    if !(1..=MOST).contains(&clients) {
        return Err(Failure::new(
            "--clients",
            format!("{clients} is not between 1 and {MOST}"),
        ));
    }
    Ok(clients)
}
