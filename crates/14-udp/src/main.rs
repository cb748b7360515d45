//! # Lesson 14: UDP, datagrams
//!
//! The idea: a UDP socket sends and receives datagrams, whole messages with
//! an address on each. Two sends are two receives, never merged or split;
//! a datagram too big for the buffer is cut short; one that finds the
//! receiver's buffer full is dropped, and nobody is told. There is no
//! connection: one socket talks with anyone, `recvfrom` says who spoke.
//!
//! What was missing before: lessons 2 to 13 used TCP, which numbers its
//! bytes, resends what was lost, keeps them in order and says when the
//! other side has gone. A UDP program does what it needs of that itself:
//! here, a client that waits a bounded time for each reply and asks again
//! a bounded number of times.
//!
//! The files, in reading order:
//! - `server.rs`: a UDP echo server (what you take away);
//! - `client.rs`: a request/reply client with a timeout and a retry;
//! - `demo.rs`: boundaries, truncation, senders, ICMP, loss, broadcast and
//!   a retry, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::{between_one_and, seconds};

/// This lesson's port. Loopback: only this machine can send to it.
const DEFAULT_ADDR: &str = "127.0.0.1:8014";

/// The largest UDP payload over IPv4: 65,535 bytes minus the IP and UDP
/// headers (`man 7 udp`). A buffer this big never cuts a datagram short.
const MAX_DATAGRAM: usize = 65_507;

#[derive(Parser)]
#[command(
    name = "lesson-14",
    bin_name = "lesson-14",
    about = "Lesson 14: UDP datagrams: boundaries kept, losses unannounced, \
             no connection"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play every side in one process and print the timeline (the default)
    Demo,
    /// Echo every datagram back to whoever sent it
    Server {
        /// Address to receive on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
    /// Send each line typed on stdin as one datagram and print the reply
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds to wait for each reply before sending again
        #[arg(long, default_value_t = 1.0)]
        timeout: f64,
        /// How many times to send a line before giving up (1 to 10)
        #[arg(long, default_value_t = 3)]
        tries: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-14", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr }) => server::run(addr),
        Some(Command::Client { addr, timeout, tries }) => client::run(
            addr,
            seconds("--timeout", timeout)?,
            between_one_and("--tries", tries, 10)?,
        ),
    })
}
