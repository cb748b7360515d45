//! # Lesson 6: ending a conversation
//!
//! The idea: a TCP connection is two byte streams, one each way, and each
//! ends on its own. `shutdown(Write)` ends ours with a FIN: the peer reads
//! end of stream (a read that returns 0 bytes) and can still answer. `close`
//! ends both, and *how* it ends matters: with nothing left unread it sends
//! FIN, but with unread data (or `SO_LINGER` 0) it sends RST, and the peer's
//! next read fails with `ECONNRESET`. Writing to a peer that has gone
//! succeeds until its RST comes back (a round trip), then fails with `EPIPE`
//! (`ECONNRESET` first if no FIN came before the RST). The side that closes
//! first keeps the connection in TIME_WAIT for 60 s, fixed on Linux.
//!
//! What was missing before: lessons 2 and 3 ended every conversation with
//! `close` and took the 0-byte read to mean "done". That hides a request
//! that needs the client to stop sending before the server answers, the
//! reset that a server causes when it closes without reading everything, the
//! broken pipe that a late write gets, and a reply cut short by a panic that
//! looks exactly like a complete one.
//!
//! The files, in reading order:
//! - `client.rs`: a client that half-closes and still reads the answer;
//! - `server.rs`: a server that reads each request to its end, answers, and
//!   ends its side so that no reset can eat the answer (what you take away);
//! - `demo.rs`: seven endings played by one thread, narrated as a timeline,
//!   and the `broken-pipe` experiment;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use transcript::cli::seconds;

/// The article's address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `read` may return.
const RECV_SIZE: usize = 4096;

#[derive(Parser)]
#[command(
    name = "lesson-06",
    bin_name = "lesson-06",
    about = "Lesson 6: ending a conversation: close, half-close, RST, EPIPE and TIME_WAIT"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Read each client's request until it half-closes, then answer and close
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Seconds a client may stay silent before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Read each request, then answer with RST (SO_LINGER 0) instead of a reply
        #[arg(long)]
        abort: bool,
    },
    /// Send stdin, shutdown(Write), then print the reply until the server closes
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
    },
    /// Write twice to a peer that has closed: Ok, then EPIPE (or SIGPIPE)
    BrokenPipe {
        /// What SIGPIPE does: ignore it, as Rust's runtime does, or take the
        /// default action, as a C program does: die
        #[arg(long, value_enum, default_value_t = Sigpipe::Ignore)]
        sigpipe: Sigpipe,
        /// Who sends: std's write (MSG_NOSIGNAL) or socket2's send (flags 0)
        #[arg(long, value_enum, default_value_t = Writer::Std)]
        send: Writer,
    },
}

// Plain comments on the variants below: a doc comment would become a help
// line per value, and the option's own line says it all.

/// What SIGPIPE does to this process.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sigpipe {
    // Ignored: a write to a broken connection returns EPIPE.
    Ignore,
    // The default action: a write that raises SIGPIPE kills the process.
    Default,
}

/// Which library call sends.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Writer {
    // std's `Write for TcpStream`: send(..., MSG_NOSIGNAL).
    Std,
    // socket2's `Socket::send`: send(..., 0).
    Socket2,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-06", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, timeout, abort }) => {
            server::run(addr, seconds("--timeout", timeout)?, abort)
        }
        Some(Command::Client { addr }) => client::run(addr),
        Some(Command::BrokenPipe { sigpipe, send }) => {
            demo::broken_pipe(sigpipe, send)
        }
    })
}
