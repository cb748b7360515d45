//! # Lesson 15: Unix domain sockets
//!
//! The idea: the socket calls of lessons 2 to 13 work between processes on
//! one machine without TCP. An `AF_UNIX` socket's address is a path in the
//! file system (or, on Linux, a name in an abstract namespace); the kernel
//! copies bytes from one process to the other, and it can tell the server
//! who is calling (`SO_PEERCRED`) and carry open descriptors across
//! (`SCM_RIGHTS`), which no network can.
//!
//! What was wrong before: a local service on `127.0.0.1` is open to every
//! user of the machine and cannot tell which one connected. A socket file
//! has an owner and a mode, and the server can ask the kernel for the
//! caller's pid, uid and gid. The price is a file that outlives its server:
//! the next start fails with `EADDRINUSE` until someone removes it, and
//! removing it blindly can take the path away from a live server.
//!
//! The files, in reading order:
//! - `server.rs`: a line server on a socket file, which removes a stale
//!   file only when it is a socket nobody answers on (what you take away);
//! - `client.rs`: its client;
//! - `demo.rs`: the socket file, a stale file, the abstract namespace,
//!   `socketpair` and `SOCK_SEQPACKET`, `SO_PEERCRED` and `SCM_RIGHTS`,
//!   narrated as a timeline;
//! - `main.rs`: this file, the command line.

mod client;
mod demo;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The longest line the server reads before it gives up on a client.
const MAX_LINE: usize = 4096;

/// Where the server and client meet unless told otherwise: a file in the
/// system's temporary directory (`$TMPDIR`, else `/tmp`). Both terminals
/// find it whatever directory they run in, and it leaves nothing in the
/// repository. A real service uses a directory only it may write in
/// (`/run/NAME`, `$XDG_RUNTIME_DIR`): in `/tmp` anyone may create the
/// name first.
fn default_path() -> PathBuf {
    std::env::temp_dir().join("lesson-15.sock")
}

#[derive(Parser)]
#[command(
    name = "lesson-15",
    bin_name = "lesson-15",
    about = "Lesson 15: Unix domain sockets: a path, a pair, \
             who is calling, passing a descriptor"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Play every part in one process and print the timeline (the default)
    Demo,
    /// Serve clients on a socket file, one thread each, echoing lines
    Server {
        /// The socket file [default: lesson-15.sock in the temp directory]
        #[arg(long)]
        path: Option<PathBuf>,
        /// Who may connect: the file's mode, in octal (0600: only you)
        #[arg(long, default_value = "600", value_parser = mode)]
        mode: u32,
    },
    /// Send each line typed on stdin to the server and print its reply
    Client {
        /// The server's socket file [default: as the server's]
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

/// A file mode in octal, 0 to 0777.
fn mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(format!("{text} is not a mode from 0 to 777 in octal")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-15", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Server { path, mode }) => {
            server::run(&path.unwrap_or_else(default_path), mode)
        }
        Some(Command::Client { path }) => {
            client::run(&path.unwrap_or_else(default_path))
        }
    })
}
