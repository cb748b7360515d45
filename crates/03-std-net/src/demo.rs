//! The demo: lesson 2's conversation with std, played by one thread. After
//! each std call, one `tell` line per system call it made, as `strace`
//! shows them; a std call that is one system call carries its line as a
//! suffix, `.told(|| ...)`, as in lesson 2.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, SockRef, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, bytes, client, client_note,
    section, server, server_note, tell,
};

use crate::{RECV_SIZE, STD_BACKLOG};

/// How std and socket2 create a TCP socket on Linux.
const STREAM: &str = "AF_INET, SOCK_STREAM|SOCK_CLOEXEC";

/// The timeline: lesson 2's conversation, a request nobody answers, and a
/// socket made by socket2 for comparison.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let (listener, addr) = listen()?;
    let (stream, conn) = connect(&listener, addr)?;
    exchange(&stream, &conn)?;
    hang_up(stream, conn)?;

    section("accepting is not answering");
    unanswered(&listener, addr)?;

    section("raw socket2, for comparison");
    raw_socket2()?;
    close(listener, server);
    Ok(())
}

// ANCHOR: listen
/// One std call for lesson 2's four, and a look at what it set.
fn listen() -> Result<(TcpListener, SocketAddr), Failure> {
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    server_note(format!("TcpListener::bind(\"{wanted}\") makes four calls:"));
    let listener =
        TcpListener::bind(wanted).or_fail(format!("bind {wanted}"))?;
    tell(|| server("socket").args(STREAM).gave(&listener));
    // Set before bind, so a restarted server can bind while connections of
    // its previous run linger in TIME_WAIT (lesson 7).
    tell(|| {
        server("setsockopt").on(&listener).args("SO_REUSEADDR, 1").gave(&())
    });
    tell(|| server("bind").on(&listener).args(wanted).gave(&()));
    tell(|| server("listen").on(&listener).args(STD_BACKLOG).gave(&()));

    server_note("listener.local_addr():");
    let addr =
        listener.local_addr().told(|| server("getsockname").on(&listener))?;

    // Ask the kernel, rather than trusting the comment above. SockRef
    // borrows std's socket for socket2's calls without taking it over.
    server_note("socket2's SockRef::reuse_address(), to check:");
    SockRef::from(&listener)
        .reuse_address()
        .told(|| server("getsockopt").on(&listener).args("SO_REUSEADDR"))?;
    Ok((listener, addr))
}
// ANCHOR_END: listen

// ANCHOR: connect
/// The client connects (two calls), then the server accepts (one).
fn connect(
    listener: &TcpListener,
    addr: SocketAddr,
) -> Result<(TcpStream, TcpStream), Failure> {
    client_note(format!("TcpStream::connect(\"{addr}\"):"));
    let stream = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    tell(|| client("socket").args(STREAM).gave(&stream));
    tell(|| client("connect").on(&stream).args(addr).gave(&()));

    // accept4 with SOCK_CLOEXEC, as socket2's accept does.
    server_note("listener.accept():");
    let (conn, _peer) = listener
        .accept()
        .told(|| server("accept").on(listener).args("SOCK_CLOEXEC"))?;

    server_note("conn.set_read_timeout(Some(10 s)):");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .told(|| server("setsockopt").on(&conn).args("SO_RCVTIMEO, 10 s"))?;
    Ok((stream, conn))
}
// ANCHOR_END: connect

// ANCHOR: exchange
/// The client writes a line; the server reads it and writes it back.
fn exchange(stream: &TcpStream, conn: &TcpStream) -> Result<(), Failure> {
    let request = b"hello, server\n";
    client_note("stream.write_all(b\"hello, server\\n\"):");
    (&*stream).write_all(request).or_fail("send")?;
    // MSG_NOSIGNAL: a closed peer gives EPIPE, not a fatal SIGPIPE.
    tell(|| sent(client("send").on(stream), request));

    server_note("conn.read(&mut buf):");
    let mut buf = [0u8; RECV_SIZE];
    let n = (&*conn)
        .read(&mut buf)
        .told(|| server("recv").on(conn).args(RECV_SIZE).data(&buf))?;

    server_note("conn.write_all(&buf[..n]):");
    (&*conn).write_all(&buf[..n]).or_fail("send")?;
    tell(|| sent(server("send").on(conn), &buf[..n]));

    client_note("stream.read(&mut reply):");
    let mut reply = [0u8; RECV_SIZE];
    (&*stream)
        .read(&mut reply)
        .told(|| client("recv").on(stream).args(RECV_SIZE).data(&reply))?;
    Ok(())
}
// ANCHOR_END: exchange

// ANCHOR: hang_up
/// The client drops its stream; the server reads the end, drops its own.
fn hang_up(stream: TcpStream, conn: TcpStream) -> Result<(), Failure> {
    client_note("drop(stream):");
    close(stream, client);

    server_note("conn.read(&mut buf):");
    let mut buf = [0u8; RECV_SIZE];
    (&conn).read(&mut buf).told(|| server("recv").on(&conn).args(RECV_SIZE))?;
    server_note("drop(conn):");
    close(conn, server);
    Ok(())
}
// ANCHOR_END: hang_up

// ANCHOR: unanswered
/// A server that accepts and drops the stream without reading or
/// answering: the unread request makes close() send RST, not FIN.
fn unanswered(listener: &TcpListener, addr: SocketAddr) -> Result<(), Failure> {
    client_note(format!("TcpStream::connect(\"{addr}\"), then a request:"));
    let stream = TcpStream::connect(addr).or_fail(format!("connect {addr}"))?;
    tell(|| client("socket").args(STREAM).gave(&stream));
    tell(|| client("connect").on(&stream).args(addr).gave(&()));
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    (&stream).write_all(request).or_fail("send")?;
    tell(|| sent(client("send").on(&stream), request));

    server_note("listener.accept(), then drop without a reply:");
    let (conn, _peer) = listener
        .accept()
        .told(|| server("accept").on(listener).args("SOCK_CLOEXEC"))?;
    close(conn, server);

    // The client waits for a reply and gets an error instead.
    let mut reply = [0u8; RECV_SIZE];
    match (&stream)
        .read(&mut reply)
        .traced(|| client("recv").on(&stream).args(RECV_SIZE))
    {
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
            client_note("no reply, and not even a clean end: a reset")
        }
        other => drop(other.or_fail("recv")?),
    }
    close(stream, client);
    Ok(())
}
// ANCHOR_END: unanswered

// ANCHOR: raw_socket2
/// socket2 makes exactly the calls you ask for: no `SO_REUSEADDR`.
fn raw_socket2() -> Result<(), Failure> {
    let raw = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args(STREAM))?;
    raw.reuse_address()
        .told(|| server("getsockopt").on(&raw).args("SO_REUSEADDR"))?;
    close(raw, server);
    Ok(())
}
// ANCHOR_END: raw_socket2

/// A `send` line for what `write_all` sent in one call: std adds the
/// `MSG_NOSIGNAL` flag to every send (lesson 6 shows what it saves).
fn sent(send: Call, data: &[u8]) -> Call {
    send.args(bytes(data)).args("MSG_NOSIGNAL").gave(&data.len())
}

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: impl AsRawFd, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
