//! # Lesson 3: from socket2 to std::net
//!
//! The idea: `std::net::TcpListener` and `TcpStream` are the same system
//! calls as lesson 2, bundled. `TcpListener::bind` is socket + setsockopt +
//! bind + listen; `accept` is accept4; `write_all` is a loop of send. The
//! demo narrates, under each std call, the system calls it makes, and the
//! course's kernel check compares that narration with `strace`.
//!
//! What was missing before: lesson 2 spelled every call out, but nobody
//! writes servers that way. Knowing what std does for you explains things
//! that otherwise look like magic or bugs: why std can rebind a port that
//! raw socket2 cannot (std sets `SO_REUSEADDR`), why its descriptors are
//! not inherited by child processes (`SOCK_CLOEXEC`), and why writing to a
//! closed connection gives an error instead of killing the process
//! (`MSG_NOSIGNAL`).
//!
//! The files, in reading order:
//! - `server.rs`: lesson 2's server with std (what you take away);
//! - `client.rs`: lesson 2's client with std;
//! - `demo.rs`: both sides in one thread, each std call followed by the
//!   system calls it made;
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

/// How much one `read` may return, as in the article's `recv(4096)`.
const RECV_SIZE: usize = 4096;

/// The backlog std passes to `listen` on Linux; std offers no way to choose.
const STD_BACKLOG: i32 = 128;

#[derive(Parser)]
#[command(
    name = "lesson-03",
    bin_name = "lesson-03",
    about = "Lesson 3: the same server and client with std::net, \
             and the system calls behind it"
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
    transcript::run("lesson-03", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, timeout }) => {
            server::run(addr, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr }) => client::run(addr),
    })
}
