//! The course's exercises. Each one is three files of the same name:
//!
//! - `src/yours/NAME.rs`: the reader's file. It compiles, and its check
//!   fails until the reader writes the socket code it asks for;
//! - `src/solutions/NAME.rs`: a solution, which the book shows by anchor;
//! - `src/checks/NAME.rs`: the check, which runs either version against
//!   real peers on 127.0.0.1, port 0, bounded in time, and says in a
//!   sentence what it expected and what happened. Where the exercise is a
//!   program (a server, mostly), the check starts it as a process of its
//!   own (this binary with `run ID`, which calls the reader's function and
//!   prints `Listening on ADDR`), and talks to it from outside with Python
//!   clients (`peers/peers.py`) or `nc`; where it is a function over a
//!   socket the check owns, the check calls it in a thread.
//!
//! `just check N` runs lesson N's checks on the reader's files, each in a
//! process of its own, `just check` shows the progress over the course,
//! `just hint N` prints a hint; `cargo test` checks the solutions
//! (tests/solutions.rs).

pub mod harness;

use harness::Which;

mod checks {
    pub mod l01_sockets;
    pub mod l02_upper;
    pub mod l03_greet;
    pub mod l04_send_all;
    pub mod l05_read_frame;
    pub mod l06_half_close;
    pub mod l07_in_use;
    pub mod l08_queue;
    pub mod l09_deadline;
    pub mod l10_limit;
    pub mod l11_shutdown;
    pub mod l12_chat;
    pub mod l13_edge;
    pub mod l14_once;
    pub mod l15_peer;
    pub mod l16_every;
    pub mod l17_keep_alive;
    pub mod l18_count;
}

/// The reader's files.
pub mod yours {
    pub mod l01_sockets;
    pub mod l02_upper;
    pub mod l03_greet;
    pub mod l04_send_all;
    pub mod l05_read_frame;
    pub mod l06_half_close;
    pub mod l07_in_use;
    pub mod l08_queue;
    pub mod l09_deadline;
    pub mod l10_limit;
    pub mod l11_shutdown;
    pub mod l12_chat;
    pub mod l13_edge;
    pub mod l14_once;
    pub mod l15_peer;
    pub mod l16_every;
    pub mod l17_keep_alive;
    pub mod l18_count;
}

/// The solutions.
pub mod solutions {
    pub mod l01_sockets;
    pub mod l02_upper;
    pub mod l03_greet;
    pub mod l04_send_all;
    pub mod l05_read_frame;
    pub mod l06_half_close;
    pub mod l07_in_use;
    pub mod l08_queue;
    pub mod l09_deadline;
    pub mod l10_limit;
    pub mod l11_shutdown;
    pub mod l12_chat;
    pub mod l13_edge;
    pub mod l14_once;
    pub mod l15_peer;
    pub mod l16_every;
    pub mod l17_keep_alive;
    pub mod l18_count;
}

/// One exercise: where it is, what it asks, and its check run on either
/// version.
pub struct Exercise {
    /// Its name in messages and tests: the lesson's number, with a letter
    /// for a second one (`5b`).
    pub id: &'static str,
    /// The lesson it practises: what `just check N` takes.
    pub lesson: u8,
    /// The chapter whose "Exercise" section states it.
    pub chapter: &'static str,
    /// What the code must do, in a line.
    pub title: &'static str,
    /// The file the reader edits, from the repository's root.
    pub file: &'static str,
    /// That file as it is now (compiled in, so it is the version checked).
    pub source: &'static str,
    /// The fingerprint of that file as the course ships it: the same
    /// fingerprint now means the reader has not started.
    pub start: u64,
    /// A first pointer, which `just hint N` prints.
    pub hint: &'static str,
    /// The check, run on the reader's file.
    pub yours: fn() -> Result<(), String>,
    /// The check, run on the solution.
    pub solution: fn() -> Result<(), String>,
}

/// Every exercise, in course order.
pub const EXERCISES: &[Exercise] = &[
    Exercise {
        id: "2",
        lesson: 2,
        chapter: "book/src/lesson-02.md",
        title: "a server that answers in upper case and tells each client \
                its address",
        file: "crates/exercises/src/yours/l02_upper.rs",
        source: include_str!("yours/l02_upper.rs"),
        start: 0x98ef2be288ada8a4,
        hint: "accept returns the client's address with its socket; send \
               it before the loop, and make_ascii_uppercase each chunk",
        yours: || checks::l02_upper::check(Which::Yours),
        solution: || checks::l02_upper::check(Which::Solution),
    },
    Exercise {
        id: "4",
        lesson: 4,
        chapter: "book/src/lesson-04.md",
        title: "send_all through a tiny send buffer",
        file: "crates/exercises/src/yours/l04_send_all.rs",
        source: include_str!("yours/l04_send_all.rs"),
        start: 0x33e2d3245f4e0411,
        hint: "loop until every byte is taken, advancing by what write \
               returns; on WouldBlock, poll for POLLOUT (lesson 4's \
               wait_for_room)",
        yours: || checks::l04_send_all::check(yours::l04_send_all::send_all),
        solution: || {
            checks::l04_send_all::check(solutions::l04_send_all::send_all)
        },
    },
    Exercise {
        id: "5",
        lesson: 5,
        chapter: "book/src/lesson-05.md",
        title: "a length-prefixed reader that refuses a frame over the \
                limit",
        file: "crates/exercises/src/yours/l05_read_frame.rs",
        source: include_str!("yours/l05_read_frame.rs"),
        start: 0x7de02b206767fcf9,
        hint: "read exactly 4 bytes, judge the length, then read exactly \
               that many; a read returns whatever has arrived, so each \
               exact read is a loop (or read_exact)",
        yours: || {
            checks::l05_read_frame::check(yours::l05_read_frame::read_frame)
        },
        solution: || {
            checks::l05_read_frame::check(solutions::l05_read_frame::read_frame)
        },
    },
    Exercise {
        id: "6",
        lesson: 6,
        chapter: "book/src/lesson-06.md",
        title: "a client that half-closes and still reads the answer",
        file: "crates/exercises/src/yours/l06_half_close.rs",
        source: include_str!("yours/l06_half_close.rs"),
        start: 0xba23a019af5ddd12,
        hint: "after the last write, shutdown(Shutdown::Write): the server \
               reads 0 bytes, and your socket can still receive",
        yours: || checks::l06_half_close::check(Which::Yours),
        solution: || checks::l06_half_close::check(Which::Solution),
    },
    Exercise {
        id: "7",
        lesson: 7,
        chapter: "book/src/lesson-07.md",
        title: "a listener that survives a restart and says clearly when \
                its address is in use",
        file: "crates/exercises/src/yours/l07_in_use.rs",
        source: include_str!("yours/l07_in_use.rs"),
        start: 0xa4ac185dfc67da47,
        hint: "set_reuse_address(true) before bind lets it past TIME_WAIT; \
               match the bind error's kind, AddrInUse, to write the line",
        yours: || checks::l07_in_use::check(Which::Yours),
        solution: || checks::l07_in_use::check(Which::Solution),
    },
    Exercise {
        id: "9",
        lesson: 9,
        chapter: "book/src/lesson-09.md",
        title: "a client with a deadline for the whole answer",
        file: "crates/exercises/src/yours/l09_deadline.rs",
        source: include_str!("yours/l09_deadline.rs"),
        start: 0x3f8d8da65a70a696,
        hint: "compute the deadline once; before each read, set the read \
               timeout to the time left, and fail with TimedOut when none \
               is",
        yours: || checks::l09_deadline::check(Which::Yours),
        solution: || checks::l09_deadline::check(Which::Solution),
    },
    Exercise {
        id: "10",
        lesson: 10,
        chapter: "book/src/lesson-10.md",
        title: "a thread per connection, and a limit on the connections",
        file: "crates/exercises/src/yours/l10_limit.rs",
        source: include_str!("yours/l10_limit.rs"),
        start: 0xd8a11709c8e872ee,
        hint: "share a counter, Arc<AtomicUsize>, between the accept loop and the threads: compare it with max before spawning, add 1 when a thread starts, and take 1 off when its client has gone; over the limit, write busy and drop the connection",
        yours: || checks::l10_limit::check(Which::Yours),
        solution: || checks::l10_limit::check(Which::Solution),
    },
    Exercise {
        id: "1",
        lesson: 1,
        chapter: "book/src/lesson-01.md",
        title: "list this process's sockets and their inodes",
        file: "crates/exercises/src/yours/l01_sockets.rs",
        source: include_str!("yours/l01_sockets.rs"),
        start: 0xb42fde0546922fb8,
        hint: "read_link each entry of /proc/self/fd: a socket's link reads socket:[N], where N is its inode; anything else is not a socket",
        yours: || checks::l01_sockets::check(yours::l01_sockets::sockets),
        solution: || {
            checks::l01_sockets::check(solutions::l01_sockets::sockets)
        },
    },
    Exercise {
        id: "3",
        lesson: 3,
        chapter: "book/src/lesson-03.md",
        title: "a std::net server that reads the whole line before it answers",
        file: "crates/exercises/src/yours/l03_greet.rs",
        source: include_str!("yours/l03_greet.rs"),
        start: 0x145c0d0f529f608f,
        hint: "BufReader::new(&conn).read_line reads until the newline has come, however many reads that takes; bound it with take",
        yours: || checks::l03_greet::check(Which::Yours),
        solution: || checks::l03_greet::check(Which::Solution),
    },
    Exercise {
        id: "8",
        lesson: 8,
        chapter: "book/src/lesson-08.md",
        title: "the accept queue of any listener, like ss -ltn's Recv-Q",
        file: "crates/exercises/src/yours/l08_queue.rs",
        source: include_str!("yours/l08_queue.rs"),
        start: 0x8c387a1b7ae8bdc7,
        hint: "in /proc/net/tcp, the local address is IP:PORT in hex, state 0A is LISTEN, and the fifth field is tx_queue:rx_queue in hex; rx_queue is the queue",
        yours: || checks::l08_queue::check(Which::Yours),
        solution: || checks::l08_queue::check(Which::Solution),
    },
    Exercise {
        id: "11",
        lesson: 11,
        chapter: "book/src/lesson-11.md",
        title: "a graceful shutdown: stop accepting, let the connected clients finish, return",
        file: "crates/exercises/src/yours/l11_shutdown.rs",
        source: include_str!("yours/l11_shutdown.rs"),
        start: 0xe33b389c40bd10be,
        hint: "nothing wakes a blocking accept but a connection: make the listener nonblocking and look at the flag between tries (sleep a little on WouldBlock); then drop the listener and join the threads",
        yours: || checks::l11_shutdown::check(Which::Yours),
        solution: || checks::l11_shutdown::check(Which::Solution),
    },
    Exercise {
        id: "12",
        lesson: 12,
        chapter: "book/src/lesson-12.md",
        title: "a chat server in one thread: a poll loop of your own",
        file: "crates/exercises/src/yours/l12_chat.rs",
        source: include_str!("yours/l12_chat.rs"),
        start: 0xd7aaef7c3150ec62,
        hint: "make every socket nonblocking, and each turn poll the listener and every client for POLLIN; accept until WouldBlock, read once from each ready client, and write each complete line to the others",
        yours: || checks::l12_chat::check(Which::Yours),
        solution: || checks::l12_chat::check(Which::Solution),
    },
    Exercise {
        id: "13",
        lesson: 13,
        chapter: "book/src/lesson-13.md",
        title: "an edge-triggered epoll loop that loses nothing",
        file: "crates/exercises/src/yours/l13_edge.rs",
        source: include_str!("yours/l13_edge.rs"),
        start: 0x65078fe50af1639b,
        hint: "with EPOLLET, read until the read fails with WouldBlock: a socket is reported again only when new bytes arrive, not while old ones are unread",
        yours: || checks::l13_edge::check(Which::Yours),
        solution: || checks::l13_edge::check(Which::Solution),
    },
    Exercise {
        id: "14",
        lesson: 14,
        chapter: "book/src/lesson-14.md",
        title: "a UDP server that does a retried request once",
        file: "crates/exercises/src/yours/l14_once.rs",
        source: include_str!("yours/l14_once.rs"),
        start: 0xeb463c1e90404306,
        hint: "keep a HashMap from the client's address to its last request's number and reply: a request with that number gets the stored reply and adds nothing",
        yours: || checks::l14_once::check(Which::Yours),
        solution: || checks::l14_once::check(Which::Solution),
    },
    Exercise {
        id: "15",
        lesson: 15,
        chapter: "book/src/lesson-15.md",
        title: "a Unix socket server that tells each client its pid and uid",
        file: "crates/exercises/src/yours/l15_peer.rs",
        source: include_str!("yours/l15_peer.rs"),
        start: 0x7d6ad7cf5a4afda8,
        hint: "the kernel recorded the client's pid and uid when it called connect: getsockopt(conn, sockopt::PeerCredentials), SO_PEERCRED, returns them",
        yours: || checks::l15_peer::check(Which::Yours),
        solution: || checks::l15_peer::check(Which::Solution),
    },
    Exercise {
        id: "16",
        lesson: 16,
        chapter: "book/src/lesson-16.md",
        title: "a client that tries every address, each for a bounded time",
        file: "crates/exercises/src/yours/l16_every.rs",
        source: include_str!("yours/l16_every.rs"),
        start: 0xf1380ff327098070,
        hint: "TcpStream::connect_timeout(addr, each) bounds one address's connect; keep the last error for when none connects",
        yours: || checks::l16_every::check(Which::Yours),
        solution: || checks::l16_every::check(Which::Solution),
    },
    Exercise {
        id: "17",
        lesson: 17,
        chapter: "book/src/lesson-17.md",
        title: "HTTP/1.1 keep-alive: pipelined requests answered in order",
        file: "crates/exercises/src/yours/l17_keep_alive.rs",
        source: include_str!("yours/l17_keep_alive.rs"),
        start: 0x9d4c0f604835453e,
        hint: "keep a buffer per connection: append what each read returns, answer every whole head in it, and drain only that head, so the next request's bytes stay for the next turn",
        yours: || checks::l17_keep_alive::check(Which::Yours),
        solution: || checks::l17_keep_alive::check(Which::Solution),
    },
    Exercise {
        id: "18",
        lesson: 18,
        chapter: "book/src/lesson-18.md",
        title: "count the segments of a conversation, each once",
        file: "crates/exercises/src/yours/l18_count.rs",
        source: include_str!("yours/l18_count.rs"),
        start: 0xe6f8c3d1dfdb68be,
        hint: "on lo every segment passes twice: recvfrom (nix's recvfrom::<LinkAddr>) says which way in the address's pkttype; count only PACKET_OUTGOING",
        yours: || checks::l18_count::check(yours::l18_count::count),
        solution: || checks::l18_count::check(solutions::l18_count::count),
    },
];

/// The course's lessons.
pub const LESSONS: std::ops::RangeInclusive<u8> = 1..=18;

/// The exercise of that id (`5`, `5b`).
pub fn find(id: &str) -> Option<&'static Exercise> {
    EXERCISES.iter().find(|e| e.id == id)
}

/// Lesson `n`'s exercises, what `just check N` runs.
pub fn of_lesson(n: u8) -> Vec<&'static Exercise> {
    EXERCISES.iter().filter(|e| e.lesson == n).collect()
}

/// A fingerprint of a file's text (64-bit FNV-1a): stable across builds
/// and machines, so the shipped value can be written in `EXERCISES`.
pub fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The reader's program for exercise `id` (or its solution's): what `run
/// ID ARGS` does in the process a check starts. `None` for an exercise
/// whose check calls a function in its own process.
pub fn run(
    id: &str,
    solution: bool,
    args: &[String],
) -> Option<std::io::Result<()>> {
    Some(match (id, solution) {
        ("2", false) => checks::l02_upper::run(yours::l02_upper::serve),
        ("2", true) => checks::l02_upper::run(solutions::l02_upper::serve),
        ("3", false) => checks::l03_greet::run(yours::l03_greet::serve),
        ("3", true) => checks::l03_greet::run(solutions::l03_greet::serve),
        ("7", false) => {
            checks::l07_in_use::run(yours::l07_in_use::listen, args)
        }
        ("7", true) => {
            checks::l07_in_use::run(solutions::l07_in_use::listen, args)
        }
        ("10", false) => checks::l10_limit::run(yours::l10_limit::serve),
        ("10", true) => checks::l10_limit::run(solutions::l10_limit::serve),
        ("11", false) => checks::l11_shutdown::run(yours::l11_shutdown::serve),
        ("11", true) => {
            checks::l11_shutdown::run(solutions::l11_shutdown::serve)
        }
        ("12", false) => checks::l12_chat::run(yours::l12_chat::serve),
        ("12", true) => checks::l12_chat::run(solutions::l12_chat::serve),
        ("13", false) => checks::l13_edge::run(yours::l13_edge::serve),
        ("13", true) => checks::l13_edge::run(solutions::l13_edge::serve),
        ("14", false) => checks::l14_once::run(yours::l14_once::serve),
        ("14", true) => checks::l14_once::run(solutions::l14_once::serve),
        ("15", false) => checks::l15_peer::run(yours::l15_peer::serve, args),
        ("15", true) => checks::l15_peer::run(solutions::l15_peer::serve, args),
        ("17", false) => {
            checks::l17_keep_alive::run(yours::l17_keep_alive::serve)
        }
        ("17", true) => {
            checks::l17_keep_alive::run(solutions::l17_keep_alive::serve)
        }
        ("8", false) => checks::l08_queue::run(yours::l08_queue::waiting, args),
        ("8", true) => {
            checks::l08_queue::run(solutions::l08_queue::waiting, args)
        }
        ("9", false) => {
            checks::l09_deadline::run(yours::l09_deadline::fetch, args)
        }
        ("9", true) => {
            checks::l09_deadline::run(solutions::l09_deadline::fetch, args)
        }
        ("6", false) => {
            checks::l06_half_close::run(yours::l06_half_close::ask, args)
        }
        ("6", true) => {
            checks::l06_half_close::run(solutions::l06_half_close::ask, args)
        }
        ("16", false) => {
            checks::l16_every::run(yours::l16_every::connect, args)
        }
        ("16", true) => {
            checks::l16_every::run(solutions::l16_every::connect, args)
        }
        _ => return None,
    })
}
