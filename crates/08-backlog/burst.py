# Lesson 8, "When many clients retry at once": eight nonblocking connects
# at once to a listener with backlog 1 whose server accepts what is queued
# every 50 ms. Prints how many clients believe they are connected and how
# many connections the server got; the counts depend on timing (see the
# chapter). Loopback only. Run: python3 crates/08-backlog/burst.py
import socket, select, time
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.setblocking(False)
clients = []
for _ in range(8):  # eight nonblocking connects at once
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(srv.getsockname())
    clients.append(c)
accepted = []
def accept_all():
    while True:
        try:
            accepted.append(srv.accept()[0])
        except BlockingIOError:
            return
end = time.time() + 3
while time.time() < end:  # the server accepts whatever is queued, every 50 ms
    select.select([srv], [], [], 0.05)
    accept_all()
_, done, _ = select.select([], clients, [], 0)
print(len(done), "clients connected,", len(accepted), "accepted by the server")
for c in clients:
    c.send(b"x")  # data carries the ACK the server dropped
time.sleep(1)
accept_all()
print("after each client sent a byte:", len(accepted), "accepted")
