# The checks' clients: one Python process holding any number of
# connections, each by a name, driven by one command a line on stdin and
# answering each with one line on stdout. A check in Rust decides what to
# send and judges what comes back; the sockets are Python's, in a process
# of their own, as a reader's own client would be.
#
#   tcp NAME HOST PORT         connect         -> ok LOCAL_ADDR | err WHY
#   udp NAME HOST PORT         connected UDP   -> ok LOCAL_ADDR | err WHY
#   send NAME HEX              send it all     -> ok | err WHY
#   recv NAME MAX MS [STOPHEX] read until MAX bytes, the end, MS quiet
#                              milliseconds, or the bytes end with STOP
#                              -> got HEX (full|eof|quiet|stop|reset)
#   shut NAME                  shutdown(SHUT_WR)  -> ok | err WHY
#   close NAME                 close              -> ok
#
# And servers, whose connections are used as above:
#
#   listen NAME [BACKLOG]      listen on 127.0.0.1, port 0 -> ok ADDR
#   accept NAME CONN MS        accept one, within MS ms    -> ok PEER | err
#   dribble CONN MS            send a byte every MS ms from a thread, until
#                              the client goes             -> ok
import socket
import sys
import threading
import time

conns = {}


def why(err):
    return type(err).__name__ + " " + str(err).replace("\n", " ")


def dribble(conn, ms):
    try:
        while True:
            conn.sendall(b".")
            time.sleep(ms / 1000)
    except OSError:
        pass


def recv(conn, most, ms, stop):
    got = b""
    conn.settimeout(ms / 1000)
    while len(got) < most:
        try:
            part = conn.recv(most - len(got))
        except socket.timeout:
            return got, "quiet"
        except ConnectionResetError:
            return got, "reset"
        if not part:
            return got, "eof"
        got += part
        if conn.type == socket.SOCK_DGRAM:
            return got, "full"
        if stop and got.endswith(stop):
            return got, "stop"
    return got, "full"


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    command, name, rest = words[0], words[1], words[2:]
    try:
        if command in ("tcp", "udp"):
            kind = socket.SOCK_STREAM if command == "tcp" else socket.SOCK_DGRAM
            conn = socket.socket(socket.AF_INET, kind)
            conn.settimeout(5)
            conn.connect((rest[0], int(rest[1])))
            conns[name] = conn
            host, port = conn.getsockname()
            answer = f"ok {host}:{port}"
        elif command == "listen":
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(int(rest[0]) if rest else 8)
            conns[name] = server
            host, port = server.getsockname()
            answer = f"ok {host}:{port}"
        elif command == "accept":
            conns[name].settimeout(int(rest[1]) / 1000)
            conn, (host, port) = conns[name].accept()
            conns[rest[0]] = conn
            answer = f"ok {host}:{port}"
        elif command == "dribble":
            conn = conns[name]
            conn.settimeout(None)
            gap = int(rest[0])
            thread = threading.Thread(target=dribble, args=(conn, gap))
            thread.daemon = True
            thread.start()
            answer = "ok"
        elif command == "send":
            conns[name].sendall(bytes.fromhex(rest[0]) if rest else b"")
            answer = "ok"
        elif command == "recv":
            stop = bytes.fromhex(rest[2]) if len(rest) > 2 else b""
            got, end = recv(conns[name], int(rest[0]), int(rest[1]), stop)
            answer = f"got {got.hex() or '-'} {end}"
        elif command == "shut":
            conns[name].shutdown(socket.SHUT_WR)
            answer = "ok"
        elif command == "close":
            conns.pop(name).close()
            answer = "ok"
        else:
            answer = f"err unknown command {command}"
    except OSError as err:
        answer = "err " + why(err)
    print(answer, flush=True)
