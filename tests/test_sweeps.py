"""The sweeper's bookkeeping when a sweep ends early: stopping, or an error that is not the engine's."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest

from enforcer.dockerhost.client import DockerHost
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.pipeline import Pipeline
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.sources.sweeps import Sweeper
from enforcer.status import Health


class Containers:
    """A gatherer that finds `count` containers."""

    def __init__(self, count: int) -> None:
        self.count = count

    def all_running(self, source: str, metrics: bool = True) -> list[Any]:
        return [object() for _ in range(self.count)]

    def keep_only(self, cids: Any) -> None:
        list(cids)

    def each(self, fn: Any, items: list[Any]) -> list[Any]:
        with ThreadPoolExecutor(32) as pool:  # fewer workers than containers: some checks wait their turn
            return list(pool.map(fn, items))


class Blocking:
    """A pipeline whose checks wait until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def check_container(self, container: Any, source: Any) -> None:
        self.entered.set()
        self.release.wait(10)


def sweeper(gatherer: Any, pipeline: Any, health: Health) -> Sweeper:
    return Sweeper(
        Settings(),
        cast(FactGatherer, gatherer),
        cast(Pipeline, pipeline),
        health,
        Metrics("WARN"),
    )


def test_a_sweep_cut_short_by_the_stop_ends_quietly_and_is_not_shown_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, pipeline = Health(), Blocking()
    sweeps = sweeper(Containers(200), pipeline, health)  # more checks than workers: some still queued
    errors: list[BaseException] = []

    def run() -> None:
        try:
            sweeps.sweep()
        except BaseException as exc:  # noqa: BLE001 - what the scheduler's thread would have logged
            errors.append(exc)

    caplog.set_level(logging.INFO, logger="enforcer.sweeps")
    thread = threading.Thread(target=run)
    thread.start()
    assert pipeline.entered.wait(5)
    sweeps.close()
    pipeline.release.set()
    thread.join(10)
    assert not thread.is_alive()
    assert errors == []
    assert health.snapshot().sweep_running_since is None
    assert "sweep cut short: the daemon is stopping" in caplog.text


def test_an_unexpected_error_is_raised_and_the_sweep_not_left_running() -> None:
    class Broken(Containers):
        def all_running(self, source: str, metrics: bool = True) -> list[Any]:
            raise ValueError("a bug")

    health = Health()
    with pytest.raises(ValueError, match="a bug"):
        sweeper(Broken(0), Blocking(), health).sweep()
    assert health.snapshot().sweep_running_since is None


class Counting:
    """A pipeline whose checks wait a while, as a check whose stats wait for the engine's tick: counts the
    checks in flight at once."""

    def __init__(self, expect: int) -> None:
        self.expect = expect
        self.lock = threading.Condition()
        self.in_flight = self.most = 0

    def check_container(self, container: Any, source: Any) -> None:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.lock.notify_all()
            self.lock.wait_for(lambda: self.most >= self.expect, timeout=5)
            self.in_flight -= 1

    def swept(self, running: Any, began: Any) -> None: ...


class Listed:
    """An engine that lists `count` containers (DISABLE_PARAMS: nothing else is asked of it)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def list_running(self) -> list[dict[str, Any]]:
        return [{"Id": f"{n:064x}", "Names": [f"/c{n}"]} for n in range(self.count)]


@pytest.mark.parametrize(("count", "ceiling", "most"), [(120, 512, 120), (120, 32, 32)])
def test_checks_in_flight_follow_the_containers_up_to_engine_concurrency(
    count: int, ceiling: int, most: int
) -> None:
    gatherer = FactGatherer(
        cast(DockerHost, Listed(count)), GatherOptions(disable_params=True, concurrency=ceiling)
    )
    pipeline = Counting(most)
    sweeps = Sweeper(Settings(), gatherer, cast(Pipeline, pipeline), Health(), Metrics("WARN"))
    try:
        assert sweeps.sweep()
        assert pipeline.most == most
    finally:
        sweeps.close()
        gatherer.close()
