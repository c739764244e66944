"""CPU, memory and uptime as `docker stats` shows them, on stats JSON captured from the engine."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from enforcer.facts.container import Container, FactUnavailable
from enforcer.facts.usage import CpuHistory, cpu_percent, memory_bytes, memory_percent, parse_time

DATA = Path(__file__).resolve().parent.parent / "data"
STATS: dict[str, Any] = json.loads((DATA / "stats.json").read_text())
PARAMS: dict[str, Any] = json.loads((DATA / "plain.json").read_text())[0]


def later(stats: dict[str, Any], used_ns: int, host_ns: int) -> dict[str, Any]:
    """The same container's next sample: `used_ns` more CPU time while the host spent `host_ns`."""
    out = copy.deepcopy(stats)
    out["cpu_stats"]["cpu_usage"]["total_usage"] += used_ns
    out["cpu_stats"]["system_cpu_usage"] += host_ns
    return out


def test_two_busy_cores_read_200_between_two_samples() -> None:
    # 2 online CPUs: the host spends 2 s of CPU per second of wall time; the container used both.
    after = later(STATS, used_ns=2_000_000_000, host_ns=2_000_000_000)
    assert cpu_percent(after, STATS["cpu_stats"]) == pytest.approx(200.0)
    half = later(STATS, used_ns=500_000_000, host_ns=2_000_000_000)
    assert cpu_percent(half, STATS["cpu_stats"]) == pytest.approx(50.0)


def test_a_one_shot_sample_alone_is_measured_since_the_container_started() -> None:
    assert STATS["precpu_stats"].get("system_cpu_usage") is None  # one-shot leaves precpu empty
    used = STATS["cpu_stats"]["cpu_usage"]["total_usage"]  # 21.5 ms
    assert cpu_percent(STATS, None, uptime_s=1.0) == pytest.approx(used / 1e9 * 100)
    assert cpu_percent(STATS) == 0.0  # nothing to measure against


def test_an_idle_container_reads_zero_and_never_negative() -> None:
    assert cpu_percent(later(STATS, 0, 2_000_000_000), STATS["cpu_stats"]) == 0.0


def test_memory_excludes_the_page_cache_and_is_a_share_of_the_limit() -> None:
    assert memory_bytes(STATS) == 552960  # total_inactive_file is 0 in this sample
    cached = copy.deepcopy(STATS)
    cached["memory_stats"]["stats"]["total_inactive_file"] = 52960
    assert memory_bytes(cached) == 500000
    v2 = copy.deepcopy(STATS)
    v2["memory_stats"]["stats"] = {"inactive_file": 2960}
    assert memory_bytes(v2) == 550000
    assert memory_percent(STATS) == pytest.approx(552960 / 25276514304 * 100)
    with pytest.raises(FactUnavailable):
        memory_bytes({})


def test_history_gives_the_previous_sample_of_the_same_run_only() -> None:
    history = CpuHistory()
    assert history.swap("c1", "run1", STATS) is None
    assert history.swap("c1", "run1", STATS) == STATS["cpu_stats"]
    assert history.swap("c1", "run2", STATS) is None  # restarted: measured since its start again
    history.keep_only(["c2"])
    assert len(history) == 0


def test_less_cpu_time_than_before_is_a_restart_even_with_a_stale_start_time() -> None:
    history = CpuHistory()
    busy = later(STATS, used_ns=5_000_000_000, host_ns=10_000_000_000)
    history.swap("c1", "run1", busy)
    assert history.restarted("c1", STATS) and not history.restarted("c1", busy)
    assert history.swap("c1", "run1", STATS) is None  # measured since its start, not against the old run


def test_the_container_object_exposes_the_facts() -> None:
    started = parse_time(PARAMS["State"]["StartedAt"])
    assert started is not None
    c = Container(PARAMS["Id"], PARAMS, metrics=STATS, checked_at=started + timedelta(seconds=90))
    assert c.uptime_s == pytest.approx(90.0)
    assert c.memory_bytes == 552960
    assert c.cpu_percent == pytest.approx(STATS["cpu_stats"]["cpu_usage"]["total_usage"] / 90e9 * 100)
    assert Container("x", PARAMS, metrics=STATS, cpu_percent=12.5).cpu_percent == 12.5
    with pytest.raises(FactUnavailable):
        _ = Container("x", PARAMS).memory_percent  # no stats


def test_docker_times_parse_to_the_microsecond() -> None:
    assert parse_time("2026-11-24T07:16:25.589138323Z") == datetime(2026, 11, 24, 7, 16, 25, 589138, UTC)
    assert parse_time("2026-11-24T07:16:25Z") == datetime(2026, 11, 24, 7, 16, 25, tzinfo=UTC)
    assert parse_time("0001-01-01T00:00:00Z") is None
