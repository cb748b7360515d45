//! Arguments, as a transcript prints them and as strace does, reduced to
//! comparable atoms, so the kernel check can demand that every argument a
//! narration shows is one the kernel received.
//!
//! A narrated argument list such as `[fd 3 POLLIN, fd 4 POLLIN], 2, -1` or
//! `SO_RCVTIMEO, 10 s` becomes atoms (`3`, `POLLIN`, `4`, `POLLIN`, `2`,
//! `-1`; `SO_RCVTIMEO`, 10 s); strace's record of the same call becomes the
//! atoms of its arguments (a socket address is `127.0.0.1:8001`, a
//! `timeval` a duration, `SO_RCVTIMEO_OLD` also `SO_RCVTIMEO`). Each
//! narrated atom must find one of its own among the kernel's. What the
//! narration leaves out is not compared; words are labels or commentary
//! (`fd`, `bytes`, `the rest`) and are not compared either.

use std::fmt::{self, Display};

/// One comparable piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    /// A number: a backlog, a byte count, an option's value, a descriptor
    /// inside a list.
    Num(i64),
    /// A constant's name: `AF_INET`, `SOCK_CLOEXEC`, `MSG_NOSIGNAL`.
    Name(String),
    /// Bytes, and whether what was shown stopped short (`"..."...`).
    Bytes(Vec<u8>, bool),
    /// A socket address, `127.0.0.1:8001` or `[::1]:8001`.
    Addr(String),
    /// A duration, in milliseconds (`10 s`, `100 ms`, a `timeval`).
    Millis(i64),
    /// At most this many (milliseconds, for a timeout the demo computes:
    /// `≤10000`, `at most 8000 ms`).
    AtMost(i64),
}

impl Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Num(n) => write!(f, "{n}"),
            Atom::Name(name) => f.write_str(name),
            Atom::Bytes(bytes, cut) => {
                let dots = if *cut { "..." } else { "" };
                write!(f, "{}{dots}", crate::bytes(bytes))
            }
            Atom::Addr(addr) => f.write_str(addr),
            Atom::Millis(ms) => write!(f, "{ms} ms"),
            Atom::AtMost(n) => write!(f, "≤{n}"),
        }
    }
}

impl Atom {
    /// Whether this narrated atom is shown by the kernel's atom `kernel`.
    fn shown_by(&self, kernel: &Atom) -> bool {
        match (self, kernel) {
            (Atom::Num(a), Atom::Num(b)) => a == b,
            // Signal sets: strace writes [INT TERM] for [SIGINT SIGTERM];
            // and some constants share a number, which strace names its way.
            (Atom::Name(a), Atom::Name(b)) => {
                a == b
                    || a.strip_prefix("SIG") == Some(b.as_str())
                    || SAME_NUMBER.contains(&(a.as_str(), b.as_str()))
            }
            (Atom::Bytes(a, a_cut), Atom::Bytes(b, b_cut)) => {
                match (a_cut, b_cut) {
                    (false, false) => a == b,
                    (true, false) => b.starts_with(a),
                    (false, true) => a.starts_with(b),
                    (true, true) => {
                        let n = a.len().min(b.len());
                        a[..n] == b[..n]
                    }
                }
            }
            (Atom::Addr(a), Atom::Addr(b)) => a == b,
            (Atom::Millis(a), Atom::Millis(b)) => a == b,
            // A timeout in milliseconds (poll), or in seconds (SO_LINGER,
            // TCP_KEEPIDLE).
            (Atom::Millis(ms), Atom::Num(n)) => {
                ms == n || (ms % 1000 == 0 && ms / 1000 == *n)
            }
            (Atom::AtMost(max), Atom::Num(n) | Atom::Millis(n)) => {
                (0..=*max).contains(n)
            }
            _ => false,
        }
    }
}

/// Constants with one number and two names, as (the narration's, strace's):
/// `ioctl`'s socket queue requests are the terminal ones (`man 7 tcp`
/// says `SIOCINQ` is the same as `FIONREAD`).
const SAME_NUMBER: &[(&str, &str)] =
    &[("SIOCOUTQ", "TIOCOUTQ"), ("SIOCINQ", "FIONREAD")];

/// The narrated atoms that the kernel's atoms do not show, each kernel atom
/// standing for at most one narrated atom.
pub fn unmatched(narrated: &[Atom], kernel: &[Atom]) -> Vec<Atom> {
    let mut left: Vec<&Atom> = kernel.iter().collect();
    let mut missing = Vec::new();
    for atom in narrated {
        match left.iter().position(|k| atom.shown_by(k)) {
            Some(i) => {
                left.remove(i);
            }
            None => missing.push(atom.clone()),
        }
    }
    missing
}

/// Words a narration uses as labels, which stand for nothing the kernel
/// is given: `fd 3`, `1048576 bytes`, `events 0`, `at most`, `{on, 0 s}`.
const LABELS: &[&str] =
    &["fd", "bytes", "events", "at", "most", "on", "off", "s", "ms"];

/// The atoms of a narrated argument list (what follows the descriptor).
pub fn narrated(args: &str) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for piece in leaves(args) {
        let bare = without_v6_addresses(&piece);
        let words: Vec<&str> = words_outside_strings(&bare);
        let prose = words.iter().any(|w| {
            w.chars().any(|c| c.is_ascii_lowercase()) && !LABELS.contains(w)
        });
        if !prose {
            narrated_piece(&piece, &mut atoms);
        }
    }
    atoms
}

fn narrated_piece(piece: &str, atoms: &mut Vec<Atom>) {
    let tokens = tokens(piece);
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let next = tokens.get(i + 1).map(String::as_str);
        if let Some(atom) = string_atom(token) {
            atoms.push(atom);
        } else if token == "at" && next == Some("most") {
            // `at most 8000 ms`: the bound, whatever unit follows.
            if let Some(n) = tokens.get(i + 2).and_then(|t| t.parse().ok()) {
                atoms.push(Atom::AtMost(n));
            }
            i += 3;
            continue;
        } else if let Some(n) = token.strip_prefix('≤') {
            if let Ok(n) = n.parse() {
                atoms.push(Atom::AtMost(n));
            }
        } else if let Some(atom) = address(token) {
            atoms.push(atom);
        } else if let Some(ms) = token.strip_suffix("ms") {
            if let Ok(ms) = ms.parse() {
                atoms.push(Atom::Millis(ms));
            }
        } else if let Ok(n) = token.parse::<i64>() {
            match next {
                Some("s") => atoms.push(Atom::Millis(n * 1000)),
                Some("ms") => atoms.push(Atom::Millis(n)),
                _ => atoms.push(Atom::Num(n)),
            }
        } else if is_name(token) && token.len() > 1 {
            // A lone capital (`N` in `1048576 - N`) is a placeholder.
            atoms.push(Atom::Name(token.clone()));
        }
        i += 1;
    }
}

/// The atoms of strace's arguments for call `name`, all but the first
/// when that is the descriptor the call acts on (compared already).
pub fn traced(name: &str, args: &[String], skip_first: bool) -> Vec<Atom> {
    let mut atoms = Vec::new();
    let timeval_option = name == "setsockopt"
        && args.get(2).is_some_and(|o| o.contains("TIMEO"));
    for (i, arg) in args.iter().enumerate() {
        if i == 0 && skip_first {
            continue;
        }
        // SO_RCVTIMEO_OLD's struct timeval, which strace prints as raw
        // bytes: seconds, then microseconds, each 8 bytes little-endian.
        if timeval_option
            && i == 3
            && let Some(Atom::Bytes(raw, false)) = string_atom(arg)
            && raw.len() == 16
        {
            let word = |at: usize| {
                i64::from_le_bytes(raw[at..at + 8].try_into().unwrap())
            };
            atoms.push(Atom::Millis(word(0) * 1000 + word(8) / 1000));
            continue;
        }
        if let Some(addr) = sockaddr(arg) {
            atoms.push(addr);
        }
        if let (Some(sec), Some(usec)) =
            (field(arg, "tv_sec"), field(arg, "tv_usec"))
        {
            atoms.push(Atom::Millis(sec * 1000 + usec / 1000));
        }
        for token in tokens(arg) {
            if let Some(atom) = string_atom(&token) {
                atoms.push(atom);
                continue;
            }
            // `sin_port=htons(8001)`, `data={u32=5, u64=5}`: the value.
            let value = token.rsplit('=').next().unwrap_or(&token);
            if let Some(n) = number(value) {
                atoms.push(Atom::Num(n));
            } else if is_name(value) {
                atoms.push(Atom::Name(value.to_string()));
                // SO_RCVTIMEO_OLD is SO_RCVTIMEO with a 64-bit-safe layout.
                if let Some(base) = value.strip_suffix("_OLD") {
                    atoms.push(Atom::Name(base.to_string()));
                }
            }
        }
    }
    atoms
}

/// `{sa_family=AF_INET, sin_port=htons(8001), sin_addr=inet_addr("1.2.3.4")}`
/// or its AF_INET6 form, as `1.2.3.4:8001` / `[::1]:8001`.
fn sockaddr(arg: &str) -> Option<Atom> {
    let port = arg.split("_port=htons(").nth(1)?.split(')').next()?;
    let quoted = |after: &str| -> Option<String> {
        Some(arg.split(after).nth(1)?.split('"').next()?.to_string())
    };
    if arg.contains("AF_INET6") {
        let ip = quoted("inet_pton(AF_INET6, \"")?;
        Some(Atom::Addr(format!("[{ip}]:{port}")))
    } else {
        let ip = quoted("inet_addr(\"")?;
        Some(Atom::Addr(format!("{ip}:{port}")))
    }
}

/// The number after `name=` in a struct strace printed.
fn field(arg: &str, name: &str) -> Option<i64> {
    let rest = arg.split(&format!("{name}=")).nth(1)?;
    let end = rest.find([',', '}', ' ']).unwrap_or(rest.len());
    number(&rest[..end])
}

fn number(text: &str) -> Option<i64> {
    match text.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn is_name(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_uppercase())
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn address(token: &str) -> Option<Atom> {
    let (host, port) = token.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let v4 = host.split('.').count() == 4
        && host.split('.').all(|p| p.parse::<u8>().is_ok());
    let v6 = host.starts_with('[') && host.ends_with(']');
    (v4 || v6).then(|| Atom::Addr(token.to_string()))
}

/// The length of the IPv6 socket address that `text` starts with,
/// `[::1]:8001` or `[::ffff:127.0.0.1]:8016`, if it starts with one: the
/// splitters keep it whole, since its brackets group nothing.
fn v6_address_len(text: &str) -> Option<usize> {
    let rest = text.strip_prefix('[')?;
    let close = rest.find(']')?;
    let host = &rest[..close];
    let is_host = host.contains(':')
        && host.chars().all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    let port = rest[close + 1..].strip_prefix(':')?;
    let digits = port.chars().take_while(char::is_ascii_digit).count();
    (is_host && digits > 0).then_some(1 + close + 2 + digits)
}

/// `piece` without its IPv6 socket addresses, whose hex digits (`ffff`)
/// are not words of commentary.
fn without_v6_addresses(piece: &str) -> String {
    let mut bare = String::new();
    let mut at = 0;
    while let Some(c) = piece[at..].chars().next() {
        match v6_address_len(&piece[at..]) {
            Some(n) if c == '[' => at += n,
            _ => {
                bare.push(c);
                at += c.len_utf8();
            }
        }
    }
    bare
}

/// A quoted string, `"..."` or `"..."...`, as the bytes it stands for.
/// Both escape styles are read: strace's octal (`\303`, `\0`) and the
/// transcript's hex (`\xc3`).
fn string_atom(token: &str) -> Option<Atom> {
    let (body, cut) = match token.strip_suffix("...") {
        Some(body) => (body, true),
        None => (token, false),
    };
    let body = body.strip_prefix('"')?.strip_suffix('"')?;
    let mut bytes = Vec::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            'n' => bytes.push(b'\n'),
            'r' => bytes.push(b'\r'),
            't' => bytes.push(b'\t'),
            'v' => bytes.push(0x0b),
            'f' => bytes.push(0x0c),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            d @ '0'..='7' => {
                let mut value = d.to_digit(8)?;
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                bytes.push(u8::try_from(value).ok()?);
            }
            other => bytes.push(u8::try_from(other).ok()?),
        }
    }
    Some(Atom::Bytes(bytes, cut))
}

/// The innermost pieces of an argument list: split at commas outside
/// strings, and at the brackets and braces that group pieces.
fn leaves(args: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut skip = 0;
    for (i, c) in args.char_indices() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if !in_string && let Some(n) = v6_address_len(&args[i..]) {
            current.push_str(&args[i..i + n]);
            skip = n - 1;
            continue;
        }
        if in_string {
            current.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                current.push(c);
            }
            ',' | '[' | ']' | '{' | '}' | '(' | ')' => {
                pieces.push(std::mem::take(&mut current));
            }
            _ => current.push(c),
        }
    }
    pieces.push(current);
    pieces
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// A piece's tokens: strings whole (with a trailing `...`), the rest split
/// at spaces, brackets, commas, `|` and parentheses.
fn tokens(piece: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = piece.chars().peekable();
    let flush = |current: &mut String, tokens: &mut Vec<String>| {
        if !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
    };
    while let Some(c) = chars.next() {
        // `[::1]:8001` is one token: its brackets do not group anything.
        if c == '[' {
            let rest: String =
                std::iter::once(c).chain(chars.clone()).collect();
            if let Some(n) = v6_address_len(&rest) {
                current.push_str(&rest[..n]);
                for _ in 1..n {
                    chars.next();
                }
                continue;
            }
        }
        match c {
            '"' => {
                flush(&mut current, &mut tokens);
                let mut s = String::from('"');
                let mut escaped = false;
                for c in chars.by_ref() {
                    s.push(c);
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => break,
                        _ => {}
                    }
                }
                while chars.peek() == Some(&'.') {
                    s.push('.');
                    chars.next();
                }
                tokens.push(s);
            }
            ' ' | ',' | '|' | '[' | ']' | '{' | '}' | '(' | ')' => {
                flush(&mut current, &mut tokens);
            }
            _ => current.push(c),
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

/// The words of a piece outside its strings: what says whether it is
/// commentary.
fn words_outside_strings(piece: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut in_string = false;
    let mut start = None;
    for (i, c) in piece.char_indices() {
        if c == '"' {
            in_string = !in_string;
        }
        let word_char = !in_string && (c.is_ascii_alphanumeric() || c == '_');
        match (word_char, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push(&piece[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(&piece[s..]);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strace(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn a_narrated_backlog_must_be_the_one_listen_got() {
        let kernel = traced("listen", &strace(&["3", "6"]), true);
        assert_eq!(unmatched(&narrated("6"), &kernel), vec![]);
        assert_eq!(unmatched(&narrated("5"), &kernel), vec![Atom::Num(5)]);
    }

    #[test]
    fn a_receive_timeout_is_read_from_the_raw_timeval() {
        let args = strace(&[
            "5",
            "SOL_SOCKET",
            "SO_RCVTIMEO_OLD",
            r#""\0\0\0\0\0\0\0\0\240\206\1\0\0\0\0\0""#,
            "16",
        ]);
        let kernel = traced("setsockopt", &args, true);
        let shown = narrated("SO_RCVTIMEO, 100 ms");
        assert_eq!(unmatched(&shown, &kernel), vec![]);
        let wrong = narrated("SO_RCVTIMEO, 10 s");
        assert_eq!(unmatched(&wrong, &kernel), vec![Atom::Millis(10_000)]);
    }

    #[test]
    fn addresses_flags_strings_and_lists_are_compared() {
        let bind = strace(&[
            "3",
            r#"{sa_family=AF_INET, sin_port=htons(0), sin_addr=inet_addr("127.0.0.1")}"#,
            "16",
        ]);
        let kernel = traced("bind", &bind, true);
        assert!(unmatched(&narrated("127.0.0.1:0"), &kernel).is_empty());
        assert!(!unmatched(&narrated("127.0.0.1:1"), &kernel).is_empty());

        let socket =
            strace(&["AF_INET", "SOCK_STREAM|SOCK_CLOEXEC", "IPPROTO_IP"]);
        let kernel = traced("socket", &socket, false);
        assert!(
            unmatched(&narrated("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"), &kernel)
                .is_empty()
        );
        assert!(
            !unmatched(
                &narrated("AF_INET, SOCK_STREAM|SOCK_NONBLOCK"),
                &kernel
            )
            .is_empty()
        );

        let send = strace(&[
            "4",
            r#""hello\0\303""#,
            "7",
            "MSG_NOSIGNAL",
            "NULL",
            "0",
        ]);
        let kernel = traced("sendto", &send, true);
        assert!(
            unmatched(&narrated(r#""hello\x00\xc3", MSG_NOSIGNAL"#), &kernel)
                .is_empty()
        );
        assert!(
            !unmatched(&narrated(r#""hellO", MSG_NOSIGNAL"#), &kernel)
                .is_empty()
        );

        let poll = strace(&[
            "[{fd=3, events=POLLIN}, {fd=7, events=POLLIN|POLLOUT}]",
            "2",
            "9999",
        ]);
        let kernel = traced("poll", &poll, false);
        let shown = narrated("[fd 3 POLLIN, fd 7 POLLIN|POLLOUT], 2, ≤10000");
        assert!(unmatched(&shown, &kernel).is_empty());
        let wrong = narrated("[fd 3 POLLIN, fd 7 POLLIN], 2, ≤100");
        assert_eq!(unmatched(&wrong, &kernel), vec![Atom::AtMost(100)]);
    }

    #[test]
    fn a_socket_ioctl_is_known_by_strace_by_its_terminal_name() {
        let kernel = traced("ioctl", &strace(&["9", "TIOCOUTQ", "[0]"]), true);
        assert!(unmatched(&narrated("SIOCOUTQ"), &kernel).is_empty());
        assert!(!unmatched(&narrated("SIOCINQ"), &kernel).is_empty());
    }

    #[test]
    fn commentary_is_not_compared_but_labelled_values_are() {
        assert_eq!(
            narrated("the rest, MSG_NOSIGNAL"),
            vec![Atom::Name("MSG_NOSIGNAL".into())]
        );
        assert_eq!(narrated("1048576 bytes"), vec![Atom::Num(1048576)]);
        assert_eq!(narrated("SO_LINGER, {on, 0 s}")[1], Atom::Millis(0));
        assert_eq!(
            narrated("time left, at most 300 ms"),
            vec![Atom::AtMost(300)]
        );
        assert_eq!(
            narrated(r#""/proc/self/fd/3""#),
            vec![Atom::Bytes(b"/proc/self/fd/3".to_vec(), false)]
        );
    }
}

#[cfg(test)]
mod ipv6_tests {
    use super::*;

    /// strace's record of a bind to `ip` port `port`, AF_INET6.
    fn bind6(ip: &str, port: u16) -> Vec<Atom> {
        let addr = format!(
            "{{sa_family=AF_INET6, sin6_port=htons({port}), \
             sin6_flowinfo=htonl(0), inet_pton(AF_INET6, \"{ip}\", \
             &sin6_addr), sin6_scope_id=0}}"
        );
        traced("bind", &["3".to_string(), addr, "28".to_string()], true)
    }

    #[test]
    fn ipv6_addresses_are_compared() {
        assert_eq!(narrated("[::1]:0"), vec![Atom::Addr("[::1]:0".into())]);
        assert!(unmatched(&narrated("[::1]:0"), &bind6("::1", 0)).is_empty());
        assert!(!unmatched(&narrated("[::1]:1"), &bind6("::1", 0)).is_empty());
        assert!(!unmatched(&narrated("[::]:0"), &bind6("::1", 0)).is_empty());
        let mapped = "[::ffff:127.0.0.1]:8016";
        assert_eq!(narrated(mapped), vec![Atom::Addr(mapped.into())]);
        let kernel = bind6("::ffff:127.0.0.1", 8016);
        assert!(unmatched(&narrated(mapped), &kernel).is_empty());
        assert!(!unmatched(&narrated("127.0.0.1:8016"), &kernel).is_empty());
    }
}
