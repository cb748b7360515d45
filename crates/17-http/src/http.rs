//! HTTP/1.1's framing (RFC 9112): a request's head, parsed with limits,
//! and a response's head. No socket call here: bytes in, bytes out.

use std::fmt::Write;

use transcript::calendar::{civil_from_days, days_from_civil};

/// The longest request line taken; a longer one is answered 414.
pub const MAX_REQUEST_LINE: usize = 2048;

/// The most header lines taken; more are answered 431.
pub const MAX_HEADERS: usize = 64;

/// The largest head taken (request line and headers); larger is 431.
pub const MAX_HEAD: usize = 8192;

/// A request's head, as far as this server needs it.
pub struct Request {
    pub method: String,
    /// The target as sent: `/lesson-17.html?x`, still percent-encoded.
    pub target: String,
    /// Whether the client keeps the connection for another request.
    pub keep_alive: bool,
    /// `If-Modified-Since`, as seconds since 1970, when it is a date this
    /// server reads (RFC 9110 13.1.3: any other value is ignored).
    pub if_modified_since: Option<u64>,
}

// ANCHOR: parsed
/// What the bytes received so far hold.
pub enum Parsed {
    /// No whole head yet: wait for more bytes.
    Partial,
    /// A whole head, and how many bytes of the buffer it took.
    Request(Request, usize),
    /// A head this server refuses: the status to answer, then close.
    Refused(u16),
}
// ANCHOR_END: parsed

// ANCHOR: parse
/// Looks for a whole head at the start of `buf`: lines ending in CRLF
/// (a bare LF is taken too, as from `nc`), up to an empty line. Every
/// limit is checked before the end is found, so a client cannot make the
/// buffer grow past `MAX_HEAD` by never ending its head.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut lines = Vec::new();
    let mut start = 0;
    while let Some(end) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = trim_cr(&buf[start..start + end]);
        start += end + 1;
        if line.is_empty() && lines.is_empty() {
            // RFC 9112 2.2: ignore empty lines before a request line.
            continue;
        }
        if line.is_empty() {
            return match request(&lines) {
                Ok(request) => Parsed::Request(request, start),
                Err(status) => Parsed::Refused(status),
            };
        }
        lines.push(line);
        if let Some(status) = over_a_limit(&lines, start) {
            return Parsed::Refused(status);
        }
    }
    let unfinished = buf.len() - start;
    match lines.is_empty() {
        true if unfinished > MAX_REQUEST_LINE => Parsed::Refused(414),
        _ if buf.len() > MAX_HEAD => Parsed::Refused(431),
        _ => Parsed::Partial,
    }
}
// ANCHOR_END: parse

/// `414` for a request line too long, `431` for too many or too large
/// headers (RFC 6585).
fn over_a_limit(lines: &[&[u8]], taken: usize) -> Option<u16> {
    if lines.len() == 1 && lines[0].len() > MAX_REQUEST_LINE {
        return Some(414);
    }
    if lines.len() > MAX_HEADERS + 1 || taken > MAX_HEAD {
        return Some(431);
    }
    None
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

// ANCHOR: request
/// The request line, `GET /path HTTP/1.1`, and the headers this server
/// reads: `Connection`, and those that announce a body it cannot take.
fn request(lines: &[&[u8]]) -> Result<Request, u16> {
    let first = std::str::from_utf8(lines[0]).map_err(|_| 400u16)?;
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(400),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(400);
    }
    let mut if_modified_since = None;
    for line in &lines[1..] {
        let text = std::str::from_utf8(line).map_err(|_| 400u16)?;
        let (name, value) = text.split_once(':').ok_or(400u16)?;
        let value = value.trim().to_ascii_lowercase();
        match name.to_ascii_lowercase().as_str() {
            "connection" if value == "close" => keep_alive = false,
            "connection" if value == "keep-alive" => keep_alive = true,
            // A body would follow the head: refused rather than read as
            // the next request (request smuggling).
            "transfer-encoding" => return Err(400),
            "content-length" if value != "0" => return Err(400),
            "if-modified-since" => if_modified_since = parse_date(&value),
            _ => {}
        }
    }
    let (method, target) = (method.to_string(), target.to_string());
    Ok(Request { method, target, keep_alive, if_modified_since })
}
// ANCHOR_END: request

/// The reason phrase of each status this server answers.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

// ANCHOR: head
/// A response's head. `Content-Length` says where the body ends, so the
/// connection can carry the next response; `Connection: close` says it
/// will not. A file's head says when it was last `modified` (seconds
/// since 1970), which a client may send back in `If-Modified-Since`.
pub fn head(
    status: u16,
    kind: &str,
    length: usize,
    modified: Option<u64>,
    close: bool,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    let _ = write!(head, "Content-Type: {kind}\r\n");
    let _ = write!(head, "Content-Length: {length}\r\n");
    last_modified(&mut head, modified);
    if status == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}
// ANCHOR_END: head

/// `Last-Modified`'s line, for a file modified at `secs` (since 1970).
fn last_modified(head: &mut String, modified: Option<u64>) {
    if let Some(secs) = modified {
        let _ = write!(head, "Last-Modified: {}\r\n", http_date(secs));
    }
}

// ANCHOR: not_modified
/// `304 Not Modified`: the client's copy is current. No body, and so no
/// `Content-Length` either (RFC 9110 15.4.5): the head is all there is.
pub fn not_modified(modified: Option<u64>, close: bool) -> Vec<u8> {
    let mut head = String::from("HTTP/1.1 304 Not Modified\r\n");
    last_modified(&mut head, modified);
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}
// ANCHOR_END: not_modified

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
    "Nov", "Dec",
];

/// An HTTP date, IMF-fixdate (RFC 9110 5.6.7): `Sun, 06 Dec 2026
/// 04:41:04 GMT`, always 29 bytes.
pub fn http_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let time = secs % 86_400;
    format!(
        "{}, {day:02} {} {year:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// Seconds since 1970 of an IMF-fixdate, in any case (headers reach
/// `request` lowercased); `None` for anything else, including the two
/// obsolete formats, which only ancient clients send.
pub fn parse_date(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))?;
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':').map(|n| n.parse::<u64>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (clock.next(), clock.next(), clock.next(), clock.next())
    else {
        return None;
    };
    if !parts.next()?.eq_ignore_ascii_case("gmt") || parts.next().is_some() {
        return None;
    }
    // The year bounded too: the arithmetic below must not overflow.
    let in_range = (1..=31).contains(&day) && (1970..=9999).contains(&year);
    if !in_range || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month as u32 + 1, day as u32);
    let secs = days * 86_400 + (h * 3600 + m * 60 + s) as i64;
    u64::try_from(secs).ok()
}

/// A short page for an error status, and its head.
pub fn error(status: u16, close: bool, with_body: bool) -> Vec<u8> {
    let body = format!("{status} {}\n", reason(status));
    let kind = "text/plain; charset=utf-8";
    let mut out = head(status, kind, body.len(), None, close);
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(buf: &[u8]) -> Option<u16> {
        match parse(buf) {
            Parsed::Refused(status) => Some(status),
            _ => None,
        }
    }

    #[test]
    fn a_head_is_parsed_and_its_length_returned() {
        let buf = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b";
        let Parsed::Request(r, used) = parse(buf) else { panic!() };
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/a"));
        assert!(r.keep_alive);
        assert_eq!(used, buf.len() - 6);
        assert!(matches!(parse(&buf[used..]), Parsed::Partial));
    }

    #[test]
    fn http_dates_are_imf_fixdates_and_read_back() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110's own example.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        for secs in [0, 784_111_777, 951_782_400, 1_796_531_264, 4_102_444_799]
        {
            let date = http_date(secs);
            assert_eq!(parse_date(&date), Some(secs), "{date}");
            assert_eq!(parse_date(&date.to_ascii_lowercase()), Some(secs));
        }
        assert_eq!(parse_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_date("Sun Nov  6 08:49:37 1994"), None);
        assert_eq!(parse_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
        assert_eq!(parse_date("yesterday"), None);
        // A hostile date overflows nothing.
        let huge = "Sun, 06 Nov 99999999999999999 08:49:37 GMT";
        assert_eq!(parse_date(huge), None);
        assert_eq!(
            parse_date("Sun, 06 Nov -9223372036854775808 0:0:0 GMT"),
            None
        );
    }

    #[test]
    fn if_modified_since_is_read_and_a_bad_date_ignored() {
        let with = |value: &str| {
            let head =
                format!("GET / HTTP/1.1\r\nIf-Modified-Since: {value}\r\n\r\n");
            match parse(head.as_bytes()) {
                Parsed::Request(r, _) => r.if_modified_since,
                _ => panic!("{head}"),
            }
        };
        assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(with("not a date"), None);
    }

    #[test]
    fn limits_are_answered_with_their_status() {
        assert_eq!(status(b"GET\r\n\r\n"), Some(400));
        assert_eq!(status(b"GET / HTTP/2\r\n\r\n"), Some(400));
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(3000));
        assert_eq!(status(long.as_bytes()), Some(414));
        assert_eq!(status(&[b'a'; 3000]), Some(414));
        let many = format!("GET / HTTP/1.1\r\n{}", "X: y\r\n".repeat(65));
        assert_eq!(status(many.as_bytes()), Some(431));
        let big = format!("GET / HTTP/1.1\r\nX: {}", "y".repeat(9000));
        assert_eq!(status(big.as_bytes()), Some(431));
        assert_eq!(
            status(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
            Some(400)
        );
    }

    #[test]
    fn http_1_0_closes_unless_asked() {
        let Parsed::Request(r, _) = parse(b"GET / HTTP/1.0\r\n\r\n") else {
            panic!()
        };
        assert!(!r.keep_alive);
        let buf = b"GET / HTTP/1.1\nConnection: close\n\n";
        let Parsed::Request(r, _) = parse(buf) else { panic!() };
        assert!(!r.keep_alive);
    }
}
