"""HTTP/1.1 over a unix socket with nothing but the standard library: the benchmarks' reference loops use it
to show what the engine costs on its own, without docker-py or docker-enforcer in the way."""

from __future__ import annotations

import http.client
import socket


class UnixHTTP(http.client.HTTPConnection):
    """A kept-alive connection to the engine's socket, blocking (no timeout): event streams sit idle."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)
