//! # Lesson 11: a bounded pool, a connection limit and a graceful shutdown
//!
//! The idea: a fixed number of worker threads take connections from a
//! channel, so a flood of clients cannot become a flood of threads. The
//! accept loop counts open connections, and the client above the limit gets
//! a clear `error: server busy` line and a close, not a hang. On Ctrl-C
//! (SIGINT), SIGTERM or a `shutdown` line, the server stops accepting,
//! answers what its clients have already sent, closes every connection and
//! exits with status 0.
//!
//! What was missing before: lesson 10 starts a thread for every connection,
//! however many arrive. It has no limit and no way to stop but being killed
//! mid-reply. Two traps wait on the way to a pool, and the demo shows both.
//! The popular worker loop `while let Ok(job) = rx.lock().unwrap().recv()`
//! holds the lock while the job runs, so the pool runs one job at a time
//! (edition 2024 included). And no thread wakes from `accept` because
//! another thread dropped or closed the listener, so a shutdown must wake it
//! another way: here, by connecting to itself.
//!
//! The files, in reading order:
//! - `plain.rs`: a pool of N workers taking connections from a channel,
//!   the idea and no more;
//! - `pool.rs`: the pool: worker threads that run any job from one
//!   channel, and a `finish` that waits for them;
//! - `server.rs`: the server hardened (what you take away): the limit,
//!   the graceful shutdown, connections queued for the pool;
//! - `connection.rs`: one connection, as a worker serves it: lesson 10's
//!   loop, a deadline per line, replies handed over at shutdown;
//! - `demo.rs`: a full house, the two traps measured, then Ctrl-C,
//!   narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod connection;
mod demo;
mod plain;
mod pool;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::{between_one_and, seconds};

use crate::server::Limits;

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// The most workers a server may have: each is a thread (lesson 10 says
/// what one costs), and a number past this is a typo, not a plan.
const MAX_WORKERS: usize = 10_000;

/// The most connections a server may be told to hold open.
const MAX_CONNS: usize = 1_000_000;

#[derive(Parser)]
#[command(
    name = "lesson-11",
    bin_name = "lesson-11",
    about = "Lesson 11: a bounded thread pool, a connection limit and a graceful shutdown"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// A pool of two workers, a full house, the two traps, then Ctrl-C (the default)
    Demo,
    /// Serve clients with a fixed pool of worker threads until Ctrl-C, SIGTERM or a `shutdown` line
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port. Any client may send `shutdown`: on 0.0.0.0 that is anyone who can reach the port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Worker threads: how many clients are served at the same time (1 to 10000)
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Open connections at most, served or waiting for a worker; the next client is told "server busy" (1 to 1000000)
        #[arg(long, default_value_t = 16)]
        max_conns: usize,
        /// Seconds a client may stay silent, take to finish a line, or not read its replies before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
    /// The plain version: a fixed pool of workers taking connections from a channel
    Plain {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Worker threads (1 to 10000)
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-11", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, workers, max_conns, idle }) => {
            let limits = Limits {
                workers: between_one_and("--workers", workers, MAX_WORKERS)?,
                max_conns: between_one_and(
                    "--max-conns",
                    max_conns,
                    MAX_CONNS,
                )?,
                idle: seconds("--idle", idle)?,
            };
            server::run(addr, limits)
        }
        Some(Command::Plain { addr, workers }) => plain::run(
            addr,
            between_one_and("--workers", workers, MAX_WORKERS)?,
        ),
    })
}
