"""Verdicts judged when a container was created, kept for its start check.

A create check judges a container on its params; unless it removed the container, the start check reuses that
verdict instead of inspecting and judging again, when the rules have not changed since and no rule waited for
facts only a running container has (metrics, position). Bounded: the oldest entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from enforcer.judge.verdict import Verdict

PENDING_LIMIT = 10_000


@dataclass(frozen=True)
class Kept:
    """What the create check left for the start check.

    `verdict`: the create-time verdict if it still holds (or if the create check acted on it already);
    `left_for_start`: the rules it left for the start (none known when it did not run first);
    `acted`: the create check found the container started and stopped it already.
    """

    verdict: Verdict | None = None
    left_for_start: tuple[str, ...] = ()
    acted: bool = False


NOTHING_KEPT = Kept()


class PendingVerdicts:
    """container id -> (rules version, create-time verdict, whether the create check acted); thread-safe."""

    def __init__(self, limit: int = PENDING_LIMIT) -> None:
        self._limit = limit
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[str, Verdict, bool]] = OrderedDict()

    def keep(self, cid: str, version: str, verdict: Verdict, acted: bool = False) -> None:
        with self._lock:
            self._kept[cid] = (version, verdict, acted)
            while len(self._kept) > self._limit:
                self._kept.popitem(last=False)

    def take(self, cid: str, version: str) -> Kept:
        """Remove and return what was kept for `cid`, judged against the rules version now in force."""
        with self._lock:
            kept = self._kept.pop(cid, None)
        if kept is None:
            return NOTHING_KEPT
        kept_version, verdict, acted = kept
        if acted:
            return Kept(verdict, (), True)
        if kept_version != version or verdict.deferred:
            return Kept(None, verdict.deferred, False)
        return Kept(verdict, (), False)

    def forget(self, cid: str) -> None:
        with self._lock:
            self._kept.pop(cid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)
