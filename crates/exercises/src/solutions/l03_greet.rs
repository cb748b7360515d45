//! A solution of exercise 3: a std::net server that reads the whole request
//! line before it answers.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// Serves the clients of `listener` one after the other, for ever.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        let (conn, _peer) = listener.accept()?;
        // An error concerns this client only: the server goes on.
        if let Err(err) = greet(&conn) {
            eprintln!("{err}");
        }
        // `conn` goes out of scope here: dropping a stream closes it.
    }
}

// ANCHOR: greet
/// Reads the client's name, a whole line, and greets it.
fn greet(conn: &TcpStream) -> io::Result<()> {
    // read_line calls read until the '\n' has come: a read returns what
    // has arrived, which may be part of the line. `take` bounds the line.
    let mut line = String::new();
    BufReader::new(conn.take(1024)).read_line(&mut line)?;
    if !line.ends_with('\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the client ended before its line did",
        ));
    }
    (&*conn).write_all(format!("hello, {line}").as_bytes())
}
// ANCHOR_END: greet
