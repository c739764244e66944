"""CPU, memory and uptime of a container as `docker stats` shows them, from stats and inspect JSON (pure).

CPU % follows the docker CLI (cli/command/container/stats_helpers.go): the container's CPU time over the
host's between two samples, times the online CPUs, so two busy cores read 200. One-shot stats leave
`precpu_stats` empty, so the previous sample of the same container is kept (`CpuHistory`); a container's
first sample is measured since it started. Memory excludes the page cache (`total_inactive_file` on
cgroup v1, `inactive_file` on v2) and is a percentage of the container's limit, or of the host's memory.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

NS_PER_S = 1_000_000_000


class FactUnavailable(LookupError):
    """A fact that cannot be known at this point (metrics before a container starts, for example)."""


def _cpu_times(cpu_stats: Mapping[str, Any] | None) -> tuple[int, int, int]:
    """(container CPU ns, host CPU ns, online CPUs) of one `cpu_stats`; zeros where missing."""
    cpu_stats = cpu_stats or {}
    usage = cpu_stats.get("cpu_usage") or {}
    online = int(cpu_stats.get("online_cpus") or 0) or len(usage.get("percpu_usage") or ())
    return int(usage.get("total_usage") or 0), int(cpu_stats.get("system_cpu_usage") or 0), online


def cpu_percent(
    stats: Mapping[str, Any], previous: Mapping[str, Any] | None = None, uptime_s: float | None = None
) -> float:
    """CPU use in percent of one CPU: since `previous` (an earlier `cpu_stats` of the same container), else
    since `precpu_stats` when the engine filled it, else since the container started (`uptime_s`)."""
    used, host, online = _cpu_times(stats.get("cpu_stats"))
    before = previous if previous is not None else stats.get("precpu_stats")
    used0, host0, _ = _cpu_times(before)
    if host0 > 0 and host > host0 and online > 0:
        used_delta = used - used0
        return used_delta / (host - host0) * online * 100 if used_delta > 0 else 0.0
    if uptime_s is not None and uptime_s > 0:
        return used / (uptime_s * NS_PER_S) * 100
    return 0.0


def memory_bytes(stats: Mapping[str, Any]) -> int:
    """Memory in use without the page cache, as `docker stats` counts it."""
    memory = stats.get("memory_stats") or {}
    if "usage" not in memory:
        raise FactUnavailable("no memory figures in the stats (not running, or metrics disabled)")
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0  # cgroup v1, v2
    return usage - int(cache) if int(cache) < usage else usage


def memory_percent(stats: Mapping[str, Any]) -> float:
    """`memory_bytes` in percent of the container's limit (the host's memory when it has none)."""
    limit = int((stats.get("memory_stats") or {}).get("limit") or 0)
    used = memory_bytes(stats)
    return used / limit * 100 if limit > 0 else 0.0


def parse_time(stamp: str) -> datetime | None:
    """Docker's RFC 3339 time (nanoseconds, `Z`) as a datetime; None for the zero time or junk."""
    if not stamp or stamp.startswith("0001-"):
        return None
    head, _, rest = stamp.partition(".")
    fraction = rest.rstrip("Z")[:6] if rest else ""
    try:
        when = datetime.fromisoformat(head.rstrip("Z"))
    except ValueError:
        return None
    micros = int(fraction.ljust(6, "0")) if fraction.isdigit() else 0
    return when.replace(microsecond=micros, tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


def uptime_s(params: Mapping[str, Any], now: datetime) -> float:
    """Seconds since the container last started (State.StartedAt); FactUnavailable when it is not running."""
    state = params.get("State") or {}
    started = parse_time(str(state.get("StartedAt") or ""))
    if started is None or state.get("Running") is False:
        raise FactUnavailable("the container is not running: no uptime")
    return max(0.0, (now - started).total_seconds())


def restarted(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """CPU time only grows during one run of a container: less of it is a new run."""
    return _cpu_times(after)[0] < _cpu_times(before)[0]


class CpuHistory:
    """The latest `cpu_stats` of each container sampled, so the next sample measures since it (thread-safe).

    Bounded by the containers running: `keep_only` drops the others after each round of samples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, tuple[str, Mapping[str, Any]]] = {}

    def swap(self, cid: str, started: str, stats: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Keep this sample's `cpu_stats`; return the previous one of the same run of the container (None
        for its first sample, or after it restarted)."""
        cpu = stats.get("cpu_stats") or {}
        with self._lock:
            before = self._last.get(cid)
            self._last[cid] = (started, cpu)
        return (
            before[1]
            if before is not None and before[0] == started and not restarted(before[1], cpu)
            else None
        )

    def restarted(self, cid: str, stats: Mapping[str, Any]) -> bool:
        """Whether this sample's CPU time is below the previous one's: a new run of the container (its
        State.StartedAt may not be known yet, from a cached inspect)."""
        with self._lock:
            before = self._last.get(cid)
        return before is not None and restarted(before[1], stats.get("cpu_stats") or {})

    def keep_only(self, running: Iterable[str]) -> None:
        keep = set(running)
        with self._lock:
            for cid in [cid for cid in self._last if cid not in keep]:
                del self._last[cid]

    def __len__(self) -> int:
        with self._lock:
            return len(self._last)
