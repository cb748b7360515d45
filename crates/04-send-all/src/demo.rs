//! The demo: a short send made on purpose, the loop that sends the rest,
//! std's `write_all` (the same loop, and what it hides), and Nagle's
//! algorithm meeting delayed ACK. Each call carries its line of the
//! timeline as a suffix, `.told(|| ...)`, which prints only in the demo.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, recv, send};
use socket2::{Domain, SockRef, Socket, Type};
use transcript::{
    Call, Failure, OptionValue, OrFail, Said, Told, Transcript, bytes, client,
    client_note, redirect, section, server, server_note, tell,
};

use crate::{SMALL_BUFFER, TOTAL, pattern};

/// How long std's `write_all` may wait for room before it gives up.
const WRITE_TIMEOUT: Duration = Duration::from_millis(100);

/// Request/reply rounds timed for each setting in the Nagle part. The first
/// round of the first setting is narrated and not timed.
const ROUNDS: usize = 7;

/// A median round slower than this is "slow": a delayed ACK costs 40 ms or
/// more on Linux, a round on loopback without one well under 1 ms.
const SLOW: Duration = Duration::from_millis(10);

/// Four parts: a short send made on purpose, the loop that finishes it,
/// std's `write_all` (the same loop), and Nagle's algorithm.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let data = pattern(TOTAL);

    section("one send, fewer bytes than asked");
    let (listener, addr) = listen()?;
    let (sock, conn) = connect(&listener, addr)?;
    let first = send_short(&sock, &data)?;

    section("a write-all loop sends the rest");
    let reader = read_all_later(conn);
    send_rest(&sock, &data, first)?;
    let conn = check_arrival(reader, &data)?;
    close(sock, client);
    close(conn, server);

    section("std's write_all: the same loop, and what it hides");
    write_all_hides(&listener, addr, &data)?;

    section("write, write, read: Nagle's algorithm meets delayed ACK");
    nagle(&listener, addr)?;
    close(listener, server);
    Ok(())
}

// ANCHOR: listen
/// A listener with a small receive buffer, set before `listen`: accepted
/// sockets inherit it, and the window it allows is announced in the
/// handshake (man 7 tcp).
fn listen() -> Result<(Socket, SocketAddr), Failure> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    listener
        .set_recv_buffer_size(SMALL_BUFFER)
        .told(|| server("setsockopt").on(&listener).args("SO_RCVBUF, 4096"))?;
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&wanted.into())
        .told(|| server("bind").on(&listener).args(wanted))?;
    let addr = listener
        .local_addr()
        .told(|| server("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;
    listener.listen(5).told(|| server("listen").on(&listener).args(5))?;
    Ok((listener, addr))
}
// ANCHOR_END: listen

// ANCHOR: connect
/// A client with a small send buffer too, so the two buffers together
/// hold little; the server accepts it, and does not read yet.
fn connect(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    sock.set_send_buffer_size(SMALL_BUFFER)
        .told(|| client("setsockopt").on(&sock).args("SO_SNDBUF, 4096"))?;
    // Ask what the kernel really set: it doubles the value, to leave room
    // for its own bookkeeping (man 7 socket, SO_SNDBUF).
    sock.send_buffer_size()
        .map(OptionValue)
        .told(|| client("getsockopt").on(&sock).args("SO_SNDBUF"))?;
    client_note("the kernel doubled it");
    sock.connect(&addr.into())
        .told(|| client("connect").on(&sock).args(addr))?;

    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    conn.recv_buffer_size()
        .map(OptionValue)
        .told(|| server("getsockopt").on(&conn).args("SO_RCVBUF"))?;
    server_note(
        "inherited from the listener, doubled; the server does not read yet",
    );
    Ok((sock, conn))
}
// ANCHOR_END: connect

// ANCHOR: send_short
/// One send of a megabyte that may not wait: it takes what fits.
fn send_short(sock: &Socket, data: &[u8]) -> Result<usize, Failure> {
    // MSG_DONTWAIT: this one call may not wait for room (man 2 send). The
    // kernel copies what fits and returns that count instead of blocking.
    let first =
        send(sock.as_raw_fd(), data, MsgFlags::MSG_DONTWAIT).or_fail("send")?;
    if first == data.len() {
        return Err(Failure::new("send", "a megabyte fit in the buffers"));
    }
    // How many fit depends on the kernel: the timeline calls it N.
    tell(|| {
        client("send")
            .on(sock)
            .args(format!("{TOTAL} bytes, MSG_DONTWAIT"))
            .gave(&first)
            .shown("N")
            .detail(format!("short: N < {TOTAL}"))
    });
    client_note("N bytes fit in the two buffers; the rest is still ours");
    Ok(first)
}
// ANCHOR_END: send_short

// ANCHOR: send_rest
/// The write-all loop, for a blocking socket: offer what is left until the
/// kernel has taken every byte.
fn send_rest(sock: &Socket, data: &[u8], first: usize) -> Result<(), Failure> {
    let (mut sent, mut sends) = (first, 1);
    while sent < data.len() {
        // A blocking send: it waits for room as the server reads, and
        // returns early only if a signal interrupts it.
        match sock.send(&data[sent..]).traced(|| rest_call(sock, sent, first)) {
            // The kernel never takes 0 of a non-empty buffer on a stream
            // socket; std's write_all calls that WriteZero. Stop, don't spin.
            Ok(0) => return Err(Failure::new("send", "0 bytes taken")),
            Ok(n) => sent += n,
            // A signal came before any byte was taken: just try again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                let what = format!("send (after {sent} of {TOTAL} bytes)");
                return Err(Failure::new(what, err));
            }
        }
        sends += 1;
    }
    client_note(format!(
        "sent {sent} of {TOTAL} bytes in {sends} sends: the loop ends"
    ));
    Ok(())
}
// ANCHOR_END: send_rest

/// The loop's `send` line: the first one left is "the other 1048576 - N
/// bytes", since N varies by machine.
fn rest_call(sock: &Socket, sent: usize, first: usize) -> Call {
    if sent == first {
        client("send")
            .on(sock)
            .args(format!("the other {TOTAL} - N bytes"))
            .shown(format!("{TOTAL} - N"))
            .detail("all of the rest")
    } else {
        client("send").on(sock).args(format!("{} bytes", TOTAL - sent))
    }
}

// ANCHOR: read_all_later
/// Now the server reads, in a thread of its own. MSG_WAITALL: one recv
/// that returns only when all TOTAL bytes are in (man 2 recv), so the
/// timeline does not depend on how the bytes happen to arrive. Its line
/// goes to a channel; the timeline prints it once the loop is done.
fn read_all_later(conn: Socket) -> Reader {
    let (outlet, said) = mpsc::channel();
    let thread = thread::spawn(move || {
        redirect(outlet);
        let mut got = vec![0u8; TOTAL];
        recv(conn.as_raw_fd(), &mut got, MsgFlags::MSG_WAITALL)
            .told(|| server("recv").on(&conn).args("1048576, MSG_WAITALL"))?;
        Ok((conn, got))
    });
    Reader { thread, said }
}
// ANCHOR_END: read_all_later

/// The server's reading thread, and where its narration goes.
struct Reader {
    thread: JoinHandle<Result<(Socket, Vec<u8>), Failure>>,
    said: Receiver<Said>,
}

/// Waits for the server's recv, prints it, and checks what it got.
fn check_arrival(reader: Reader, data: &[u8]) -> Result<Socket, Failure> {
    let read = reader
        .thread
        .join()
        .map_err(|_| Failure::new("recv", "the server's thread panicked"))?;
    reader.said.try_iter().for_each(Said::show);
    let (conn, got) = read?;
    if got != data {
        return Err(Failure::new("recv", "the bytes differ from those sent"));
    }
    server_note("every byte arrived, in the order sent");
    Ok(conn)
}

// ANCHOR: write_all_hides
/// std's `write_all` on a stream with the same small send buffer and a
/// write timeout, while the server does not read: it fails, and does not
/// say how much it sent before.
fn write_all_hides(
    listener: &Socket,
    addr: SocketAddr,
    data: &[u8],
) -> Result<(), Failure> {
    client_note(format!("TcpStream::connect(\"{addr}\"):"));
    let (stream, conn) = std_connect(listener, addr)?;
    client_note("socket2's SockRef::set_send_buffer_size, as above:");
    SockRef::from(&stream)
        .set_send_buffer_size(SMALL_BUFFER)
        .told(|| client("setsockopt").on(&stream).args("SO_SNDBUF, 4096"))?;
    // A blocking send that finds no room waits at most this long (man 7
    // socket, SO_SNDTIMEO), then returns what it took, or EAGAIN if nothing.
    client_note(format!("stream.set_write_timeout({WRITE_TIMEOUT:?}):"));
    stream
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .told(|| client("setsockopt").on(&stream).args("SO_SNDTIMEO, 100ms"))?;

    // write_all is std's loop: send, advance by what was taken, retry on
    // EINTR, stop at the first other error. The server is not reading.
    client_note(format!(
        "stream.write_all(&data), {TOTAL} bytes, the server not reading:"
    ));
    let Err(err) = (&stream).write_all(data) else {
        let why = "succeeded although the server never read";
        return Err(Failure::new("write_all", why));
    };
    client_note("its first sends take what fits, as above, until one");
    client_note(format!("waits {WRITE_TIMEOUT:?} for room and takes nothing:"));
    tell(|| {
        client("send").on(&stream).args("the rest, MSG_NOSIGNAL").failed(&err)
    });
    client_note("write_all returns this error and no count: how many");
    client_note("bytes went before it, the caller cannot know");
    close(stream, client);
    close(conn, server);
    Ok(())
}
// ANCHOR_END: write_all_hides

/// `TcpStream::connect` is two calls, `socket` and `connect`; the server
/// accepts the connection.
fn std_connect(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(TcpStream, Socket), Failure> {
    let stream = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    tell(|| {
        client("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC").gave(&stream)
    });
    tell(|| client("connect").on(&stream).args(addr).gave(&()));
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    Ok((stream, conn))
}

// ANCHOR: nagle
/// Write, write, read: a request in two small pieces, then wait for the
/// reply. Timed with Nagle's algorithm on (the default), then off.
fn nagle(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    client_note(format!("TcpStream::connect(\"{addr}\"), stream.nodelay():"));
    let (stream, conn) = std_connect(listener, addr)?;
    stream
        .nodelay()
        .told(|| client("getsockopt").on(&stream).args("TCP_NODELAY"))?;
    client_note("off by default: Nagle's algorithm is on");
    let (outlet, said) = mpsc::channel();
    let answering =
        thread::spawn(move || answer_ok(conn, 2 * ROUNDS + 1, outlet));

    client_note("write(b\"head\"), write(b\"body\"), read(&mut reply):");
    narrated_round(&stream, said)?;
    let with_nagle = median_round(&stream)?;
    client_note(format!("{ROUNDS} more rounds like this one, timed"));

    // Send each write at once, whatever is still unacknowledged.
    client_note("stream.set_nodelay(true):");
    stream
        .set_nodelay(true)
        .told(|| client("setsockopt").on(&stream).args("TCP_NODELAY, 1"))?;
    let without = median_round(&stream)?;
    client_note(format!("{ROUNDS} rounds like the one above, timed"));
    // Only the comparison is printed: the times vary from run to run, and
    // a delayed ACK waits at least 40 ms on Linux.
    let slower = if with_nagle > without + SLOW { "yes" } else { "no" };
    client_note(format!(
        "median round with Nagle slower by more than {SLOW:?}: {slower}"
    ));

    let conn = answering
        .join()
        .map_err(|_| Failure::new("recv", "the server's thread panicked"))?;
    close(stream, client);
    close(conn, server);
    Ok(())
}
// ANCHOR_END: nagle

// ANCHOR: answer_ok
/// The server: read a whole 8-byte request (MSG_WAITALL), answer "ok", for
/// `rounds` rounds. Its narration goes to `outlet`, which the timeline
/// reads for the first round only.
fn answer_ok(conn: Socket, rounds: usize, outlet: Sender<Said>) -> Socket {
    redirect(outlet);
    let fd = conn.as_raw_fd();
    let mut request = [0u8; 8];
    for _ in 0..rounds {
        let got = recv(fd, &mut request, MsgFlags::MSG_WAITALL).traced(|| {
            server("recv").on(&conn).args("8, MSG_WAITALL").data(&request)
        });
        let answered = got == Ok(8)
            && send(fd, b"ok", MsgFlags::empty())
                .traced(|| server("send").on(&conn).args(bytes(b"ok")))
                == Ok(2);
        if !answered {
            // Tell the client, which stops waiting for the reply.
            let _ = conn.shutdown(Shutdown::Both);
            break;
        }
    }
    conn
}
// ANCHOR_END: answer_ok

// ANCHOR: narrated_round
/// The first round, narrated: the server's two lines come from its thread
/// once it has answered, so they print between the client's sends and its
/// read whatever the threads' timing.
fn narrated_round(
    stream: &TcpStream,
    said: Receiver<Said>,
) -> Result<(), Failure> {
    for piece in [b"head", b"body"] {
        (&*stream).write(piece).told(|| {
            client("send").on(stream).args(bytes(piece)).args("MSG_NOSIGNAL")
        })?;
    }
    // The later rounds' lines are not shown: dropping `said` drops them.
    said.iter().take(2).for_each(Said::show);
    let mut reply = [0u8; 16];
    let n = (&*stream)
        .read(&mut reply)
        .told(|| client("recv").on(stream).args(16).data(&reply))?;
    if &reply[..n] != b"ok" {
        return Err(Failure::new("recv", "the server did not answer \"ok\""));
    }
    Ok(())
}
// ANCHOR_END: narrated_round

// ANCHOR: median_round
/// ROUNDS rounds of write, write, read, not narrated: the median time.
fn median_round(mut stream: &TcpStream) -> Result<Duration, Failure> {
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        stream.write(b"head").or_fail("send")?;
        stream.write(b"body").or_fail("send")?;
        let mut reply = [0u8; 16];
        if stream.read(&mut reply).or_fail("recv")? != 2 {
            return Err(Failure::new("recv", "the server did not answer"));
        }
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[ROUNDS / 2])
}
// ANCHOR_END: median_round

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: impl AsRawFd, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
