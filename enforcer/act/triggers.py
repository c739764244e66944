"""Running the user's triggers, each in its own lane (a bounded queue and one worker), apart from the kill path.

One lane per trigger name, made on its first call: a trigger that is slow or hangs delays only its own calls,
never another trigger's, a kill, the next check or the daemon's exit (the workers are daemon threads: a
ThreadPoolExecutor's are joined at interpreter exit, so a hung trigger would hold SIGTERM up). There is no time
limit (a thread cannot be stopped from outside): a hung trigger keeps its worker for good, and its queue fills.
A full queue drops its oldest call to make room for the new one (logged and counted per trigger), never
blocking the caller. A trigger that raises is logged with its name (the message redacted) and counted; one
that returns after more than `slow_after_s` is logged as slow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from enforcer.facts.redaction import Redactor
from enforcer.judge.rules import Trigger
from enforcer.judge.verdict import Verdict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """One call of a trigger: its argument, what the logs name it by, and the container's inspect data and the
    arguments of the exec judged, if any (for redacting what an error quotes of them)."""

    trigger: Trigger
    argument: Any
    about: str
    params: Mapping[str, Any] = field(default_factory=dict)
    secret_args: tuple[str, ...] = ()


class _Lane:
    """One trigger's queue and worker."""

    def __init__(self, name: str, runner: TriggerRunner) -> None:
        self.name = name
        self._runner = runner
        self._calls: deque[Call] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self.worker = threading.Thread(target=self._work, name=f"trigger:{name}"[:60], daemon=True)
        self.worker.start()

    def put(self, call: Call, limit: int) -> Call | None:
        """Queue a call; returns the oldest one, dropped to make room, when the queue was full."""
        with self._ready:
            if self._closed:
                return None
            dropped = self._calls.popleft() if len(self._calls) >= limit else None
            self._calls.append(call)
            self._ready.notify()
        return dropped

    def pending(self) -> int:
        with self._ready:
            return len(self._calls)

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._calls.clear()
            self._ready.notify()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._calls and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                call = self._calls.popleft()
            self._runner.run(call)


class TriggerRunner:
    def __init__(
        self,
        on_error: Callable[[str], None],
        queue_limit: int = 100,
        slow_after_s: float = 10.0,
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        """`on_error(name)` counts a failed call, `on_drop(name)` a call dropped from a full queue."""
        self._on_error = on_error
        self._on_drop = on_drop or (lambda name: None)
        self._limit = queue_limit
        self._slow_after_s = slow_after_s
        self._lanes: dict[str, _Lane] = {}
        self._guard = threading.Lock()
        self._closed = False

    def submit(self, triggers: Sequence[Trigger], verdict: Verdict) -> None:
        """Queue every trigger for this verdict (not the notifiers: they get notices); returns at once."""
        subject = verdict.subject
        exec_args = subject.exec.command[1:] if subject.exec else ()
        for trigger in triggers:
            if trigger.once:
                continue
            self.call(Call(trigger, verdict, subject.name, subject.params, exec_args))

    def call(self, call: Call) -> None:
        """Queue one call in its trigger's lane; returns at once."""
        lane = self._lane(call.trigger.name)
        if lane is None:
            return
        dropped = lane.put(call, self._limit)
        if dropped is not None:
            log.error(
                "%s is behind (%d calls queued): its oldest call, for %s, was dropped",
                call.trigger, self._limit, dropped.about,
            )  # fmt: skip
            self._on_drop(call.trigger.name)

    def pending(self, name: str) -> int:
        """Calls queued for a trigger (not counting the one running)."""
        with self._guard:
            lane = self._lanes.get(name)
        return lane.pending() if lane else 0

    def _lane(self, name: str) -> _Lane | None:
        with self._guard:
            if self._closed:
                return None
            lane = self._lanes.get(name)
            if lane is None:
                lane = self._lanes[name] = _Lane(name, self)
            return lane

    def run(self, call: Call) -> None:
        """Call the trigger once; every outcome is logged or counted, nothing escapes."""
        started = time.monotonic()
        try:
            call.trigger.call(call.argument)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a trigger must never take the daemon down
            # (sys.exit() in a trigger would otherwise end its lane's worker without a word)
            # The message may quote the container's env or command line, as a rule's may: redacted alike.
            detail = Redactor(call.params, call.secret_args).error(exc)
            log.error("%s failed for %s: %s", call.trigger, call.about, detail)
            self._on_error(call.trigger.name)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > self._slow_after_s:
                log.warning("%s took %.1f s for %s", call.trigger, elapsed, call.about)

    def close(self, wait: bool = False) -> None:
        """Drop the queued calls; with `wait`, also wait for the running ones to end."""
        with self._guard:
            self._closed = True
            lanes = list(self._lanes.values())
        for lane in lanes:
            lane.close()
        if wait:
            for lane in lanes:
                lane.worker.join()
