"""The answer to a request sent ahead of time: see whether it has arrived, then read it (once, on any thread)."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Answer(Generic[T]):
    """`ready(timeout)` waits up to `timeout` seconds for the answer to arrive; calling it reads it.

    Made with the socket the request went out on; without one, `ready` says `arrived` (True for an answer
    that needs no engine, False for a request that is only made when the answer is read).
    """

    def __init__(
        self, read: Callable[[], T], sock: socket.socket | None = None, *, arrived: bool = False
    ) -> None:
        self._read = read
        self._sock = sock
        self._arrived = arrived

    def ready(self, timeout_s: float) -> bool:
        if self._sock is None:
            return self._arrived
        try:
            poller = select.poll()  # not select(): no limit on the descriptor's number
            poller.register(self._sock, select.POLLIN)
            return bool(poller.poll(timeout_s * 1000))
        except (OSError, ValueError):  # closed meanwhile: reading it says what happened
            return True

    def __call__(self) -> T:
        return self._read()
