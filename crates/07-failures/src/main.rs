//! # Lesson 7: when things fail
//!
//! The idea: `bind` and `connect` fail in a few well-defined ways, each an
//! errno worth knowing. `EADDRINUSE`: someone holds that address, and on
//! Linux `SO_REUSEADDR` only lets you past connections in TIME_WAIT, never
//! past a listener; `SO_REUSEPORT` lets several sockets listen on one port
//! and spreads connections over them. `ECONNREFUSED`: nobody listens there.
//! `EADDRNOTAVAIL`: no local port left for a new connection. And a port is
//! not one connection: every accepted socket shares the listener's port,
//! told apart by the 4-tuple.
//!
//! What was wrong before: the article says a port cannot be used by two
//! processes at once (it can, with `SO_REUSEPORT`, and every connection
//! shares it anyway) and exits with status 0 when `bind` fails. Here each
//! failure is shown as the kernel reports it, and every failure of the
//! programs ends with one line naming the call, the address and the OS
//! error, and a non-zero exit status.
//!
//! The files, in reading order:
//! - `server.rs`: a server that sets `SO_REUSEADDR` for the right reason,
//!   reports a failed bind in one line, and tells each client its 4-tuple
//!   (what you take away);
//! - `client.rs`: a client whose failures name the call and the address;
//! - `demo.rs`: each failure provoked in turn, one experiment per function,
//!   narrated as a timeline, and the `exhaust-ports` experiment;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return.
const RECV_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lesson-07",
    bin_name = "lesson-07",
    about = "Lesson 7: when things fail: address in use, reuse options, refused connections, port 0 and the 4-tuple"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Show each failure and option in one process, as a timeline (the default)
    Demo,
    /// Tell each client its 4-tuple, then close (the server closes first)
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Leave SO_REUSEADDR off, as raw socket2 does: a restart then fails
        /// while the last run's connections sit in TIME_WAIT
        #[arg(long)]
        no_reuse_address: bool,
        /// Set SO_REUSEPORT before bind: several servers may listen on one
        /// port, and the kernel spreads new connections over them
        #[arg(long)]
        reuse_port: bool,
    },
    /// Connect, print both ends of the connection and the server's reply
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
    /// Connect and close, again and again, until no local port is left
    ExhaustPorts {
        /// Stop after this many connections if none has failed
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-07", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, no_reuse_address, reuse_port }) => {
            server::run(addr, !no_reuse_address, reuse_port)
        }
        Some(Command::Client { addr }) => client::run(addr),
        Some(Command::ExhaustPorts { max }) => demo::exhaust_ports(max),
    })
}
