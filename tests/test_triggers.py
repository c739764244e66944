"""Trigger lanes: each trigger its own queue and worker; a slow or hung one delays only itself."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enforcer.act.triggers import TriggerRunner
from enforcer.facts.container import Container
from enforcer.judge.rules import Rule, Trigger
from enforcer.judge.verdict import Verdict

RULE = Rule("r", lambda c: True)


def verdict(name: str) -> Verdict:
    return Verdict(Container(name * 8, {"Id": name * 8, "Name": "/" + name}), (RULE,))


@pytest.fixture
def runner_parts() -> Iterator[tuple[TriggerRunner, list[str], list[str]]]:
    errors: list[str] = []
    dropped: list[str] = []
    runner = TriggerRunner(on_error=errors.append, on_drop=dropped.append, queue_limit=3)
    yield runner, errors, dropped
    runner.close()


def recording(into: list[str]) -> Callable[[Any], None]:
    return lambda v: into.append(v.subject.name)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_hung_triggers_delay_no_other_trigger(
    runner_parts: tuple[TriggerRunner, list[str], list[str]],
) -> None:
    runner, _, dropped = runner_parts
    release = threading.Event()
    seen: list[str] = []
    # Four hung triggers once took every shared worker and stopped all triggers for good.
    hung = [Trigger(f"hangs-{n}", lambda v: release.wait()) for n in range(4)]
    try:
        started = time.monotonic()
        for n in range(8):
            runner.submit([*hung, Trigger("records", recording(seen))], verdict(f"bad{n}"))
            assert wait_for(lambda count=n + 1: len(seen) == count), seen  # not held up by the hung ones
        assert time.monotonic() - started < 1.0
        assert seen == [f"bad{n}" for n in range(8)]
        assert set(dropped) == {f"hangs-{n}" for n in range(4)}  # their lanes filled: only theirs
    finally:
        release.set()


def test_a_full_lane_drops_its_oldest_call_and_counts_it(
    runner_parts: tuple[TriggerRunner, list[str], list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    runner, _, dropped = runner_parts
    release = threading.Event()
    seen: list[str] = []

    def slow(v: Verdict) -> None:
        release.wait()
        seen.append(v.subject.name)

    trigger = Trigger("slow", slow)
    with caplog.at_level(logging.ERROR, logger="enforcer.act.triggers"):
        runner.submit([trigger], verdict("first"))
        assert wait_for(lambda: runner.pending("slow") == 0)  # "first" runs, holding the worker
        for n in range(5):
            runner.submit([trigger], verdict(f"q{n}"))
    assert dropped == ["slow", "slow"]
    assert runner.pending("slow") == 3
    messages = [r.getMessage() for r in caplog.records]
    assert "Trigger 'slow' is behind (3 calls queued): its oldest call, for q0, was dropped" in messages
    assert "Trigger 'slow' is behind (3 calls queued): its oldest call, for q1, was dropped" in messages
    release.set()
    assert wait_for(lambda: len(seen) == 4)
    assert seen == ["first", "q2", "q3", "q4"]


def test_a_raising_trigger_is_counted_and_its_lane_goes_on(
    runner_parts: tuple[TriggerRunner, list[str], list[str]],
) -> None:
    runner, errors, _ = runner_parts
    seen: list[str] = []

    def flaky(v: Verdict) -> None:
        if v.subject.name == "boom":
            raise RuntimeError("no")
        seen.append(v.subject.name)

    trigger = Trigger("flaky", flaky)
    for name in ("boom", "after"):
        runner.submit([trigger], verdict(name))
    assert wait_for(lambda: seen == ["after"])
    assert errors == ["flaky"]


def test_a_trigger_that_calls_sys_exit_is_counted_and_its_lane_goes_on(
    runner_parts: tuple[TriggerRunner, list[str], list[str]],
) -> None:
    # SystemExit is no Exception: it once ended the lane's worker silently, and every later call of that
    # trigger queued up until dropped.
    runner, errors, _ = runner_parts
    seen: list[str] = []

    def exits(v: Verdict) -> None:
        if v.subject.name == "exit":
            sys.exit(3)
        seen.append(v.subject.name)

    trigger = Trigger("exits", exits)
    for name in ("exit", "after"):
        runner.submit([trigger], verdict(name))
    assert wait_for(lambda: seen == ["after"]), runner.pending("exits")
    assert errors == ["exits"]


def test_close_drops_queued_calls_and_returns_with_a_trigger_hung() -> None:
    runner = TriggerRunner(on_error=lambda name: None)
    release = threading.Event()
    seen: list[str] = []
    trigger = Trigger("hangs", lambda v: release.wait() and seen.append(v.subject.name))
    for n in range(3):
        runner.submit([trigger], verdict(f"c{n}"))
    started = time.monotonic()
    runner.close()
    assert time.monotonic() - started < 0.5
    runner.submit([trigger], verdict("late"))  # after close: dropped silently
    release.set()
    time.sleep(0.1)
    assert seen in ([], ["c0"])
