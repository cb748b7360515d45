//! # Lesson 10: many clients, one thread each
//!
//! The idea: `accept` in a loop and hand every connection to a thread of
//! its own. A thread that waits in `recv` for a slow client blocks only
//! itself; the accept loop goes straight back to `accept`, and the other
//! clients' threads keep serving them.
//!
//! What was missing before: the servers of lessons 2 to 9 serve one client
//! at a time. The article's closing remark, that several clients need
//! threads, is where this lesson starts. While one client is connected,
//! even one that has sent half a line and gone quiet, the next client's
//! connection waits in the listener's queue (lesson 8) and its requests go
//! unanswered. The demo shows that first, then the same two clients against
//! a thread per connection, then what each of those threads costs; and,
//! beside the lesson, a process per connection (`fork`) and its cost.
//!
//! The protocol is the one all four multi-client servers (lessons 10 to 13)
//! speak: newline-terminated lines of at most 1024 bytes, each answered by
//! itself; a longer line gets `error: line too long` and the connection is
//! closed. The buffer logic lives in `transcript::lines`; every socket call
//! is here.
//!
//! The files, in reading order:
//! - `plain.rs`: lesson 2's server with one line changed, the thread;
//! - `server.rs`: the server hardened (what you take away): line framing,
//!   time limits both ways, a lingering close, threads that fail to start;
//! - `fork.rs`: beside the lesson, a process per connection instead of a
//!   thread (the `fork` command): who closes what, and zombies;
//! - `demo.rs`: two clients against one thread, then a thread each, and
//!   what a thread costs, then a process each, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod demo;
mod fork;
mod plain;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use transcript::cli::seconds;

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

/// The plain server's listen backlog and receive timeout: lesson 2's
/// flags, fixed here, since the plain server is the idea and no more.
const PLAIN_BACKLOG: i32 = 128;
const PLAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser)]
#[command(
    name = "lesson-10",
    bin_name = "lesson-10",
    about = "Lesson 10: many clients, one thread each"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Two clients against one thread, then a thread each; what a thread costs; a process each (the default)
    Demo,
    /// Serve every client on a thread of its own, answering each line with itself
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent (or not read its replies) before the server drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
    /// Serve every client in a process of its own (fork), answering each line with itself
    Fork {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent (or not read its replies) before its process drops it
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
    /// The plain version: lesson 2's server with a thread per client, echoing what each sends
    Plain {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-10", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, idle }) => {
            server::run(addr, seconds("--idle", idle)?)
        }
        Some(Command::Fork { addr, idle }) => {
            fork::run(addr, seconds("--idle", idle)?)
        }
        Some(Command::Plain { addr }) => {
            plain::run(addr, PLAIN_BACKLOG, PLAIN_TIMEOUT)
        }
    })
}
