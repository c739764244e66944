"""NICE: every thread of the daemon gets the priority, and a refusal is explained, not fatal."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from enforcer import tuning
from enforcer.tuning import apply_niceness, open_files_for

ROOT = Path(__file__).resolve().parent.parent


def thread_nices(pid: int | str) -> list[int]:
    """The nice value of each thread of `pid`, from /proc (field 19 of stat)."""
    tasks = Path(f"/proc/{pid}/task")
    return [int((t / "stat").read_text().rpartition(")")[2].split()[16]) for t in tasks.iterdir()]


@pytest.mark.external  # a Python process whose priority changes
def test_threads_started_before_and_after_get_the_priority() -> None:
    script = textwrap.dedent(
        """
        import threading, time
        from enforcer.tuning import set_niceness
        from test_tuning import thread_nices
        before = threading.Thread(target=time.sleep, args=(2,)); before.start()
        assert set_niceness(7) is None
        after = threading.Thread(target=time.sleep, args=(2,)); after.start()
        print(sorted(thread_nices("self")))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[7, 7, 7]"


def test_a_refused_priority_is_logged_with_the_fix_and_the_daemon_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(which: int, who: int, prio: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(tuning.os, "setpriority", refuse)
    with caplog.at_level(logging.INFO, "enforcer.tuning"):
        apply_niceness(-10)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "NICE=-10 not applied (Operation not permitted)" in record.getMessage()
    assert "--ulimit nice=30" in record.getMessage() and "CAP_SYS_NICE" in record.getMessage()


def test_a_priority_already_in_force_is_not_asked_for_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """systemd's Nice= set it before the start, and the unit's system-call filter refuses setpriority."""
    monkeypatch.setattr(tuning.os, "getpriority", lambda which, who: -10)
    monkeypatch.setattr(tuning.os, "setpriority", lambda *a: pytest.fail("setpriority called"))
    with caplog.at_level(logging.INFO, "enforcer.tuning"):
        apply_niceness(-10)
    assert [r.getMessage() for r in caplog.records] == ["running at nice -10 (NICE)"]


def test_without_nice_the_priority_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning.os, "setpriority", lambda *a: pytest.fail("setpriority called"))
    apply_niceness(None)


class Limits:
    """RLIMIT_NOFILE as getrlimit/setrlimit see it, the hard limit enforced as the kernel does."""

    def __init__(self, soft: int, hard: int) -> None:
        self.soft, self.hard = soft, hard

    def get(self, which: int) -> tuple[int, int]:
        return self.soft, self.hard

    def set(self, which: int, limits: tuple[int, int]) -> None:
        if limits[0] > self.hard:
            raise ValueError("not allowed to raise maximum limit")
        self.soft, self.hard = limits


@pytest.mark.parametrize(
    ("soft", "hard", "connections", "after", "warned"),
    [
        (1024, 524288, 512, 1024, False),  # fits: left alone
        (1024, 524288, 2048, 524288, False),  # raised to the hard limit
        (1024, 1500, 2048, 1500, True),  # raised, still too low: the fix is named
    ],
)
def test_the_open_files_limit_is_raised_when_the_connections_would_not_fit(
    soft: int,
    hard: int,
    connections: int,
    after: int,
    warned: bool,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = Limits(soft, hard)
    monkeypatch.setattr(tuning.resource, "getrlimit", limits.get)
    monkeypatch.setattr(tuning.resource, "setrlimit", limits.set)
    caplog.set_level(logging.WARNING, logger="enforcer.tuning")
    open_files_for(connections)
    assert (limits.soft, limits.hard) == (after, hard)
    assert ("ENGINE_CONCURRENCY" in caplog.text) is warned
