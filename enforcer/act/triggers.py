"""Running the user's triggers on their own bounded worker pool, isolated from the kill path.

A trigger that raises is logged with its name and counted. There is no time limit (a thread cannot be
stopped from outside): one that hangs keeps its worker for good, and once every worker hangs the queue only
fills; yet it never delays a kill, the next check or the daemon's exit (the workers are daemon threads: a
ThreadPoolExecutor's are joined at interpreter exit, so a hung trigger would hold SIGTERM up). One that returns
after more than `slow_after_s` is logged as slow. When the queue is full, the verdict is dropped for triggers
(logged and counted), never blocking the caller.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from enforcer.facts.redaction import Redactor
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
        self._queue: queue.SimpleQueue[tuple[Trigger, Verdict] | None] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(queue_limit)
        self._slow_after_s = slow_after_s
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"trigger_{n}", daemon=True) for n in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, triggers: Sequence[Trigger], verdict: Verdict) -> None:
        """Queue every trigger for this verdict; returns at once."""
        for trigger in triggers:
            if not self._slots.acquire(blocking=False):
                log.error("trigger queue full: %s skipped for %s", trigger, verdict.subject.name)
                self._on_error(trigger.name)
                continue
            if self._closed:
                self._slots.release()
                return
            self._queue.put((trigger, verdict))

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            self._run(*item)

    def _run(self, trigger: Trigger, verdict: Verdict) -> None:
        started = time.monotonic()
        try:
            trigger.call(verdict)
        except Exception as exc:  # noqa: BLE001 - a trigger must never take the daemon down
            # The message may quote the container's env or command line, as a rule's may: redacted alike.
            detail = Redactor(verdict.subject.params).error(exc)
            log.error("%s failed for %s: %s", trigger, verdict.subject.name, detail)
            self._on_error(trigger.name)
        finally:
            self._slots.release()
            elapsed = time.monotonic() - started
            if elapsed > self._slow_after_s:
                log.warning("%s took %.1f s for %s", trigger, elapsed, verdict.subject.name)

    def close(self, wait: bool = False) -> None:
        """Drop the queued calls; with `wait`, also wait for the running ones to end."""
        self._closed = True
        while True:
            try:
                if self._queue.get_nowait() is not None:
                    self._slots.release()
            except queue.Empty:
                break
        for _ in self._workers:
            self._queue.put(None)
        if wait:
            for worker in self._workers:
                worker.join()
