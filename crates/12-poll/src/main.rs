//! # Lesson 12: non-blocking sockets and `poll`
//!
//! The idea: one thread serves every client. Every socket is non-blocking,
//! so no call ever waits: a `recv` with nothing to read, an `accept` with
//! nobody queued and a `send` into a full buffer all fail at once with
//! `EAGAIN` (`WouldBlock`). The one call that waits is `poll`: it sleeps
//! until at least one of the sockets can make progress, and says which.
//!
//! What was wrong before: in lessons 10 and 11 every client in service
//! holds a thread, blocked in `recv` while the client is slow or idle. A
//! pool of N workers is stopped by N idle clients. Here an idle client
//! costs a few hundred bytes, and a slow one delays nobody.
//!
//! The files, in reading order:
//! - `plain.rs`: the loop a reader writes first (the `plain` command);
//! - `conn.rs`: one connection: its buffers and its state;
//! - `server.rs`: the event loop, one `poll` per turn (what you take away);
//! - `interests.rs`: what each connection asks `poll` for, every turn;
//! - `idle.rs`: the idle limit, looking at every connection;
//! - `shutdown.rs`: Ctrl-C as a byte on a socket pair `poll` watches;
//! - `conns.rs`: the connections, found by descriptor number;
//! - `select.rs`: `select`, the call before `poll`, and its `FD_SETSIZE`
//!   wall, shown at the end of the demo;
//! - `demo.rs`: the server and its clients in one thread, as a timeline;
//! - `main.rs`: this file, the command line.

mod conn;
mod conns;
mod demo;
mod idle;
mod interests;
mod plain;
mod select;
mod server;
mod shutdown;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::{between_one_and, seconds};

use crate::server::Limits;

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// The most connections `--max-conns` allows: far more than the default
/// descriptor limit, and little enough to allocate nothing absurd.
const MAX_CONNS: usize = 1 << 20;

#[derive(Parser)]
#[command(
    name = "lesson-12",
    bin_name = "lesson-12",
    about = "Lesson 12: non-blocking sockets and poll: \
             one thread serves every client"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// One thread, several clients, a reset, a half-close, a full buffer,
    /// then Ctrl-C; then select's FD_SETSIZE wall (the default)
    Demo,
    /// Serve every client from one thread with poll, until Ctrl-C or a
    /// `shutdown` line
    #[command(after_help = "Any client may send the line `shutdown`, and \
        the server then shuts down gracefully. On loopback (the default) \
        that is a client on this machine; with --addr 0.0.0.0, anyone who \
        can reach the port can stop the server.")]
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Open connections at most; the next client is told "server busy"
        #[arg(long, default_value_t = 1024)]
        max_conns: usize,
        /// Seconds a connection may make no progress (nothing read,
        /// nothing written) before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
    /// The plain poll loop a reader writes first: echoes what each client
    /// sends, with no limits and no graceful shutdown
    Plain {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-12", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, max_conns, idle }) => {
            let limits = Limits {
                max_conns: between_one_and(
                    "--max-conns",
                    max_conns,
                    MAX_CONNS,
                )?,
                idle: seconds("--idle", idle)?,
            };
            server::run(addr, limits)
        }
        Some(Command::Plain { addr }) => plain::run(addr),
    })
}
