"""A lean HTTP/1.1 client for the calls on the enforcement path: the event stream, inspect, kill and remove.

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
from collections.abc import Iterator
from contextlib import suppress
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from enforcer.dockerhost.answer import Answer
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


# Requests sent ahead (`begin`) hold a connection each until their answer is read: past this many, a request
# is sent when its answer is asked for, as usual.
MAX_AHEAD = 64


class FastPath:
    """Raw engine calls over per-thread kept-alive connections; errors as in `dockerhost.errors`.

    `begin` sends a request at once and leaves reading its answer to whichever thread asks for it: the event
    reader sends a created container's inspect as the event arrives, then judges it itself once the engine
    has answered, or hands the check to a worker.
    """

    def __init__(self, url: str, api_version: str, timeout_s: float) -> None:
        self._url = urlsplit(url)
        self._prefix = f"/v{api_version}"
        self._one_shot = _version(api_version) >= (1, 41)
        self._timeout = timeout_s
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, so close() can reach them
        self._spare: list[http.client.HTTPConnection] = []  # for requests sent ahead, not tied to a thread
        self._ahead = 0

    @staticmethod
    def supports(url: str, tls: bool) -> bool:
        return not tls and url.startswith(("unix://", "tcp://", "http://"))

    def _new_connection(self, tracked: bool = True) -> http.client.HTTPConnection:
        """A connection, not yet open; `tracked` ones are closed by `close()`."""
        conn: http.client.HTTPConnection
        if self._url.scheme == "unix":
            conn = _UnixConnection(self._url.path, self._timeout)
        else:
            conn = http.client.HTTPConnection(
                self._url.hostname or "localhost", self._url.port, self._timeout
            )
        if tracked:
            with self._lock:
                self._open.add(conn)
        return conn

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_connection()
        return conn

    def _discard(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def close(self) -> None:
        """Close the connections of all threads (a pool's idle threads would otherwise leak them)."""
        with self._lock:
            conns, self._open, self._spare = self._open, set(), []
        for conn in conns:
            conn.close()

    def begin(self, method: str, path: str, what: str) -> Answer[Any]:
        """Send a request now; its answer is read when asked for (once, on any thread).

        A kept-alive connection the engine closed meanwhile fails at the send or at the read: the request is
        then made again the usual way, so only requests that can be repeated may be sent ahead (an inspect;
        a removal, which repeated finds the container gone).
        """
        with self._lock:
            if self._ahead >= MAX_AHEAD:
                return Answer(lambda: self.request(method, path, what))
            self._ahead += 1
            spare = self._spare.pop() if self._spare else None
        conn = spare or self._new_connection()
        try:
            conn.request(method, self._prefix + path)
            sent = True
        except (OSError, http.client.HTTPException):
            self._discard(conn)
            sent = False

        def answer() -> Any:
            try:
                if not sent:
                    return self.request(method, path, what)
                try:
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException):
                    self._discard(conn)
                    return self.request(method, path, what)
                with self._lock:
                    if conn in self._open:  # not closed by close() meanwhile
                        self._spare.append(conn)
                return _result(response.status, body, what)
            finally:
                with self._lock:
                    self._ahead -= 1

        return Answer(answer, conn.sock if sent else None)

    def request(self, method: str, path: str, what: str) -> Any:
        """One call; retried once on a connection the engine closed while it sat idle."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._discard(conn)
                self._local.conn = None
                if attempt == 2:
                    raise EngineUnavailable(f"{what}: {exc}") from None
                continue
            return _result(response.status, body, what)
        raise AssertionError("unreachable")

    def events(self, since: float | None, filters: dict[str, Any] | None) -> EventLines:
        """Open the event stream on a connection of its own (no read timeout: it sits idle between events)."""
        query = {}
        if since is not None:
            query["since"] = f"{since:.9f}"
        if filters:
            query["filters"] = json.dumps(filters)
        conn = self._new_connection(tracked=False)  # closed by its stream, not with the request connections
        try:
            conn.request("GET", f"{self._prefix}/events?{urlencode(query)}")
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineUnavailable(f"events: {exc}") from None
        if response.status != 200:
            body = response.read()
            conn.close()
            raise EngineError(f"events: {_message(body)}")
        assert conn.sock is not None
        conn.sock.settimeout(None)
        return EventLines(conn, response)

    def inspect(self, cid: str) -> Any:
        return self.request("GET", f"/containers/{quote(cid)}/json", f"inspect {cid[:12]}")

    def inspect_soon(self, cid: str) -> Answer[Any]:
        return self.begin("GET", f"/containers/{quote(cid)}/json", f"inspect {cid[:12]}")

    def inspect_image(self, image_id: str) -> Any:
        return self.request("GET", f"/images/{quote(image_id)}/json", f"inspect image {image_id[:19]}")

    def inspect_exec(self, exec_id: str) -> Any:
        return self.request("GET", f"/exec/{quote(exec_id)}/json", f"inspect exec {exec_id[:12]}")

    def stats(self, cid: str) -> Any:
        """One stats sample; `one-shot` (API 1.41 on) answers on the engine's next stats tick instead of two."""
        query = "stream=false&one-shot=true" if self._one_shot else "stream=false"
        stats = self.request("GET", f"/containers/{quote(cid)}/stats?{query}", f"stats {cid[:12]}")
        if stats is None:  # it stopped while the engine waited for its sample: an empty answer
            raise ContainerGone(f"stats {cid[:12]}: the container stopped")
        return stats

    def kill(self, cid: str) -> None:
        self.request("POST", f"/containers/{quote(cid)}/kill", f"kill {cid[:12]}")

    def remove(self, cid: str, force: bool = True) -> None:
        self.request("DELETE", _remove_path(cid, force), f"remove {cid[:12]}")

    def remove_soon(self, cid: str, force: bool = True) -> Answer[Any]:
        return self.begin("DELETE", _remove_path(cid, force), f"remove {cid[:12]}")


class EventLines:
    """An open event stream read straight off its socket: the engine writes one JSON event per line.

    Iterating yields each event decoded (None for a line that is not JSON: the caller skips it as malformed)
    and ends when the engine ends the stream or `close` is called; a failed connection raises
    EngineUnavailable.
    """

    def __init__(self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._response = response
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        try:
            while line := self._response.readline():
                try:
                    yield json.loads(line)
                except ValueError:
                    yield None
        except (OSError, http.client.HTTPException, ValueError, AttributeError) as exc:
            # A cut connection shows as a bad chunk (ValueError); closed under the reader, http.client may
            # also trip over its own released file (AttributeError).
            if self._closed:
                return
            if isinstance(exc, AttributeError):
                raise
            raise EngineUnavailable(f"events: {exc or type(exc).__name__}") from None

    def close(self) -> None:
        """Unblocks a reader waiting for the next event (called from another thread on shutdown)."""
        self._closed = True
        sock = self._conn.sock
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._conn.close()


def _version(api_version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in api_version.split("."))
    except ValueError:
        return ()


def _remove_path(cid: str, force: bool) -> str:
    return f"/containers/{quote(cid)}?force={1 if force else 0}&v=0"


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
