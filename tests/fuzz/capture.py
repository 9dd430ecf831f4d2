#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Records what a TLS client sends, for the fuzz corpora (tests/fuzz/capture_seeds.sh).

    capture.py LISTEN_PORT SERVER_PORT OUT [PREFIX_HEX]

Listens on 127.0.0.1:LISTEN_PORT for one connection, relays it to 127.0.0.1:SERVER_PORT both
ways, and writes PREFIX_HEX's bytes (the fuzz target's selector byte) followed by every byte
the client sent into OUT when the connection ends. Prints "ready" once listening. Gives up
after 20 seconds.
"""
import select
import socket
import sys
import time


def main():
    listen_port, server_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    prefix = bytes.fromhex(sys.argv[4]) if len(sys.argv) > 4 else b""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen_port))
    lsock.listen(1)
    print("ready", flush=True)
    deadline = time.monotonic() + 20
    lsock.settimeout(20)
    client, _ = lsock.accept()
    lsock.close()
    server = socket.create_connection(("127.0.0.1", server_port), timeout=5)
    sent = bytearray()
    peers = {client: server, server: client}
    open_ends = {client, server}
    while open_ends and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_ends), [], [], 0.5)
        for s in ready:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_ends.discard(s)
                try:
                    peers[s].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if s is client:
                sent += data
            try:
                peers[s].sendall(data)
            except OSError:
                open_ends.discard(s)
    client.close()
    server.close()
    with open(out, "wb") as f:
        f.write(prefix + bytes(sent))


if __name__ == "__main__":
    main()
