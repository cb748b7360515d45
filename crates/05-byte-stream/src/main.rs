//! # Lesson 5: a byte stream, not messages
//!
//! The idea: TCP delivers bytes, in order, and nothing else. Where one
//! `send` ended and the next began is not delivered: one send can arrive as
//! several recvs, and several sends as one recv. A program that exchanges
//! messages must mark where each ends in the bytes themselves (framing),
//! keep what it has read until a frame is whole, and bound how much it will
//! keep, or one bad peer can make it buffer without end.
//!
//! What was wrong before: the article's client, like lessons 2 and 3, takes
//! one `recv(4096)` for one message. Here a split and a merge are shown
//! happening; then two framings, by newline and by length prefix, each with
//! a maximum frame size. A frame that is too long, not text, or cut off by
//! the end of the stream gets a one-line error reply and the connection is
//! closed: never a panic, never an unbounded buffer. And `recv` returning 0
//! is the end of the stream, for good, not "nothing yet".
//!
//! The files, in reading order:
//! - `frame.rs`: the two framings, taking whole frames off the bytes read
//!   so far, with a maximum size (what you take away);
//! - `server.rs`: a server that answers each frame, and refuses a bad one;
//! - `client.rs`: lesson 3's client, reading until a reply frame is whole;
//! - `demo.rs`: a split, a merge, and both framings, narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod frame;
mod server;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::seconds;

use crate::frame::Framing;

/// The default address. Loopback: only this machine can connect.
const DEFAULT_ADDR: &str = "127.0.0.1:8001";

/// How much one `recv` may return, as in the article's `recv(4096)`.
const RECV_SIZE: usize = 4096;

/// The server's default and largest maximum frame size, in bytes.
const DEFAULT_MAX_FRAME: usize = 1024;
const LARGEST_MAX_FRAME: usize = 1 << 20;

/// The largest reply a client accepts: an echo of the largest frame a
/// server may allow, plus its `echo: ` prefix.
const MAX_REPLY: usize = LARGEST_MAX_FRAME + 16;

#[derive(Parser)]
#[command(
    name = "lesson-05",
    bin_name = "lesson-05",
    about = "Lesson 5: a byte stream, not messages: framing by newline and \
             by length prefix"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play both sides in one process and print the timeline (the default)
    Demo,
    /// Serve clients one at a time: answer each frame with "echo: " and the
    /// frame; answer a bad frame with "error: " and why, then close
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How frames are marked in the byte stream
        #[arg(long, value_enum, default_value_t = Framing::Line)]
        framing: Framing,
        /// The largest frame accepted, in bytes, from 1 to 1048576 (not
        /// counting the newline or the length header); longer ones are
        /// refused without buffering them
        #[arg(
            long,
            default_value_t = DEFAULT_MAX_FRAME,
            value_parser = max_frame
        )]
        max_frame: usize,
        /// Seconds a client may stay silent, or leave its replies unread,
        /// before the server drops it
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
    /// Send each line typed on stdin as one frame and print the reply frame
    Client {
        /// Address of the server
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// How frames are marked in the byte stream (as the server's)
        #[arg(long, value_enum, default_value_t = Framing::Line)]
        framing: Framing,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-05", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { addr, framing, max_frame, timeout }) => {
            let timeout = seconds("--timeout", timeout)?;
            server::run(addr, framing, max_frame, timeout)
        }
        Some(Command::Client { addr, framing }) => client::run(addr, framing),
    })
}

/// `--max-frame`: a whole number of bytes from 1 to LARGEST_MAX_FRAME.
fn max_frame(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=LARGEST_MAX_FRAME).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a number of bytes from 1 to {LARGEST_MAX_FRAME}"
        )),
    }
}
