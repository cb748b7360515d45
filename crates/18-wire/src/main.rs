//! # Lesson 18: watching the wire
//!
//! The idea: the segments every chapter talks about (the handshake before
//! `accept`, the data, the FIN that makes `recv` return 0) can be seen
//! from a socket too. A packet socket (`AF_PACKET`) bound to the loopback
//! interface receives a copy of every frame that crosses it; a classic BPF
//! filter, attached with `SO_ATTACH_FILTER`, keeps one TCP port's; a few
//! fixed offsets in the Ethernet, IPv4 and TCP headers say what each
//! segment carries.
//!
//! What was wrong before: the book's sequence diagram was drawn by hand,
//! and every claim about segments was a sentence. Here the diagram is
//! drawn from what the kernel actually sent, in the same run as the calls.
//!
//! The files, in reading order:
//! - `watch.rs`: the watcher: open, filter, read, parse (what you take
//!   away);
//! - `demo.rs`: a watcher and two TCP conversations (one closed by FINs,
//!   one by a RST), then their diagrams;
//! - `beside.rs`: `beside N`, lesson N's demo in a network namespace of
//!   its own, each line after the packets sent before it (`just wire N`);
//! - `main.rs`: this file, the command line.

mod beside;
mod demo;
mod watch;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use transcript::cli::seconds;

#[derive(Parser)]
#[command(
    name = "lesson-18",
    bin_name = "lesson-18",
    about = "Lesson 18: watching the wire with a packet socket \
             (needs root or CAP_NET_RAW)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Watch two TCP conversations and draw their segments (the default)
    Demo,
    /// Print each TCP segment to or from a port on the loopback interface
    Watch {
        /// The TCP port to watch
        #[arg(long, default_value_t = 8018)]
        port: u16,
        /// Seconds without a segment after which the watcher stops
        #[arg(long, default_value_t = 60.0)]
        idle: f64,
    },
    /// Run lesson N's demo, each call beside the segments it sent (root)
    Beside {
        /// The lesson whose demo to run (2 to 17)
        #[arg(value_parser = clap::value_parser!(u32).range(2..=17))]
        lesson: u32,
        /// Hide the pure ACKs a timer may send sooner or later
        #[arg(long)]
        steady: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-18", || match cli.command {
        None | Some(Command::Demo) => demo::run(),
        Some(Command::Watch { port, idle }) => {
            watch::run(port, seconds("--idle", idle)?)
        }
        Some(Command::Beside { lesson, steady }) => beside::run(lesson, steady),
    })
}
