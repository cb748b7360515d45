//! # Lesson 1: a socket is a file descriptor
//!
//! The idea: `socket()` hands back the same kind of thing `open()` does, a
//! small integer that names an object inside the kernel. Everything this
//! process does with the socket later (bind, connect, send, close) passes
//! that integer back to the kernel.
//!
//! What was missing before: the article says sockets follow Unix's
//! "everything is a file" without showing it. Here the kernel says so
//! itself: `fstat` reports the socket's file type as `S_IFSOCK`, and
//! `/proc/self/fd` lists it beside an ordinary file.
//!
//! The lesson is one demo, read top to bottom: `demo` calls the steps in
//! the order of the timeline (`open_both`, `fstat_both`, `proc_links`,
//! `seek_both`, `close_and_reuse`). Each call carries its line of the
//! timeline as a suffix, `.told(|| ...)` (see the transcript crate).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};
use nix::unistd::{Whence, close, lseek};
use socket2::{Domain, Socket, Type};
use transcript::{
    Failure, Outcome, Ret, Told, Transcript, bytes, server, server_note,
};

/// A file every Unix system has, opened to compare with the socket.
const ORDINARY_FILE: &str = "/etc/passwd";

#[derive(Parser)]
#[command(
    name = "lesson-01",
    bin_name = "lesson-01",
    about = "Lesson 1: a socket is a file descriptor",
    long_about = "Lesson 1: a socket is a file descriptor.\n\n\
        Creates a socket and an ordinary file, asks the kernel what each \
        descriptor is (fstat, /proc/self/fd), then closes the socket and \
        shows that its number is free again."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the timeline of system calls (the default)
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    transcript::run("lesson-01", || match cli.command {
        None | Some(Command::Demo) => demo(),
    })
}

/// The timeline: a file and a socket, side by side, from `open` to
/// `close`.
fn demo() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["this process"]);
    server_note(
        "fds 0, 1 and 2 are stdin, stdout and stderr; \
         a new one gets the lowest free number",
    );
    let (file, socket) = open_both()?;
    let socket_stat = fstat_both(&file, &socket)?;
    proc_links(&file, &socket, &socket_stat)?;
    seek_both(&file, &socket)?;
    close_and_reuse(file, socket)
}

// ANCHOR: create
/// An ordinary file and a socket: both calls return a descriptor.
fn open_both() -> Result<(OwnedFd, Socket), Failure> {
    // An ordinary file first, for comparison: open() returns a descriptor.
    let file = open(ORDINARY_FILE, OFlag::O_RDONLY, Mode::empty())
        .told(|| server("open").args(format!("{ORDINARY_FILE:?}, O_RDONLY")))?;

    // socket() returns a descriptor from the same table: the next free
    // number. socket2 always adds SOCK_CLOEXEC, so programs we start do
    // not inherit it.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    Ok((file, socket))
}
// ANCHOR_END: create

// ANCHOR: fstat
/// The same call for both: the file type bits of `st_mode` say what each
/// descriptor names. Returns the socket's, for its inode number.
fn fstat_both(file: &OwnedFd, socket: &Socket) -> Result<FileStat, Failure> {
    fstat(file).map(Stat).told(|| server("fstat").on(file))?;
    let Stat(stat) =
        fstat(socket).map(Stat).told(|| server("fstat").on(socket))?;
    Ok(stat)
}
// ANCHOR_END: fstat

// ANCHOR: proc
/// `/proc/self/fd` has one symbolic link per open descriptor. A file's
/// link points at its path; a socket has no path, only an inode in sockfs.
fn proc_links(
    file: &OwnedFd,
    socket: &Socket,
    socket_stat: &FileStat,
) -> Result<(), Failure> {
    let file_link = fd_link(file.as_raw_fd())?.unwrap_or_default();
    server_note(format!("fd {} is the file {file_link}", file.as_raw_fd()));
    let socket_link = fd_link(socket.as_raw_fd())?.unwrap_or_default();
    server_note(format!("fd {} is {socket_link}", socket.as_raw_fd()));
    let same_inode = socket_link == format!("socket:[{}]", socket_stat.st_ino);
    server_note(format!(
        "same inode as fstat's st_ino: {}",
        yes_no(same_inode)
    ));
    Ok(())
}
// ANCHOR_END: proc

// ANCHOR: seek
/// Where the file picture ends: a socket is a stream with no position.
fn seek_both(file: &OwnedFd, socket: &Socket) -> Result<(), Failure> {
    lseek(file, 0, Whence::SeekSet)
        .told(|| server("lseek").on(file).args("0, SEEK_SET"))?;
    // The kernel refuses with ESPIPE, "illegal seek", as for a pipe.
    match lseek(socket, 0, Whence::SeekSet)
        .traced(|| server("lseek").on(socket).args("0, SEEK_SET"))
    {
        Err(Errno::ESPIPE) | Ok(_) => Ok(()),
        Err(errno) => Err(Failure::new("lseek", io::Error::from(errno))),
    }
}
// ANCHOR_END: seek

// ANCHOR: close
/// close() gives the number back to the kernel; the next descriptor takes
/// the lowest free number, the one just closed.
fn close_and_reuse(file: OwnedFd, socket: Socket) -> Result<(), Failure> {
    let closed_fd = socket.as_raw_fd();
    close(socket).told(|| server("close").on_fd(closed_fd))?;
    // Nothing names the socket now: its link is gone.
    fd_link(closed_fd)?;

    let again = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    server_note(format!(
        "the closed number was reused: {}",
        yes_no(again.as_raw_fd() == closed_fd)
    ));

    let again_fd = again.as_raw_fd();
    close(again).told(|| server("close").on_fd(again_fd))?;
    let file_fd = file.as_raw_fd();
    close(file).told(|| server("close").on_fd(file_fd))
}
// ANCHOR_END: close

/// Reads `/proc/self/fd/N` and narrates it: the link's text, or `None`
/// when there is no such descriptor (shown, not fatal).
fn fd_link(fd: RawFd) -> Result<Option<String>, Failure> {
    let path = format!("/proc/self/fd/{fd}");
    match fs::read_link(&path)
        .map(|target| Link(target.to_string_lossy().into_owned()))
        .traced(|| server("readlink").args(bytes(path.as_bytes())))
    {
        Ok(Link(target)) => Ok(Some(target)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(Failure::new(format!("readlink {path}"), err)),
    }
}

/// What `fstat` filled in, as the timeline shows it: the call returns 0,
/// and the file type follows.
struct Stat(FileStat);

impl Outcome for Stat {
    fn ret(&self) -> Ret {
        Ret::Value(0)
    }
    fn detail(&self) -> String {
        file_type(self.0.st_mode).to_string()
    }
}

/// What `readlink` read: it returns the length, and the text follows.
struct Link(String);

impl Outcome for Link {
    fn ret(&self) -> Ret {
        Ret::Value(self.0.len() as i64)
    }
    fn detail(&self) -> String {
        bytes(self.0.as_bytes())
    }
}

/// The file type bits of `st_mode`, by the name `man 7 inode` gives them.
fn file_type(mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFSOCK => "S_IFSOCK: a socket",
        SFlag::S_IFREG => "S_IFREG: a regular file",
        SFlag::S_IFCHR => "S_IFCHR: a character device",
        SFlag::S_IFIFO => "S_IFIFO: a pipe",
        SFlag::S_IFDIR => "S_IFDIR: a directory",
        _ => "another type",
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
