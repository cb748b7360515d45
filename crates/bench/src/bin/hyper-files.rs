//! The bench's reference for lesson 17: a static file server on hyper's
//! HTTP/1.1 server and tokio's single-threaded `current_thread` runtime,
//! written the way a user who does not want to write lesson 17 would write
//! it. `GET` and `HEAD` of the files under a directory, `Content-Type` by
//! extension, keep-alive (hyper's default); the bench measures lesson 17
//! against it, with the same files, in the same rounds.
//!
//! ```text
//! hyper-files server --addr 127.0.0.1:0 --root book/book
//! ```

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt as _, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "hyper-files",
    bin_name = "hyper-files",
    about = "The bench's HTTP reference: a static file server on hyper and tokio's current_thread runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the files of a directory over HTTP/1.1, many clients at once, on one thread
    Server {
        /// Address to listen on; port 0 lets the kernel choose a free port
        #[arg(long, default_value = "127.0.0.1:8018")]
        addr: SocketAddr,
        /// The directory served
        #[arg(long, default_value = "book/book")]
        root: PathBuf,
    },
}

fn main() -> ExitCode {
    let Command::Server { addr, root } = Cli::parse().command;
    // One thread runs every connection's task: the same single core
    // lesson 17's epoll loop gets.
    let runtime =
        match tokio::runtime::Builder::new_current_thread().enable_io().build()
        {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("hyper-files: runtime: {err}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(serve(addr, root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hyper-files: {err}");
            ExitCode::FAILURE
        }
    }
}

// ANCHOR: serve
/// Accepts connections for ever, each served by hyper's HTTP/1.1
/// connection task on the runtime's one thread.
async fn serve(addr: SocketAddr, root: PathBuf) -> io::Result<()> {
    let root = Arc::new(root.canonicalize().map_err(|err| {
        io::Error::new(err.kind(), format!("{}: {err}", root.display()))
    })?);
    let listener = TcpListener::bind(addr).await.map_err(|err| {
        io::Error::new(err.kind(), format!("bind {addr}: {err}"))
    })?;
    // The bench learns the port from this line.
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
        let root = Arc::clone(&root);
        let service = service_fn(move |request| {
            let root = Arc::clone(&root);
            async move { Ok::<_, Infallible>(respond(&root, &request)) }
        });
        // A client that breaks the protocol only ends its own task.
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
// ANCHOR_END: serve

type Body = BoxBody<Bytes, Infallible>;

// ANCHOR: respond
/// The file the request names, or 404 or 405. The file is read with a
/// blocking `std::fs::read`, as many small servers do: the bench's files
/// sit in the page cache, where the read takes microseconds; `tokio::fs`
/// would hand each read to a second thread, and the server would no
/// longer run on one core like lesson 17.
fn respond(root: &Path, request: &Request<Incoming>) -> Response<Body> {
    let head = request.method() == Method::HEAD;
    if request.method() != Method::GET && !head {
        let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let Some(path) = file_path(root, request.uri().path()) else {
        return status(StatusCode::NOT_FOUND);
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return status(StatusCode::NOT_FOUND);
    };
    let length = bytes.len();
    let body = if head {
        Empty::new().boxed()
    } else {
        Full::new(Bytes::from(bytes)).boxed()
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}
// ANCHOR_END: respond

/// The file under `root` that a request path names: `index.html` for a
/// folder, nothing for a path that climbs out (`..`) or is not a file.
/// The paths the bench asks for need no percent-decoding.
fn file_path(root: &Path, target: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for component in Path::new(target.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if path.is_dir() {
        path.push("index.html");
    }
    // A symlink that leads out of the root is refused, as lesson 17 does.
    let real = path.canonicalize().ok()?;
    (real.starts_with(root) && real.is_file()).then_some(real)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response =
        Response::new(Full::new(Bytes::from(format!("{code}\n"))).boxed());
    *response.status_mut() = code;
    response
}
