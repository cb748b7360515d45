//! # Lesson 2: the article's TCP server and client, one raw call at a time
//!
//! The idea: a TCP conversation is eight system calls. The server calls
//! `socket`, `bind`, `listen` and `accept`; the client calls `socket` and
//! `connect`; both `send`, `recv` and `close`. Here each one is written out
//! with socket2, which is a thin, safe skin over those calls.
//!
//! What was wrong before: the article's programs treat data as text, exit
//! with status 0 when `bind` fails, and set a 10-second timeout that kills
//! the server the first time a client goes quiet. Here data is bytes, every
//! failure exits non-zero with the call, the address and the OS error, and a
//! timed-out client is dropped while the server goes on serving.
//!
//! The files, in reading order:
//! - `server.rs`: the article's server, corrected (what you take away);
//! - `client.rs`: the article's client;
//! - `demo.rs`: both sides in one thread, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::seconds;

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return, as in the article's `recv(4096)`.
const RECV_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lesson-02",
    bin_name = "lesson-02",
    about = "Lesson 2: the article's TCP server and client, \
             one raw socket call at a time"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Serve clients one at a time, echoing back what each one sends
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Length of the queue of connections not yet accepted (lesson 8)
        #[arg(long, default_value_t = 5)]
        backlog: i32,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Send each line typed on stdin to the server and print its reply
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-02", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, backlog, timeout }) => {
            server::run(addr, backlog, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr }) => client::run(addr),
    })
}
