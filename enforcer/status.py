"""The daemon's health, shared by the sources and the status API: engine, event stream, sweeps."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from enforcer.record.model import utcnow
from enforcer.settings import Settings


@dataclass
class SweepTimes:
    start: datetime | None = None
    end: datetime | None = None

    @property
    def duration(self) -> timedelta | None:
        if self.start is None or self.end is None or self.end < self.start:
            return None
        return self.end - self.start


@dataclass
class Status:
    """Mutable, thread-safe snapshot holder; readers get copies through the methods."""

    settings: Settings
    started_at: datetime = field(default_factory=utcnow)
    engine_ok: bool = False
    engine_error: str | None = None
    engine_host: str | None = None  # the engine's `docker info` Name: the Docker host's name
    events_connected: bool = False
    last_sweep: SweepTimes = field(default_factory=SweepTimes)  # the last finished sweep
    sweep_running_since: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_engine(self, ok: bool, error: str | None = None) -> bool:
        """Record engine reachability; True when that changed (so callers log once per change)."""
        with self._lock:
            changed = self.engine_ok != ok
            self.engine_ok, self.engine_error = ok, error
            return changed

    def set_events_connected(self, connected: bool) -> None:
        with self._lock:
            self.events_connected = connected

    def sweep_started(self, when: datetime) -> None:
        with self._lock:
            self.sweep_running_since = when

    def sweep_failed(self) -> None:
        """A sweep that could not finish: no longer running, and the last finished one stays as it was."""
        with self._lock:
            self.sweep_running_since = None

    def sweep_finished(self, start: datetime, end: datetime) -> None:
        with self._lock:
            self.last_sweep = SweepTimes(start, end)
            self.sweep_running_since = None

    def problems(self, now: datetime | None = None) -> list[str]:
        """What is wrong, for /healthz (empty when healthy)."""
        now = now or utcnow()
        with self._lock:
            out = []
            if not self.engine_ok:
                out.append(f"docker engine unreachable: {self.engine_error or 'not connected yet'}")
            if self.settings.run_start_events and not self.events_connected:
                out.append("event stream disconnected")
            if self.settings.run_periodic:
                limit = timedelta(seconds=2 * self.settings.check_interval_s)
                last = self.last_sweep.end or self.started_at
                if now - last > limit:
                    out.append(f"no sweep finished since {last.isoformat()} (more than two intervals)")
            return out
