"""The app served by waitress on a thread: bound port, slow clients, stopping."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from enforcer.record.model import Finding
from enforcer.record.store import DetectionStore
from enforcer.report.server import ApiServer


@pytest.fixture
def server(make_app: Callable[..., Flask]) -> Iterator[ApiServer]:
    served = ApiServer(make_app(), "127.0.0.1", 0)
    served.start()
    yield served
    served.stop()


def fetch(server: ApiServer, path: str, timeout: float = 5) -> tuple[int, str]:
    with urllib.request.urlopen(server.url + path, timeout=timeout) as response:
        return response.status, response.read().decode()


def test_port_zero_binds_a_free_port_and_serves(server: ApiServer) -> None:
    assert server.port > 0
    status, body = fetch(server, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_stalled_clients_neither_block_requests_nor_recording(
    server: ApiServer, store: DetectionStore, make_finding: Callable[..., Finding]
) -> None:
    stalled = []
    try:
        for _ in range(12):  # three times the worker threads
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the end of the headers
            stalled.append(sock)

        started = time.monotonic()
        store.record(make_finding())
        for _ in range(10):
            status, body = fetch(server, "/", timeout=2)
            assert status == 200
        assert time.monotonic() - started < 2
        assert json.loads(body)["detections"][0]["name"] == "/web"
    finally:
        for sock in stalled:
            sock.close()


def test_stop_closes_the_port(make_app: Callable[..., Flask]) -> None:
    served = ApiServer(make_app(), "127.0.0.1", 0)
    served.start()
    port = served.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        assert fetch(served, "/healthz")[0] == 200
        served.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert idle.recv(1) == b"", "open connections are closed too"
    finally:
        idle.close()
    served.stop()  # a second stop does nothing


def test_a_taken_port_is_an_error_at_start(server: ApiServer, make_app: Callable[..., Flask]) -> None:
    with pytest.raises(OSError):
        ApiServer(make_app(), "127.0.0.1", server.port).start()


def raw_get(port: int, path: str, host: str) -> str:
    """The whole answer to a GET sent over a socket with exactly this Host header."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def test_a_foreign_host_header_is_refused_by_the_served_app(server: ApiServer) -> None:
    """What a DNS-rebinding page makes a browser send: the API's address, the attacker's name."""
    refused = raw_get(server.port, "/config", "rebind.attacker.example:8888")
    assert refused.startswith("HTTP/1.1 421 ") and "attacker" not in refused, refused
    answered = raw_get(server.port, "/config", f"127.0.0.1:{server.port}")
    assert answered.startswith("HTTP/1.1 200 ") and '"listen_address"' in answered, answered
