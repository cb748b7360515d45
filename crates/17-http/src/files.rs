//! From a request's target to a file inside the served directory, and
//! the file's `Content-Type`. No socket call here.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// What a target leads to.
pub enum Found {
    /// A file inside the directory: its `Content-Type`, its bytes, and
    /// when it was last modified (seconds since 1970, UTC), if known.
    File(&'static str, Vec<u8>, Option<u64>),
    /// Not there (404), or outside the directory (403), or a target that
    /// does not decode (400).
    Status(u16),
}

// ANCHOR: decode
/// `%2e` is `.`: the bytes a target spells in percent-encoding (RFC 3986
/// 2.1). `None` for a `%` not followed by two hex digits, or bytes that
/// are not UTF-8 or hold a NUL.
pub fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
        out.push(u8::from_str_radix(hex, 16).ok()?);
        i += 3;
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0')).then_some(text)
}
// ANCHOR_END: decode

// ANCHOR: resolve
/// The file a target names under `root` (itself canonical). Decoded
/// first, so `%2e%2e` is `..`; a `..` segment is refused outright. A
/// symlink inside may still point out: the canonical path (every link
/// followed, `man 3 realpath`) must start with the root's.
pub fn resolve(root: &Path, target: &str) -> Found {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let Some(path) = percent_decode(path) else { return Found::Status(400) };
    let mut file = PathBuf::from(root);
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Found::Status(403),
            name => file.push(name),
        }
    }
    if path.ends_with('/') || file.is_dir() {
        file.push("index.html");
    }
    let Ok(real) = file.canonicalize() else { return Found::Status(404) };
    if !real.starts_with(root) {
        return Found::Status(403);
    }
    let Ok(mut file) = fs::File::open(&real) else {
        return Found::Status(404);
    };
    // Its modification time, for `Last-Modified` and `If-Modified-Since`.
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    let modified = modified
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    let mut bytes = Vec::new();
    match file.read_to_end(&mut bytes) {
        Ok(_) => Found::File(content_type(&real), bytes, modified),
        Err(_) => Found::Status(404),
    }
}
// ANCHOR_END: resolve

/// A file's `Content-Type`, by its extension: a browser renders or runs
/// a file by this, not by its name.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match extension.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_decodes_and_bad_escapes_are_refused() {
        assert_eq!(percent_decode("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(percent_decode("/%2e%2E/x").as_deref(), Some("/../x"));
        assert_eq!(percent_decode("/%zz"), None);
        assert_eq!(percent_decode("/%2"), None);
        assert_eq!(percent_decode("/%00"), None);
        assert_eq!(percent_decode("/%ff"), None);
    }
}
