"""Running the user's triggers on their own bounded worker pool, isolated from the kill path.

A trigger that raises is logged with its name and counted; one that hangs occupies one worker, is reported
once it passes the time limit, and never delays a kill or the next check. When the queue is full, the
verdict is dropped for triggers (logged and counted), never blocking the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from enforcer.judge.rules import Trigger
from enforcer.judge.verdict import Verdict

log = logging.getLogger(__name__)


class TriggerRunner:
    def __init__(
        self,
        on_error: Callable[[str], None],
        workers: int = 4,
        queue_limit: int = 1000,
        slow_after_s: float = 10.0,
    ) -> None:
        self._on_error = on_error
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trigger")
        self._slots = threading.BoundedSemaphore(queue_limit)
        self._slow_after_s = slow_after_s

    def submit(self, triggers: Sequence[Trigger], verdict: Verdict) -> None:
        """Queue every trigger for this verdict; returns at once."""
        for trigger in triggers:
            if not self._slots.acquire(blocking=False):
                log.error("trigger queue full: %s skipped for %s", trigger, verdict.subject.name)
                self._on_error(trigger.name)
                continue
            try:
                self._pool.submit(self._run, trigger, verdict)
            except RuntimeError:  # shutting down
                self._slots.release()

    def _run(self, trigger: Trigger, verdict: Verdict) -> None:
        started = time.monotonic()
        try:
            trigger.call(verdict)
        except Exception as exc:  # noqa: BLE001 - a trigger must never take the daemon down
            log.error("%s failed for %s: %s: %s", trigger, verdict.subject.name, type(exc).__name__, exc)
            self._on_error(trigger.name)
        finally:
            self._slots.release()
            elapsed = time.monotonic() - started
            if elapsed > self._slow_after_s:
                log.warning("%s took %.1f s for %s", trigger, elapsed, verdict.subject.name)

    def close(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
