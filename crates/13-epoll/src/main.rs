//! # Lesson 13: `epoll`, level- and edge-triggered
//!
//! The idea: the same one-thread server as lesson 12, on `epoll`. The list
//! of sockets to watch lives in the kernel: `epoll_ctl` adds, changes or
//! removes one entry, and `epoll_wait` returns only the sockets that are
//! ready, however many are watched. Each entry is level-triggered (reported
//! for as long as it is ready, like `poll`) or edge-triggered (`EPOLLET`:
//! reported when something new happens). With edge triggering a loop must
//! drain every ready socket until `EAGAIN`, the listener included: bytes or
//! connections left behind are not reported again.
//!
//! What was missing before: `poll` passes the whole list on every call and
//! the kernel walks all of it, even when one socket is ready. Lesson 12 also
//! needed a signal handler and a self-pipe for Ctrl-C, and when `accept`
//! failed with `EMFILE` (out of descriptors) it could only stop watching the
//! listener for a while. Here the shutdown signals are read from a
//! `signalfd` in the same `epoll`, and a spare descriptor, kept open for the
//! purpose, lets the server accept and refuse the client it has no room for.
//!
//! The files, in reading order:
//! - `plain.rs`: the loop a reader would write first;
//! - `server.rs`: the server (what you take away): the same loop, hardened;
//! - `conn.rs`: one connection: its state (one enum), and its bytes in
//!   flight, kept only while they wait;
//! - `interests.rs`: what each connection's `epoll` entry asks for;
//! - `idle.rs`: the idle limit, without looking at every connection;
//! - `spare.rs`: the spare descriptor, for `EMFILE`;
//! - `shutdown.rs`: the signalfd, and the graceful shutdown;
//! - `conns.rs`: the connections, found by descriptor number;
//! - `demo.rs`: the experiments and the narrated timeline;
//! - `main.rs`: this file, the command line.

mod conn;
mod conns;
mod demo;
mod idle;
mod interests;
mod plain;
mod server;
mod shutdown;
mod spare;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::{at_least_one, seconds};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

#[derive(Parser)]
#[command(
    name = "lesson-13",
    bin_name = "lesson-13",
    about = "Lesson 13: epoll, level- and edge-triggered, with a signalfd \
             shutdown and EMFILE handled"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// One read per event under both triggers, the server edge-triggered, EMFILE, then Ctrl-C (the default)
    Demo,
    /// Serve every client from one thread with epoll, until Ctrl-C or a `shutdown` line
    #[command(after_help = "Any client may stop the server by sending a \
        `shutdown` line. With --addr 0.0.0.0 that is anyone who can reach \
        the port: listen on a public address only where you trust every \
        client.")]
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Open connections at most; the next client is told "server busy"
        #[arg(long, default_value_t = 1024)]
        max_conns: usize,
        /// Seconds a connection may make no progress (nothing read, nothing written) before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
        /// Register sockets edge-triggered (EPOLLET) instead of level-triggered
        #[arg(long)]
        edge: bool,
    },
    /// The plain loop: echo every client from one thread, no limits, until killed
    Plain {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-13", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, max_conns, idle, edge }) => {
            let limits = server::Limits {
                max_conns: at_least_one("--max-conns", max_conns)?,
                idle: seconds("--idle", idle)?,
                edge,
            };
            server::run(addr, limits)
        }
        Some(Command::Plain { addr }) => plain::run(addr),
    })
}
