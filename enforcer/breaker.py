"""The stop-rate breaker: past MAX_STOPS_PER_MINUTE actions within a minute, further actions are held.

A held action is not done: the violator is recorded as in WARN mode, its outcome "held". The breaker lets
actions through again as soon as fewer than the limit went out in the last minute. It is consulted on the
kill path (pipeline) and the create-time path (prevention), so `admit` does no I/O and costs O(1) amortized: the
times of the actions let through within the last minute; the next may go while fewer than `limit` are.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("enforcer.breaker")
WINDOW_S = 60.0


@dataclass(frozen=True)
class BreakerState:
    """What the breaker holds back now; `tripped` while it held an action within the last minute and has let
    none through since."""

    limit: int
    tripped: bool
    held: int  # actions held since the breaker tripped

    def warning(self) -> str | None:
        if not self.tripped:
            return None
        return (
            f"stop-rate breaker tripped: more than {self.limit} actions in a minute; {self.held} action(s) "
            "held since (recorded, not done) until the rate falls (MAX_STOPS_PER_MINUTE)"
        )


class StopRateBreaker:
    """Lets at most `limit` actions through in any minute (0: no limit); thread-safe."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        # When each of the last `limit` admitted actions went out, the oldest first: as long as the actions
        # of a minute, never as long as the limit (MAX_STOPS_PER_MINUTE=1000000000 allocates nothing).
        self._sent: deque[float] = deque(maxlen=limit or None)
        self._held = 0
        self._last_held = -WINDOW_S

    @property
    def detail(self) -> str:
        """The outcome detail of a held action."""
        return f"stop-rate breaker: more than {self.limit} actions in a minute (MAX_STOPS_PER_MINUTE)"

    def admit(self) -> bool:
        """Whether an action may go out now (it is counted); False: hold it."""
        if self.limit == 0:
            return True
        now = self._clock()
        with self._lock:
            while self._sent and now - self._sent[0] >= WINDOW_S:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                released, self._held = self._held, 0
                admitted = True
            else:
                self._held += 1
                self._last_held = now
                released, admitted = 0, False
            first_held = self._held == 1
        if released:
            log.warning("stop-rate breaker closed: actions go out again (%d were held)", released)
        elif first_held:
            log.error(
                "stop-rate breaker tripped: more than %d actions in the last minute; further violators are "
                "recorded as held, not acted on, until the rate falls (MAX_STOPS_PER_MINUTE)",
                self.limit,
            )
        return admitted

    def state(self) -> BreakerState:
        now = self._clock()
        with self._lock:
            held = self._held
            tripped = held > 0 and now - self._last_held < WINDOW_S
        return BreakerState(self.limit, tripped, held)
