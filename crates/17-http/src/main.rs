//! # Lesson 17, the capstone: an HTTP/1.1 server a browser uses
//!
//! The idea: lesson 13's `epoll` loop, unchanged in shape, speaking a
//! protocol real clients speak. HTTP/1.1 is lesson 5's framing made
//! precise: a request's head is lines ending in CRLF up to an empty line,
//! and a response says its length (`Content-Length`) so the connection can
//! carry the next one (keep-alive). Every limit of the earlier lessons
//! comes back with a status code: a line too long is `414`, too many
//! headers `431`, a client too slow with its head `408` (lesson 9's
//! deadline), one connection too many `503` (lesson 11's limit).
//!
//! What was missing before: our servers echoed lines that only our own
//! tests and `nc` sent. A browser sends many requests on one connection,
//! several before reading any answer (pipelining), and a path it was given
//! by whoever wrote the link: the server must answer in order and never
//! serve a file outside its directory.
//!
//! The files, in reading order:
//! - `http.rs`: a request's head, parsed with limits, and the response;
//! - `files.rs`: from a path to a file inside the served directory;
//! - `server.rs`: the server (what you take away): lesson 13's loop;
//! - `conn.rs`: one connection: its requests, replies and state (one enum);
//! - `shutdown.rs`: the signalfd, and the graceful shutdown;
//! - `demo.rs`: the narrated timeline, on a small directory it makes;
//! - `main.rs`: this file, the command line.

mod conn;
mod demo;
mod files;
mod http;
mod server;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::{at_least_one, seconds};

/// This lesson's port: 8000 plus its number, as every lesson's.
const DEFAULT_ADDR: &str = "127.0.0.1:8017";

#[derive(Parser)]
#[command(
    name = "lesson-17",
    bin_name = "lesson-17",
    about = "Lesson 17, the capstone: an HTTP/1.1 static file server on \
             lesson 13's epoll loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// A few requests on a small directory, narrated (the default)
    Demo,
    /// Serve the files of a directory over HTTP/1.1, until Ctrl-C
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// The directory served; the default is the built book (`just book`)
        #[arg(long, default_value = "book/book")]
        root: PathBuf,
        /// Open connections at most; the next client is answered 503
        #[arg(long, default_value_t = 256)]
        max_conns: usize,
        /// Seconds a client has to send a whole request head (else 408)
        #[arg(long, default_value_t = 10.0)]
        header_timeout: f64,
        /// Seconds a kept-alive connection may wait for its next request
        #[arg(long, default_value_t = 30.0)]
        idle: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-17", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server {
            addr,
            root,
            max_conns,
            header_timeout,
            idle,
        }) => {
            let limits = server::Limits {
                max_conns: at_least_one("--max-conns", max_conns)?,
                header_timeout: seconds("--header-timeout", header_timeout)?,
                idle: seconds("--idle", idle)?,
            };
            server::run(addr, &root, limits)
        }
    })
}
