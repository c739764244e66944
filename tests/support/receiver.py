"""A tiny threaded HTTP receiver on loopback for notifier tests: records every POST, answers as told.

with Receiver(fail_first=2) as r:      # 500 to the first two posts, then 200
    ... r.url ...                      # http://127.0.0.1:PORT/hook/SECRET-TOKEN
    r.bodies                           # JSON bodies of the posts answered 200
    r.posts                            # every post: (path, headers, body)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "SECRET-TOKEN-3f9a7c"  # in the path of every receiver URL: must never show in the API, page or log


class Receiver:
    def __init__(self, fail_first: int = 0, hang: bool = False, status: int = 500) -> None:
        self.fail_first = fail_first
        self.hang = hang
        self.status = status
        self.posts: list[tuple[str, dict[str, str], Any]] = []
        self.bodies: list[Any] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/{TOKEN}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver._lock:
                    receiver.posts.append((self.path, dict(self.headers), body))
                    failing = len(receiver.posts) <= receiver.fail_first
                    if not failing and not receiver.hang:
                        receiver.bodies.append(body)
                if receiver.hang:
                    receiver.release.wait(60)
                    return
                self.send_response(receiver.status if failing else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(list(self.bodies)):
                    return True
            time.sleep(0.02)
        return False

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
