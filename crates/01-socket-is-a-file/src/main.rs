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

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use nix::unistd::{Whence, close, lseek};
use socket2::{Domain, Socket, Type};
use transcript::{Failure, OrFail, Transcript, bytes, call};

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

fn demo() -> Result<(), Failure> {
    let mut t = Transcript::new(&["this process"]);
    t.server_note("fds 0, 1 and 2 are stdin, stdout and stderr; a new one gets the lowest free number");

    // ANCHOR: create
    // An ordinary file first, for comparison: open() returns a descriptor.
    let file = open(ORDINARY_FILE, OFlag::O_RDONLY, Mode::empty());
    t.server(
        call("open")
            .args(format!("{ORDINARY_FILE:?}, O_RDONLY"))
            .returned(&file),
    );
    let file = file.or_fail(format!("open {ORDINARY_FILE}"))?;

    // socket() returns a descriptor from the same table: the next free number.
    // socket2 always adds SOCK_CLOEXEC, so programs we start do not inherit it.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&socket),
    );
    let socket = socket.or_fail("socket")?;
    // ANCHOR_END: create

    // ANCHOR: fstat
    // fstat() works on any descriptor; the file type bits say what it names.
    let file_stat = fstat(&file).or_fail("fstat")?;
    t.server(
        call("fstat").on(&file).gave(&()).detail(file_type(file_stat.st_mode)),
    );
    let socket_stat = fstat(&socket).or_fail("fstat")?;
    t.server(
        call("fstat")
            .on(&socket)
            .gave(&())
            .detail(file_type(socket_stat.st_mode)),
    );
    // ANCHOR_END: fstat

    // ANCHOR: proc
    // /proc/self/fd has one symbolic link per open descriptor. A file's link
    // points at its path; a socket has no path, only an inode in sockfs.
    let file_link = fd_link(&mut t, file.as_raw_fd())?;
    t.server_note(format!("fd {} is the file {file_link}", file.as_raw_fd()));
    let socket_link = fd_link(&mut t, socket.as_raw_fd())?;
    let same_inode = socket_link == format!("socket:[{}]", socket_stat.st_ino);
    t.server_note(format!("fd {} is {socket_link}", socket.as_raw_fd()));
    t.server_note(format!(
        "same inode as fstat's st_ino: {}",
        yes_no(same_inode)
    ));
    // ANCHOR_END: proc

    // ANCHOR: seek
    // Where the file picture ends: a socket is a stream with no position.
    let at = lseek(&file, 0, Whence::SeekSet);
    t.server(call("lseek").on(&file).args("0, SEEK_SET").returned(&at));
    let at = lseek(&socket, 0, Whence::SeekSet);
    t.server(call("lseek").on(&socket).args("0, SEEK_SET").returned(&at));
    // ANCHOR_END: seek

    // ANCHOR: close
    // close() gives the number back to the kernel; nothing names the socket now.
    let closed_fd = socket.as_raw_fd();
    let closed = close(socket);
    t.server(call("close").on_fd(closed_fd).returned(&closed));
    fd_link(&mut t, closed_fd)?;

    // The next descriptor reuses the lowest free number: the one just closed.
    let again = Socket::new(Domain::IPV4, Type::STREAM, None);
    t.server(
        call("socket")
            .args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC")
            .returned(&again),
    );
    let again = again.or_fail("socket")?;
    t.server_note(format!(
        "the closed number was reused: {}",
        yes_no(again.as_raw_fd() == closed_fd)
    ));

    let again_fd = again.as_raw_fd();
    t.server(call("close").on_fd(again_fd).returned(&close(again)));
    let file_fd = file.as_raw_fd();
    t.server(call("close").on_fd(file_fd).returned(&close(file)));
    // ANCHOR_END: close
    Ok(())
}

/// Reads `/proc/self/fd/N` and narrates it; a missing link is shown, not fatal.
fn fd_link(t: &mut Transcript, fd: RawFd) -> Result<String, Failure> {
    let path = PathBuf::from(format!("/proc/self/fd/{fd}"));
    let target = std::fs::read_link(&path);
    let shown = call("readlink").args(bytes(path.to_string_lossy().as_bytes()));
    match &target {
        Ok(target) => {
            let text = target.to_string_lossy().into_owned();
            t.server(shown.gave(&text.len()).detail(bytes(text.as_bytes())));
            Ok(text)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            t.server(shown.failed(err));
            Ok(String::new())
        }
        Err(_) => target
            .map(|_| String::new())
            .or_fail(format!("readlink {}", path.display())),
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
