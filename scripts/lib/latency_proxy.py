"""A TCP proxy that adds network latency in front of a PostgreSQL server's Unix socket.

    python3 scripts/lib/latency_proxy.py PORT SOCKET RTT_MS

Listens on 127.0.0.1:PORT and forwards each connection to the Unix socket SOCKET, holding every
piece of data RTT_MS / 2 milliseconds in each direction (in order), so a client sees a server
RTT_MS away, as one in another zone or a managed service would be. Used by `scripts/bench.sh
--latency`. Threads and `time.sleep` (an event loop's timers round up to whole milliseconds).
It forwards a few hundred MB/s at most: for data sets bound by round trips (many tables, many
partitions), not by bytes.
"""

import queue
import socket
import sys
import threading
import time


def forward(source, target, delay):
    """Copies source to target, each piece delay seconds after it arrived."""
    pending = queue.Queue()

    def deliver():
        while True:
            due, data = pending.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                break
            try:
                target.sendall(data)
            except OSError:
                break
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    delivering = threading.Thread(target=deliver, daemon=True)
    delivering.start()
    while True:
        try:
            data = source.recv(1 << 20)
        except OSError:
            data = b""
        pending.put((time.monotonic() + delay, data))
        if not data:
            break
    delivering.join()


def serve(client, socket_path, delay):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.connect(socket_path)
    except OSError:
        client.close()
        return
    for sock in (client, server):
        if sock.family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    upstream = threading.Thread(target=forward, args=(client, server, delay), daemon=True)
    upstream.start()
    forward(server, client, delay)
    upstream.join()
    client.close()
    server.close()


def main(port, socket_path, delay):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print("listening", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve, args=(client, socket_path, delay), daemon=True).start()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]) / 2000)
