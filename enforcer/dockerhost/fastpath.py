"""A lean HTTP/1.1 client for the three calls on the enforcement path: inspect, kill and remove.

docker-py costs a few milliseconds per call (requests, adapters, version checks). Prevention races the
client's `start` request, which follows `create` by a few milliseconds, so the create -> inspect -> remove
path uses this instead: one kept-alive connection per thread, straight over the unix socket (or plain
TCP). TLS engines keep using docker-py.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import quote, urlsplit

from enforcer.dockerhost.errors import ContainerGone, EngineError, EngineUnavailable


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class FastPath:
    """Raw engine calls over per-thread kept-alive connections; errors as in `dockerhost.errors`."""

    def __init__(self, url: str, api_version: str, timeout_s: float) -> None:
        self._url = urlsplit(url)
        self._prefix = f"/v{api_version}"
        self._timeout = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, so close() can reach them

    @staticmethod
    def supports(url: str, tls: bool) -> bool:
        return not tls and url.startswith(("unix://", "tcp://", "http://"))

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._url.scheme == "unix":
                conn = _UnixConnection(self._url.path, self._timeout)
            else:
                conn = http.client.HTTPConnection(
                    self._url.hostname or "localhost", self._url.port, self._timeout
                )
            self._local.conn = conn
            with self._lock:
                self._open.add(conn)
        return conn

    def close(self) -> None:
        """Close the connections of all threads (a pool's idle threads would otherwise leak them)."""
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            conn.close()

    def request(self, method: str, path: str, what: str) -> Any:
        """One call; retried once on a connection the engine closed while it sat idle."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                with self._lock:
                    self._open.discard(conn)
                if attempt == 2:
                    raise EngineUnavailable(f"{what}: {exc}") from None
                continue
            return _result(response.status, body, what)
        raise AssertionError("unreachable")

    def inspect(self, cid: str) -> Any:
        return self.request("GET", f"/containers/{quote(cid)}/json", f"inspect {cid[:12]}")

    def kill(self, cid: str) -> None:
        self.request("POST", f"/containers/{quote(cid)}/kill", f"kill {cid[:12]}")

    def remove(self, cid: str, force: bool = True) -> None:
        flag = 1 if force else 0
        self.request("DELETE", f"/containers/{quote(cid)}?force={flag}&v=0", f"remove {cid[:12]}")


def _result(status: int, body: bytes, what: str) -> Any:
    if status == 404:
        raise ContainerGone(f"{what}: {_message(body)}")
    if status >= 400:
        raise EngineError(f"{what}: {_message(body)}")
    if not body:
        return None
    return json.loads(body)


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body).get("message", ""))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:200]
