"""Serving the status app inside the daemon with waitress, on a thread of its own.

Waitress reads requests and writes responses on one non-blocking loop and runs the app on a few worker
threads, so a slow or stalled client holds a socket, never a worker; idle connections are dropped after
CHANNEL_TIMEOUT_S. Nothing here touches the enforcement threads: the only thing they share is the store,
whose reads never block its writes.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import waitress
from waitress.server import BaseWSGIServer

log = logging.getLogger(__name__)

THREADS = 4
CHANNEL_TIMEOUT_S = 10  # an idle or stalled connection is closed after this long
CLEANUP_INTERVAL_S = 2  # how often waitress looks for such connections
CONNECTION_LIMIT = 100
MAX_REQUEST_BODY = 64 * 1024  # a read-only API needs no request bodies
STOP_TIMEOUT_S = 5.0


class ApiServer:
    """The WSGI app served on host:port; `start()` binds and serves, `stop()` closes every socket.

    `port` is the bound port once started, also when 0 asked for any free port.
    """

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __str__(self) -> str:
        return f"Status API on {self.url}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Bind the port (raising OSError when it is taken) and serve on a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"{self} is already started")
        # Bound here rather than by waitress, which leaks its half-made server when bind() fails.
        listener = _bind(self.host, self.port)
        try:
            server = waitress.create_server(
                self.app,
                sockets=[listener],
                threads=THREADS,
                channel_timeout=CHANNEL_TIMEOUT_S,
                cleanup_interval=CLEANUP_INTERVAL_S,
                connection_limit=CONNECTION_LIMIT,
                max_request_body_size=MAX_REQUEST_BODY,
                ident="docker-enforcer",
            )
        except BaseException:
            listener.close()
            raise
        self._server = server
        self.port = int(server.effective_port)
        self._thread = threading.Thread(target=self._serve, name="api-server", daemon=True)
        self._thread.start()
        log.info("status API listening on %s", self.url)

    def _serve(self) -> None:
        assert self._server is not None
        try:
            self._server.run()
        except Exception:  # the loop is the server: its death must be visible
            log.exception("status API server stopped with an error")

    def stop(self) -> None:
        """Close the listening socket and every connection, and stop the worker threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        socket_map = server._map
        trigger = _trigger(socket_map)
        if thread is not None and thread.is_alive() and trigger is not None:
            # Close from the loop's own thread, between two polls: the loop then ends, its map being empty.
            trigger.pull_trigger(lambda: waitress.wasyncore.close_all(socket_map))
            thread.join(STOP_TIMEOUT_S)
        if thread is not None and thread.is_alive():
            log.warning("status API server did not stop within %s s", STOP_TIMEOUT_S)
        else:
            waitress.wasyncore.close_all(socket_map)
        server.task_dispatcher.shutdown(timeout=STOP_TIMEOUT_S)
        self._server = self._thread = None


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except BaseException:
        listener.close()
        raise
    return listener


def _trigger(socket_map: dict[int, Any]) -> Any:
    for dispatcher in list(socket_map.values()):
        if hasattr(dispatcher, "pull_trigger"):
            return dispatcher
    return None
