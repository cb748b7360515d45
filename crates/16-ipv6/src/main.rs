//! # Lesson 16: IPv6 and names
//!
//! The idea: an address has a family. `::1` is IPv6's loopback, as
//! `127.0.0.1` is IPv4's; an `AF_INET6` socket can also serve IPv4 clients
//! (they appear as `::ffff:127.0.0.1`) unless `IPV6_V6ONLY` is on; and a
//! name such as `localhost` may stand for several addresses, of both
//! families, so a client must try each one, not only the first.
//!
//! What was wrong before: lessons 2 to 13 only ever used `127.0.0.1`. A
//! client that resolves `localhost` to `::1` first and gives up after one
//! try is refused by a server bound there; a server bound to `[::]` may or
//! may not take IPv4 clients, depending on one socket option, and may
//! clash with an IPv4 server on the same port.
//!
//! The files, in reading order:
//! - `server.rs`: an echo server for either family, dual-stack on `[::]`
//!   unless told `--v6-only` (what you take away);
//! - `client.rs`: a client that resolves a name and tries every address;
//! - `demo.rs`: the experiments, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::seconds;

/// IPv6's loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "[::1]:8016";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lesson-16",
    bin_name = "lesson-16",
    about = "Lesson 16: IPv6, dual stack, and the many addresses of a name"
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
        /// Address to listen on: [::1]:P, 127.0.0.1:P, or [::]:P for every
        /// interface of this machine, IPv4 too unless --v6-only
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Set IPV6_V6ONLY: an IPv6 socket refuses IPv4 clients
        #[arg(long)]
        v6_only: bool,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Send each line typed on stdin to the server and print its reply
    Client {
        /// Server to connect to: an address, or a name and a port
        /// (localhost:8016); every address of the name is tried in turn
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-16", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, v6_only, timeout }) => {
            server::run(addr, v6_only, seconds("--timeout", timeout)?)
        }
        Some(Command::Client { addr }) => client::run(&addr),
    })
}
