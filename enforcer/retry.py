"""Retry and backoff in one place: capped exponential delays with full jitter, waits that wake on stop.

Every wait between attempts is a wait on the daemon's stop flag: once it is set, a retry gives up at once
(raising the last error). `set_testing(True)` makes every delay zero so tests of retry paths are instant.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_testing = False


def set_testing(on: bool) -> None:
    """Zero delays everywhere (tests); the attempts and the stop flag work as ever."""
    global _testing
    _testing = on


@dataclass(frozen=True)
class Backoff:
    """Delays of base * 2**n, capped at `cap`, each drawn uniformly from [delay/2, delay]."""

    base: float = 0.1
    cap: float = 10.0

    def delays(self) -> Iterator[float]:
        attempt = 0
        while True:
            delay = min(self.cap, self.base * (2**attempt))
            yield 0.0 if _testing else random.uniform(delay / 2, delay)
            attempt += 1


def retry(
    fn: Callable[[], T],
    retry_on: tuple[type[BaseException], ...],
    stop: threading.Event,
    attempts: int = 3,
    backoff: Backoff = Backoff(0.05, 1.0),
    unless: tuple[type[BaseException], ...] = (),
) -> T:
    """Call fn until it succeeds or `attempts` calls failed with one of `retry_on` (the last error is raised).

    Errors in `unless` (say, ContainerGone among EngineErrors) are raised at once, never retried; so is the
    last error once `stop` is set, without waiting out the delay.
    """
    delays = backoff.delays()
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except unless:
            raise
        except retry_on:
            if attempt == attempts:
                raise
            if stop.wait(next(delays)):
                raise
    raise AssertionError("unreachable")
