#!/usr/bin/env python3
"""A Docker Engine API stand-in that answers every request at once with
one canned body (and `_ping` with OK), on a unix socket: what a client
costs by itself, the floor under any real service's figure.

Usage: canned-api.py SOCKET BODY_FILE
"""
import os
import socket
import sys

HEAD = (b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nOstype: linux\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")


def serve(conn, body):
    pending = b""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        pending += data
        while b"\r\n\r\n" in pending:
            request, pending = pending.split(b"\r\n\r\n", 1)
            line = request.split(b"\r\n", 1)[0]
            if b"/_ping" in line:
                answer = b"" if line.startswith(b"HEAD") else b"OK"
                conn.sendall(HEAD % 2 + answer)
            else:
                conn.sendall(HEAD % len(body) + body)


def main():
    path, body_file = sys.argv[1], sys.argv[2]
    with open(body_file, "rb") as f:
        body = f.read()
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(16)
    while True:
        conn, _ = listener.accept()
        with conn:
            serve(conn, body)


if __name__ == "__main__":
    main()
