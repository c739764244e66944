"""Retries: instant under set_testing, and every wait between attempts ends when the stop flag is set."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from enforcer import retry as retries
from enforcer.act.actions import KILL_ATTEMPTS, Actuator
from enforcer.dockerhost.errors import ContainerGone, EngineError
from enforcer.record.model import Action
from enforcer.retry import Backoff, retry

SLOW = Backoff(30.0, 30.0)  # a wait no test could sit out


@pytest.fixture
def instant() -> Iterator[None]:
    retries.set_testing(True)
    yield
    retries.set_testing(False)


class Failing:
    """Fails `times` times with `error`, then returns "done"; counts the calls."""

    def __init__(self, times: int, error: Exception | None = None) -> None:
        self.times, self.calls = times, 0
        self.error = error or EngineError("engine busy")

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "done"


class KillFails:
    """A DockerHost whose kill always fails, as an engine that is going away."""

    def __init__(self) -> None:
        self.kills = 0

    def kill(self, cid: str) -> None:
        self.kills += 1
        raise EngineError(f"kill {cid[:12]}: connection refused")

    def set_restart_policy(self, cid: str, name: str) -> Any:
        raise AssertionError("a container that was not stopped keeps its restart policy")


def test_retries_until_success_without_waiting_under_set_testing(instant: None) -> None:
    fn, began = Failing(2), time.monotonic()
    assert retry(fn, (EngineError,), threading.Event(), attempts=3, backoff=SLOW) == "done"
    assert fn.calls == 3 and time.monotonic() - began < 1


def test_the_last_error_after_the_last_attempt_and_unless_errors_at_once(instant: None) -> None:
    fn = Failing(5)
    with pytest.raises(EngineError, match="engine busy"):
        retry(fn, (EngineError,), threading.Event(), attempts=3, backoff=SLOW)
    assert fn.calls == 3
    gone = Failing(5, ContainerGone("gone"))
    with pytest.raises(ContainerGone):
        retry(gone, (EngineError,), threading.Event(), attempts=3, backoff=SLOW, unless=(ContainerGone,))
    assert gone.calls == 1


def test_a_retry_waiting_out_its_backoff_ends_promptly_when_the_stop_flag_is_set() -> None:
    stop, fn = threading.Event(), Failing(5)
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()
    with pytest.raises(EngineError, match="engine busy"):
        retry(fn, (EngineError,), stop, attempts=5, backoff=SLOW)
    assert time.monotonic() - began < 2
    assert fn.calls == 1  # no attempt after the stop flag


def test_a_kill_retry_gives_up_on_the_stop_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("enforcer.act.actions.Backoff", lambda base, cap: SLOW)
    host, stop = KillFails(), threading.Event()
    threading.Timer(0.1, stop.set).start()
    began = time.monotonic()

    done = Actuator(host, stop).stop("c" * 64, {})  # type: ignore[arg-type]

    assert time.monotonic() - began < 2 and host.kills == 1
    assert done.action == Action.KILL and str(done.outcome).startswith("failed")


def test_a_failing_kill_is_tried_every_attempt_instantly_under_set_testing(instant: None) -> None:
    host = KillFails()
    began = time.monotonic()
    done = Actuator(host, threading.Event()).stop("c" * 64, {})  # type: ignore[arg-type]
    assert host.kills == KILL_ATTEMPTS and time.monotonic() - began < 1
    assert str(done.outcome).startswith("failed")
