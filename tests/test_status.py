"""The daemon's health: one owner, frozen snapshots for readers, one decision on "engine reachable again"."""

from __future__ import annotations

import dataclasses
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from enforcer.daemon import _guarded_thread
from enforcer.settings import Settings
from enforcer.status import Health

T0 = datetime(2026, 1, 1, tzinfo=UTC)
QUIET = Settings(run_periodic=False, run_start_events=False)  # only the engine and the workers count


def reachable_again(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "docker engine reachable again" for r in caplog.records)


def test_a_failed_sweep_is_not_running_and_keeps_the_last_finished_one() -> None:
    health = Health()
    health.sweep_started(T0)
    health.sweep_finished(T0, T0 + timedelta(seconds=1))
    health.sweep_started(T0 + timedelta(minutes=10))
    assert health.snapshot().sweep_running_since == T0 + timedelta(minutes=10)
    assert health.snapshot().last_sweep_began == T0 + timedelta(minutes=10)
    health.sweep_failed()
    now = health.snapshot()
    assert now.sweep_running_since is None
    assert (now.last_sweep.start, now.last_sweep.end) == (T0, T0 + timedelta(seconds=1))
    assert now.last_sweep_began == T0


def test_engine_transitions_say_once_what_is_news(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="enforcer.status")
    health = Health()
    assert health.snapshot().problems(QUIET) == ["docker engine unreachable: not connected yet"]

    assert health.engine_unreachable("no socket") is True  # the first failure, before any answer
    assert health.engine_unreachable("no socket") is False  # the same outage, seen again
    health.engine_answered("docker-host-1")  # connected at startup: not "again"
    assert reachable_again(caplog) == 0
    assert health.snapshot().problems(QUIET) == []
    assert health.snapshot().engine_host == "docker-host-1"

    assert health.engine_unreachable("connection refused") is True
    assert health.engine_unreachable("stream ended") is False
    assert health.snapshot().problems(QUIET) == ["docker engine unreachable: stream ended"]

    health.engine_answered()  # the events reader, a sweep and the health job all see it answer
    health.engine_answered()
    health.engine_answered()
    assert reachable_again(caplog) == 1
    assert health.snapshot().engine_host == "docker-host-1"  # kept when a later answer names no host
    assert health.engine_unreachable("down again") is True


def test_concurrent_reports_of_an_engine_back_log_it_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="enforcer.status")
    health = Health()
    health.engine_answered()
    health.engine_unreachable("down")
    start = threading.Barrier(8)

    def report() -> None:
        start.wait()
        for _ in range(200):
            health.engine_answered()

    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reachable_again(caplog) == 1


def test_a_snapshot_is_frozen_and_stays_what_it_was() -> None:
    health = Health()
    before = health.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.engine_ok = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.last_sweep.end = T0  # type: ignore[misc]

    health.engine_answered()
    health.events_connected(True)
    health.sweep_finished(T0, T0 + timedelta(seconds=2))

    assert (before.engine_ok, before.events_connected, before.last_sweep.end) == (False, False, None)
    after = health.snapshot()
    assert (after.engine_ok, after.events_connected, after.last_sweep.end) == (
        True,
        True,
        T0 + timedelta(seconds=2),
    )


def test_problems_name_a_lost_stream_and_a_late_sweep_from_the_settings() -> None:
    health = Health(started_at=T0)
    health.engine_answered()
    settings = Settings(run_start_events=True, run_periodic=True, check_interval_s=60)

    assert health.snapshot().problems(settings, now=T0 + timedelta(seconds=119)) == [
        "event stream disconnected"
    ]
    assert health.snapshot().problems(settings, now=T0 + timedelta(seconds=121)) == [
        "event stream disconnected",
        f"no sweep finished since {T0.isoformat()} (more than two intervals)",
    ]
    health.events_connected(True)
    health.sweep_finished(T0 + timedelta(seconds=100), T0 + timedelta(seconds=101))
    assert health.snapshot().problems(settings, now=T0 + timedelta(seconds=200)) == []


def crash() -> None:
    raise RuntimeError("worker bug")


@pytest.mark.parametrize("target", [crash, lambda: None], ids=["raises", "returns"])
def test_a_worker_that_ends_while_the_daemon_runs_is_named_on_healthz(target: object) -> None:
    health, stop = Health(), threading.Event()
    health.engine_answered()

    _guarded_thread("events", target, stop, health).join(5)  # type: ignore[arg-type]

    assert health.snapshot().problems(QUIET) == ["worker events died"]


def test_a_worker_ending_on_the_stop_flag_is_no_problem() -> None:
    health, stop = Health(), threading.Event()
    health.engine_answered()
    stop.set()

    _guarded_thread("events", crash, stop, health).join(5)

    assert health.snapshot().problems(QUIET) == []
