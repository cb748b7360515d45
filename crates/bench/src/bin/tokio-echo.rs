//! The bench's reference server: the course's line protocol (each line the
//! client sends comes back as one reply line) served on tokio's
//! single-threaded `current_thread` runtime, written the way a user who does
//! not want to write lessons 10-13 themselves would write it. The bench
//! measures every lesson's server against this one, in the same run.
//!
//! ```text
//! tokio-echo server --addr 127.0.0.1:0    # prints "Listening on ADDR"
//! ```

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The longest line the protocol allows, newline not counted.
const MAX_LINE: u64 = 1024;

#[derive(Parser)]
#[command(
    name = "tokio-echo",
    bin_name = "tokio-echo",
    about = "The bench's reference: a line echo server on tokio's current_thread runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Echo every line each client sends, many clients at once, on one thread
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = "127.0.0.1:8001")]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let Command::Server { addr } = Cli::parse().command;
    // One thread runs every connection's task: the same single core the
    // lessons' poll and epoll servers get.
    let runtime =
        match tokio::runtime::Builder::new_current_thread().enable_io().build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("tokio-echo: runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(serve(addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tokio-echo: {err}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: serve
/// Accepts connections for ever, each served by a task of its own on the
/// runtime's one thread.
async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await.map_err(|err| {
        io::Error::new(err.kind(), format!("bind {addr}: {err}"))
    })?;
    // The bench (and a reader using port 0) learns the port from this line.
    println!("Listening on {}", listener.local_addr()?);
    loop {
        // An accept error concerns one connection, not the server.
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                eprintln!("accept: {err}");
                continue;
            }
        };
        // A client that breaks the protocol or resets only ends its own task.
        tokio::spawn(async move {
            let _ = echo_lines(stream).await;
        });
    }
}
// ANCHOR_END: serve

// ANCHOR: echo_lines
/// Replies to each line with the same line, until the client closes.
async fn echo_lines(mut stream: TcpStream) -> io::Result<()> {
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        // `take` bounds what one line may make us buffer.
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "line too long, or cut by the end of the stream",
            ));
        }
        writer.write_all(&line).await?;
    }
}
// ANCHOR_END: echo_lines
