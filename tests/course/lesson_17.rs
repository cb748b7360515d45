//! Lesson 17, the capstone: an HTTP/1.1 static file server, against
//! clients nobody here wrote (Python's `http.client`, curl) and raw bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::snapshot;
use crate::support::{
    Server, bin, have, help, run, run_with, stable_demo, stdout_of,
};

/// A directory to serve, made for one test: `index.html`, `style.css`,
/// `a b.txt`, `big.bin` (`big` bytes), a symlink `escape.txt` to
/// `../secret.txt`, which lies outside. Removed when dropped.
pub struct Site(PathBuf);

pub const INDEX: &str = "<!doctype html><title>t</title><h1>hello</h1>\n";
pub const SECRET: &str = "the secret\n";

impl Site {
    pub fn new(tag: &str, big: usize) -> Site {
        let dir = std::env::temp_dir()
            .join(format!("lesson-17-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let site = dir.join("site");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("index.html"), INDEX).unwrap();
        std::fs::write(site.join("style.css"), "h1 { color: red }\n").unwrap();
        std::fs::write(site.join("a b.txt"), "spaced\n").unwrap();
        std::fs::write(site.join("big.bin"), vec![b'x'; big]).unwrap();
        std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
        std::os::unix::fs::symlink("../secret.txt", site.join("escape.txt"))
            .unwrap();
        Site(dir)
    }

    pub fn root(&self) -> PathBuf {
        self.0.join("site")
    }

    /// The server on port 0, serving this site, with extra flags.
    pub fn serve(&self, args: &[&str]) -> Server {
        Server::start(
            Command::new(bin(17))
                .args(["server", "--addr", "127.0.0.1:0", "--root"])
                .arg(self.root())
                .args(args),
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads one response: its head (as text) and body, by `Content-Length`
/// (none for a `HEAD`).
pub fn response(stream: &mut TcpStream, head_only: bool) -> (String, Vec<u8>) {
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response head");
        assert_eq!(n, 1, "the stream ended in a head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0u8; if head_only { 0 } else { length }];
    stream.read_exact(&mut body).expect("the body");
    (head, body)
}

/// Sends `request` on a new connection and reads one response.
pub fn ask(addr: &str, request: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    response(&mut stream, false)
}

/// Whether the stream ends (EOF, or a reset) within a few seconds.
pub fn ends(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) => {
                return err.kind() != std::io::ErrorKind::WouldBlock
                    && err.kind() != std::io::ErrorKind::TimedOut;
            }
        }
    }
}

#[test]
fn demo_transcript_is_stable_and_reviewed() {
    let transcript = stable_demo(17);
    assert!(transcript.contains("GET / -> 200"));
    // Two requests in one recv, two responses in one send, in order.
    assert!(transcript.contains(
        "recv(fd 7, 4096) = 80  (\"GET /style.css HTTP/1.1\\r\\nHost: d\"...)"
    ));
    assert!(transcript.contains("GET /style.css -> 200"));
    assert!(transcript.contains("HEAD /index.html -> 200"));
    assert!(transcript.contains("GET /missing.html -> 404"));
    assert!(transcript.contains("GET /../secret.txt -> 403"));
    assert!(transcript.contains("GET /%2e%2e/secret.txt -> 403"));
    assert!(transcript.contains("GET /escape.txt -> 403"));
    assert!(!transcript.contains("not for the web"));
    // The demo sets its files' modification time: the same in every run.
    assert!(transcript.contains(
        "Content-Length: 19 | Last-Modified: Sun, 01 Nov 2026 00:00:00 GMT \
         | Connection: close"
    ));
    assert!(transcript.contains("shutdown(fd 7, SHUT_WR) = 0"));
    assert!(transcript.contains("(SIGINT)"));
    assert!(
        transcript.contains("B's request, sent after the signal, was answered")
    );
    snapshot!("lesson_17__demo", transcript);
}

#[test]
fn help_is_reviewed() {
    snapshot!("lesson_17__help", help(17));
    snapshot!(
        "lesson_17__help_server",
        stdout_of(&run(17, &["server", "--help"], b""))
    );
}

/// A missing directory is one clear line and status 1, not a panic.
#[test]
fn a_missing_root_is_one_line_and_status_1() {
    let out = run(17, &["server", "--root", "/nonexistent/lesson-17"], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("lesson-17: --root /nonexistent/lesson-17: "));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Python's `http.client`: keep-alive (one socket for several requests),
/// Content-Type, HEAD, a percent-encoded name, 404, and 405 with Allow.
#[test]
fn python_http_client_is_served() {
    let site = Site::new("python", 10);
    let server = site.serve(&[]);
    let (host, port) = server.addr.rsplit_once(':').unwrap();
    let script = r#"
import http.client, sys
c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=10)
def get(method, path):
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    print(method, path, r.status, r.getheader("Content-Type"),
          r.getheader("Content-Length"), r.getheader("Allow"), body[:20])
get("GET", "/")
sock = c.sock
get("GET", "/style.css")
get("HEAD", "/index.html")
get("GET", "/a%20b.txt")
get("GET", "/nope.html")
print("same socket:", c.sock is sock)
get("POST", "/")
"#;
    let out =
        run_with(Command::new("python3").args(["-c", script, host, port]), b"");
    let stdout = stdout_of(&out);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        "GET / 200 text/html; charset=utf-8 46 None b'<!doctype html><titl'",
        "GET /style.css 200 text/css; charset=utf-8 18 None b'h1 { color: red }\\n'",
        "HEAD /index.html 200 text/html; charset=utf-8 46 None b''",
        "GET /a%20b.txt 200 text/plain; charset=utf-8 7 None b'spaced\\n'",
        "GET /nope.html 404 text/plain; charset=utf-8 14 None b'404 Not Found\\n'",
        "same socket: True",
        "POST / 405 text/plain; charset=utf-8 23 GET, HEAD b'405 Method Not Allow'",
    ];
    for line in expected {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

/// curl: two URLs on one connection, `-I`, and `--http1.0` (which closes).
#[test]
fn curl_reuses_the_connection_and_speaks_http_1_0() {
    if !have("curl") {
        return;
    }
    let site = Site::new("curl", 10);
    let server = site.serve(&[]);
    let base = format!("http://{}", server.addr);
    let two = run_with(
        Command::new("curl")
            .args(["-sv", "--max-time", "10"])
            .arg(format!("{base}/"))
            .arg(format!("{base}/style.css")),
        b"",
    );
    let stderr = String::from_utf8_lossy(&two.stderr);
    assert!(two.status.success(), "{stderr}");
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    assert_eq!(stdout_of(&two), format!("{INDEX}h1 {{ color: red }}\n"));
    let head = run_with(
        Command::new("curl")
            .args(["-sI", "--http1.0", "--max-time", "10"])
            .arg(format!("{base}/index.html")),
        b"",
    );
    let head = stdout_of(&head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 46\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
}

/// `curl -z DATE` sends `If-Modified-Since: DATE`: a file modified at that
/// date or before is answered `304 Not Modified` with no body, one
/// modified a second later in full; every `200` of a file says when it was
/// last modified. The date is curl's own rendering of what it was given.
#[test]
fn curl_z_gets_304_when_the_file_is_not_newer() {
    if !have("curl") {
        return;
    }
    let site = Site::new("curl-z", 10);
    let modified = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
    std::fs::File::options()
        .write(true)
        .open(site.root().join("style.css"))
        .and_then(|file| file.set_modified(modified))
        .unwrap();
    let mut server = site.serve(&[]);
    let url = format!("http://{}/style.css", server.addr);
    let get_since = |date: &str| {
        stdout_of(&run_with(
            Command::new("curl")
                .args(["-s", "--max-time", "10", "-w", "[%{http_code}]"])
                .args(["-z", date])
                .arg(&url),
            b"",
        ))
    };
    assert_eq!(get_since("Sun, 06 Nov 1994 08:49:37 GMT"), "[304]");
    server.wait_for("GET /style.css -> 304");
    assert_eq!(get_since("Sun, 06 Nov 1994 08:49:38 GMT"), "[304]");
    assert_eq!(
        get_since("Sun, 06 Nov 1994 08:49:36 GMT"),
        "h1 { color: red }\n[200]"
    );
    server.wait_for("GET /style.css -> 200");
    let head = stdout_of(&run_with(
        Command::new("curl").args(["-sI", "--max-time", "10"]).arg(&url),
        b"",
    ));
    assert!(
        head.contains("Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"),
        "{head}"
    );
}

/// Three requests in one write are answered in order on one connection;
/// a bad request line is 400, a long target 414, many headers 431.
#[test]
fn pipelined_requests_in_order_and_bad_heads_refused() {
    let site = Site::new("pipeline", 10);
    let server = site.serve(&[]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(
            b"GET /style.css HTTP/1.1\r\n\r\nHEAD / HTTP/1.1\r\n\r\n\
              GET /a%20b.txt HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let (head, body) = response(&mut stream, false);
    assert!(head.contains("text/css") && body == b"h1 { color: red }\n");
    let (head, _) = response(&mut stream, true);
    assert!(head.contains("Content-Length: 46\r\n"), "{head}");
    let (head, body) = response(&mut stream, false);
    assert!(head.contains("Connection: close") && body == b"spaced\n");
    assert!(ends(&mut stream));

    let status = |request: String| ask(&server.addr, &request).0;
    assert!(status("GET\r\n\r\n".into()).starts_with("HTTP/1.1 400 "));
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(3000));
    assert!(status(long).starts_with("HTTP/1.1 414 "));
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(100));
    assert!(status(many).starts_with("HTTP/1.1 431 "));
}

/// The book's own files, if built: every page a browser loads first has
/// the type it needs. Skipped when `book/book` is not there.
#[test]
fn serves_the_built_book_when_there() {
    let book = crate::support::root().join("book/book");
    if !Path::new(&book).join("index.html").exists() {
        return;
    }
    let server = Server::start(
        Command::new(bin(17))
            .args(["server", "--addr", "127.0.0.1:0", "--root"])
            .arg(&book),
    );
    let (head, body) = ask(&server.addr, "GET / HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("Sockets, step by step"));
    let (head, _) = ask(&server.addr, "GET /lesson-01.html HTTP/1.1\r\n\r\n");
    assert!(head.contains("text/html"), "{head}");
}

/// A real browser: headless Chromium loads a page from the server, fetches
/// its stylesheet and runs its script, which writes into the title what
/// colour the stylesheet gave the heading: the dumped DOM shows what the
/// browser rendered, not the bytes we sent. Debian's `chromium` package;
/// `.ci/run` installs it, so in CI a missing browser is a failure. About
/// 1.5 s, most of it the browser starting.
#[test]
fn headless_chromium_renders_a_page() {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (.ci/run installs Debian's package)"
        );
        eprintln!("chromium is not installed: skipping the browser test");
        return;
    }
    let site = Site::new("chromium", 10);
    std::fs::write(site.root().join("page.html"), STYLED_PAGE).unwrap();
    let mut server = site.serve(&[]);
    let profile = site.0.join("profile");
    let out = run_with(
        Command::new("chromium")
            // CI runs as root, and Chromium refuses to start as root with
            // its sandbox on ("Running as root without --no-sandbox is not
            // supported"); the page is our own, so nothing needs the
            // sandbox's protection. No GPU in a container either.
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(format!("http://{}/page.html", server.addr)),
        b"",
    );
    let dom = stdout_of(&out);
    assert!(
        dom.contains("<title>h1 is rgb(255, 0, 0)</title>"),
        "the browser did not apply style.css to the page:\n{dom}"
    );
    assert!(dom.contains("<h1>hello</h1>"), "{dom}");
    server.wait_for("GET /page.html -> 200");
    server.wait_for("GET /style.css -> 200");
}

/// A page that needs a browser: its script runs after the stylesheet has
/// loaded (a script waits for the stylesheets before it) and titles the
/// page with the colour the stylesheet gave the heading.
const STYLED_PAGE: &str = "<!doctype html><title>t</title>\
    <link rel=stylesheet href=style.css><h1>hello</h1>\
    <script>document.title = 'h1 is ' + \
    getComputedStyle(document.querySelector('h1')).color</script>\n";
