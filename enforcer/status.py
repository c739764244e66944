"""The daemon's health (engine, event stream, sweeps, long-lived workers), kept by one owner.

Every change goes through `Health`'s methods, which build a new frozen `HealthSnapshot` under the lock and
swap it in; readers (the status API, the page) take `snapshot()` and never see a change half made. Whether
the engine is "reachable again" is decided here alone, from what the sources report, and logged once per
change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from enforcer.record.model import utcnow
from enforcer.settings import Settings

log = logging.getLogger("enforcer.status")


@dataclass(frozen=True)
class SweepTimes:
    start: datetime | None = None
    end: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        if self.start is None or self.end is None or self.end < self.start:
            return None
        return self.end - self.start


@dataclass(frozen=True)
class HealthSnapshot:
    """The daemon's health at one moment; `problems()` says what is wrong with it."""

    started_at: datetime
    engine_ok: bool = False
    engine_error: str | None = None  # None while no request has failed since the engine last answered
    engine_answered_once: bool = False
    engine_host: str | None = None  # the engine's `docker info` Name: the Docker host's name
    events_connected: bool = False
    last_sweep: SweepTimes = SweepTimes()  # the last finished sweep
    sweep_running_since: datetime | None = None
    dead_workers: tuple[str, ...] = ()

    @property
    def last_sweep_began(self) -> datetime | None:
        """When the running sweep began, else the last finished one (the cut of /recent)."""
        return self.sweep_running_since or self.last_sweep.start

    def problems(self, settings: Settings, now: datetime | None = None) -> list[str]:
        """What is wrong, for /healthz (empty when healthy)."""
        now = now or utcnow()
        out = [f"worker {name} died" for name in self.dead_workers]
        if not self.engine_ok:
            out.append(f"docker engine unreachable: {self.engine_error or 'not connected yet'}")
        if settings.run_start_events and not self.events_connected:
            out.append("event stream disconnected")
        if settings.run_periodic:
            limit = timedelta(seconds=2 * settings.check_interval_s)
            last = self.last_sweep.end or self.started_at
            if now - last > limit:
                out.append(f"no sweep finished since {last.isoformat()} (more than two intervals)")
        return out


class Health:
    """The one writer of the daemon's health; `snapshot()` is what everyone else reads."""

    def __init__(self, started_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = HealthSnapshot(started_at or utcnow())

    def snapshot(self) -> HealthSnapshot:
        return self._now

    # -- the engine ------------------------------------------------------------------------------------
    def engine_answered(self, host_name: str | None = None) -> None:
        """A request reached the engine. Logs "reachable again" when it had answered before, then failed."""
        old = self._change(
            lambda s: replace(
                s, engine_ok=True, engine_error=None, engine_answered_once=True,
                engine_host=host_name or s.engine_host,
            )
        )  # fmt: skip
        if old.engine_answered_once and not old.engine_ok:
            log.info("docker engine reachable again")

    def engine_unreachable(self, error: str) -> bool:
        """A request failed for want of the engine; True when that is news (the caller logs what it was doing)."""
        old = self._change(lambda s: replace(s, engine_ok=False, engine_error=error))
        return old.engine_error is None

    # -- the event stream, sweeps, workers -------------------------------------------------------------
    def events_connected(self, connected: bool) -> None:
        self._change(lambda s: replace(s, events_connected=connected))

    def sweep_started(self, when: datetime) -> None:
        self._change(lambda s: replace(s, sweep_running_since=when))

    def sweep_failed(self) -> None:
        """A sweep that could not finish: no longer running, and the last finished one stays as it was."""
        self._change(lambda s: replace(s, sweep_running_since=None))

    def sweep_finished(self, start: datetime, end: datetime) -> None:
        self._change(lambda s: replace(s, last_sweep=SweepTimes(start, end), sweep_running_since=None))

    def worker_died(self, name: str) -> None:
        """A long-lived worker ended while the daemon runs: unhealthy until the daemon is restarted."""
        self._change(lambda s: replace(s, dead_workers=(*s.dead_workers, name)))

    def _change(self, change: Callable[[HealthSnapshot], HealthSnapshot]) -> HealthSnapshot:
        """Swap in change(current) as one step; returns the snapshot it replaced."""
        with self._lock:
            old = self._now
            self._now = change(old)
            return old
