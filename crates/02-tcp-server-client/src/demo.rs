//! The demo: the article's timing diagram, played by one thread. That works
//! because the kernel, not `accept`, completes the handshake: `connect`
//! returns as soon as the connection sits in the listener's queue.
//!
//! Each call carries its line of the timeline as a suffix, `.told(|| ...)`,
//! which prints only in the demo (see the transcript crate).

use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use transcript::{
    Call, Failure, OrFail, Told, Transcript, bytes, client, client_note,
    section, server, server_note, tell,
};

use crate::RECV_SIZE;
use crate::server::is_timeout;

/// The timeline: one conversation, then a client that says nothing.
pub fn run() -> Result<(), Failure> {
    let _timeline = Transcript::new(&["server", "client"]);
    let (listener, addr) = listen()?;
    let (sock, conn) = connect(&listener, addr)?;
    exchange(&sock, &conn)?;
    hang_up(sock, conn)?;

    section("a client that connects and says nothing");
    silent_client(&listener, addr)?;
    close(listener, server);
    Ok(())
}

// ANCHOR: listen
/// The server's first four calls: a socket, an address, and from `listen`
/// on, the kernel answers connection requests for it.
fn listen() -> Result<(Socket, SocketAddr), Failure> {
    // IPv4 (AF_INET), a byte stream (SOCK_STREAM = TCP). socket2 adds
    // SOCK_CLOEXEC on its own (see lesson 1).
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| server("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;

    // Port 0: the kernel picks a free port, so the demo never collides.
    let wanted: SocketAddr = ([127, 0, 0, 1], 0).into();
    listener
        .bind(&wanted.into())
        .told(|| server("bind").on(&listener).args(wanted))?;

    // getsockname() tells us which port the kernel picked.
    let addr = listener
        .local_addr()
        .told(|| server("getsockname").on(&listener))?
        .as_socket()
        .ok_or(Failure::new("getsockname", "not an IP address"))?;

    // From here on the kernel completes handshakes for this port.
    listener.listen(5).told(|| server("listen").on(&listener).args(5))?;
    Ok((listener, addr))
}
// ANCHOR_END: listen

// ANCHOR: connect
/// The client connects; only then does the server accept.
fn connect(
    listener: &Socket,
    addr: SocketAddr,
) -> Result<(Socket, Socket), Failure> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;

    // The three-way handshake happens here, inside the kernel; the server
    // process is not involved and has not called accept() yet.
    sock.connect(&addr.into())
        .told(|| client("connect").on(&sock).args(addr))?;
    client_note("connected before the server accepted");

    // accept() only takes the finished connection off the listener's
    // queue, as a new socket: the listener goes on listening.
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;

    // The article's conn.settimeout(10): a recv that waits longer fails.
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .told(|| server("setsockopt").on(&conn).args("SO_RCVTIMEO, 10 s"))?;
    Ok((sock, conn))
}
// ANCHOR_END: connect

// ANCHOR: exchange
/// The client sends a line; the server reads it and echoes it back.
fn exchange(sock: &Socket, conn: &Socket) -> Result<(), Failure> {
    // Bytes, not text: what goes on the wire is a &[u8].
    let request = b"hello, server\n";
    sock.send(request).told(|| client("send").on(sock).args(bytes(request)))?;

    // socket2's Read impl is recv(2) with no flags.
    let mut buf = [0u8; RECV_SIZE];
    let n = (&*conn)
        .read(&mut buf)
        .told(|| server("recv").on(conn).args(RECV_SIZE).data(&buf))?;

    // The server echoes what it got.
    let echo = &buf[..n];
    conn.send(echo).told(|| server("send").on(conn).args(bytes(echo)))?;

    let mut reply = [0u8; RECV_SIZE];
    (&*sock)
        .read(&mut reply)
        .told(|| client("recv").on(sock).args(RECV_SIZE).data(&reply))?;
    Ok(())
}
// ANCHOR_END: exchange

// ANCHOR: hang_up
/// The client closes; the server reads the end of the stream and closes.
fn hang_up(sock: Socket, conn: Socket) -> Result<(), Failure> {
    // close() sends FIN, the end of the client's byte stream.
    close(sock, client);

    // The server sees the FIN as a recv that returns 0 bytes.
    let mut buf = [0u8; RECV_SIZE];
    (&conn).read(&mut buf).told(|| server("recv").on(&conn).args(RECV_SIZE))?;
    server_note("0 bytes: the client has closed, not an error");
    close(conn, server);
    Ok(())
}
// ANCHOR_END: hang_up

// ANCHOR: silent_client
/// A client that connects and stays silent: the server's `recv` times out
/// with `EAGAIN`, and the server drops that one client, not itself.
fn silent_client(listener: &Socket, addr: SocketAddr) -> Result<(), Failure> {
    let quiet = Socket::new(Domain::IPV4, Type::STREAM, None)
        .told(|| client("socket").args("AF_INET, SOCK_STREAM|SOCK_CLOEXEC"))?;
    quiet
        .connect(&addr.into())
        .told(|| client("connect").on(&quiet).args(addr))?;
    let (conn, _peer) =
        listener.accept().told(|| server("accept").on(listener))?;
    // 100 ms instead of the article's 10 s, so the demo does not keep you.
    conn.set_read_timeout(Some(Duration::from_millis(100)))
        .told(|| server("setsockopt").on(&conn).args("SO_RCVTIMEO, 100 ms"))?;

    // The timeout is EAGAIN, which Rust calls WouldBlock. The article's
    // loop does not catch it and its server dies.
    let mut buf = [0u8; RECV_SIZE];
    match (&conn)
        .read(&mut buf)
        .traced(|| server("recv").on(&conn).args(RECV_SIZE))
    {
        Err(err) if is_timeout(&err) => {
            server_note("timed out: close this client, keep serving")
        }
        other => drop(other.or_fail("recv")?),
    }
    close(conn, server);

    (&quiet)
        .read(&mut buf)
        .told(|| client("recv").on(&quiet).args(RECV_SIZE))?;
    client_note("0 bytes: the server hung up on us");
    close(quiet, client);
    Ok(())
}
// ANCHOR_END: silent_client

/// Closes a socket, `side`'s: dropping it is `close(2)`.
fn close(socket: Socket, side: fn(&'static str) -> Call) {
    let fd = socket.as_raw_fd();
    drop(socket);
    tell(|| side("close").on_fd(fd).gave(&()));
}
