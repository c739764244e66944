"""Unit tests of the daemon's parts that need no engine: own container id, event dispatch, resume dedup."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.daemon import ENFORCER_VARS, REPO
from support.engine import HOST_DOCKER_VARS

from enforcer.dockerhost.answer import Answer
from enforcer.dockerhost.errors import EngineError
from enforcer.judge.policy import Policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.sources.events import EventWatcher
from enforcer.status import Status


# -- event dispatch --------------------------------------------------------------------------------------
class FakePipeline:
    """Records what the watcher asks of the pipeline; `answered` says whether inspects come back in time."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self.answered = False
        self.race_takes_s = 0.0
        self.busy = False  # race_created finds the container's lock held
        self.race_raises: Exception | None = None
        self.nothing_left = False  # race_created judged a container that needs nothing more

    def _note(self, name: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((name, args))

    def check(self, cid: str, source: str, event_time: float | None = None, fresh: bool = False) -> None:
        self._note("check", cid, source, fresh)

    def inspect_created(self, cid: str) -> Answer[Any]:
        self._note("inspect_created", cid)
        return Answer(lambda: ("inspected", cid), arrived=self.answered)

    def check_created(self, cid: str, event_time: float | None = None, inspected: Any = None) -> None:
        self._note("check_created", cid, inspected())

    def race_created(self, cid: str, event_time: float | None, inspected: Any) -> Any:
        if self.busy:
            return False, None
        if self.race_raises is not None:
            raise self.race_raises
        time.sleep(self.race_takes_s)
        self._note("race_created", cid, inspected(), threading.current_thread().name)
        if self.nothing_left:
            return True, None
        return True, (lambda: self._note("concluded", cid, threading.current_thread().name))

    def forget(self, cid: str) -> None:
        self._note("forget", cid)


def policy_version(version: str) -> Policy:
    """A policy whose rules version is `version` (the watcher reads nothing else of it)."""
    return SimpleNamespace(version=version)  # type: ignore[return-value]


@pytest.fixture
def watcher() -> Any:
    pipeline = FakePipeline()
    settings = Settings(run_start_events=True)
    events = EventWatcher(
        settings,
        host=None,  # type: ignore[arg-type]  # _dispatch never talks to the engine
        pipeline=pipeline,  # type: ignore[arg-type]
        status=Status(settings),
        in_force=PolicyInForce(policy_version("v1")),
        metrics=Metrics("KILL"),
        catch_up=lambda: None,
        stop=threading.Event(),
        workers=2,
    )
    yield events, pipeline
    events.close(wait=True)


def event(cid: str, action: str = "start", nano: int = 1_700_000_000_000_000_000) -> dict[str, Any]:
    return {"Type": "container", "Action": action, "Actor": {"ID": cid, "Attributes": {}}, "timeNano": nano}


def dispatched(
    watcher: EventWatcher, pipeline: FakePipeline, *events: Any
) -> list[tuple[str, tuple[Any, ...]]]:
    for item in events:
        watcher._dispatch(item)
    assert watcher.drain(5)
    return sorted(pipeline.calls)


JUNK: list[Any] = [
    None,
    42,
    "start",
    [],
    {},
    {"Action": "start", "timeNano": 1},  # no id
    {"id": "c1", "timeNano": 1},  # no action
    {"id": "c1", "Action": "start"},  # no time
    {"id": "c1", "Action": "start", "timeNano": "soon"},
    {"id": "c1", "status": "start", "time": "yesterday"},
    {"Actor": "c1", "Action": "start", "timeNano": 1},
    {"Actor": {"Attributes": {}}, "Action": "start", "timeNano": 1},
    {"Actor": None, "Action": "start", "time": 1},
    {"id": "c1", "Action": None, "status": None, "timeNano": None, "time": None},
]


def test_an_inspect_answered_in_time_is_judged_on_the_reader_and_concluded_on_a_worker(watcher: Any) -> None:
    events, pipeline = watcher
    pipeline.answered = True
    reader = threading.current_thread().name
    calls = dispatched(events, pipeline, event("c1", "create", 1))
    (concluded, (_, worker)), inspected, raced = calls
    assert (concluded, inspected) == ("concluded", ("inspect_created", ("c1",)))
    assert raced == ("race_created", ("c1", ("inspected", "c1"), reader))
    assert worker.startswith("check") and worker != reader


def test_a_create_check_with_nothing_left_after_the_reader_takes_no_worker(watcher: Any) -> None:
    events, pipeline = watcher
    pipeline.answered, pipeline.nothing_left = True, True
    calls = dispatched(events, pipeline, event("c1", "create", 1))
    assert [name for name, _ in calls] == ["inspect_created", "race_created"]


def test_a_container_whose_lock_is_held_is_checked_on_a_worker(watcher: Any) -> None:
    events, pipeline = watcher
    pipeline.answered, pipeline.busy = True, True
    assert dispatched(events, pipeline, event("c1", "create", 1)) == [
        ("check_created", ("c1", ("inspected", "c1"))),
        ("inspect_created", ("c1",)),
    ]


@pytest.mark.parametrize("error", [EngineError("inspect c1: engine says no"), KeyError("HostConfig")])
def test_a_create_check_failing_on_the_reader_is_logged_and_the_reader_goes_on(
    watcher: Any, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    events, pipeline = watcher
    pipeline.answered, pipeline.race_raises = True, error
    calls = dispatched(events, pipeline, event("c1", "create", 1), event("c2", "start", 2))
    assert calls == [("check", ("c2", "event", False)), ("inspect_created", ("c1",))]  # c1 not retried
    assert "check of c1 failed" in caplog.text


def test_slow_rules_send_create_checks_to_workers_until_the_rules_change(
    watcher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    events, pipeline = watcher
    pipeline.answered, pipeline.race_takes_s = True, 0.02
    dispatched(events, pipeline, *(event(f"slow{i}", "create", i + 1) for i in range(4)))
    raced = [args[0] for name, args in pipeline.calls if name == "race_created"]
    handed = [args[0] for name, args in pipeline.calls if name == "check_created"]
    assert (raced, handed) == (["slow0", "slow1", "slow2"], ["slow3"])
    assert "3 times in a row: create checks run on workers until the rules change" in caplog.text

    events.in_force.replace(policy_version("v2"))
    pipeline.calls.clear()
    dispatched(events, pipeline, event("new", "create", 10))
    assert [name for name, _ in pipeline.calls if name.endswith("_created")] == [
        "inspect_created",
        "race_created",
    ]


def test_malformed_events_are_skipped(watcher: Any, caplog: pytest.LogCaptureFixture) -> None:
    events, pipeline = watcher
    caplog.set_level("DEBUG", logger="enforcer.events")
    assert dispatched(events, pipeline, *JUNK, event("real")) == [("check", ("real", "event", False))]
    assert len([r for r in caplog.records if "malformed event" in r.getMessage()]) == len(JUNK)


def test_dispatch_by_action(watcher: Any) -> None:
    events, pipeline = watcher
    t = 1_700_000_000_000_000_000
    calls = dispatched(
        events,
        pipeline,
        event("c1", "create", t),
        event("c1", "start", t + 1),
        event("c2", "update", t + 2),  # RUN_UPDATE_EVENTS off: only forgotten, not checked
        event("c3", "die", t + 3),
        event("c4", "exec_start: sh", t + 4),  # not ours: ignored
        {"status": "start", "id": "old", "time": 1_700_000_001},  # the old event format
    )
    assert calls == [
        ("check", ("c1", "event", False)),
        ("check", ("old", "event", False)),
        ("check_created", ("c1", ("inspected", "c1"))),  # the inspect asked for as the event came in
        ("forget", ("c2",)),
        ("forget", ("c3",)),
        ("inspect_created", ("c1",)),
    ]


# -- resume dedup ----------------------------------------------------------------------------------------
def test_events_replayed_after_a_reconnect_are_dropped(watcher: Any) -> None:
    events, _ = watcher
    t = 1_700_000_000_000_000_000
    assert not events._already_seen("c1", "start", t)
    assert not events._already_seen("c2", "start", t + 5)
    # Reconnected with since=t+5: the engine sends again what happened at or after it...
    assert events._already_seen("c2", "start", t + 5)
    # ...and, as its `since` has whole-second-ish precision, maybe a little before.
    assert events._already_seen("c1", "start", t)
    assert not events._already_seen("c3", "start", t + 6)


def test_distinct_events_at_the_same_instant_are_all_kept(watcher: Any) -> None:
    events, _ = watcher
    t = 1_700_000_000_000_000_000
    assert not events._already_seen("c1", "start", t)
    assert not events._already_seen("c2", "start", t)
    assert not events._already_seen("c1", "die", t)
    assert events._already_seen("c2", "start", t)
    assert events._already_seen("c1", "die", t)


def test_the_resume_point_is_the_newest_event(watcher: Any) -> None:
    events, _ = watcher
    t = 1_700_000_000_000_000_000
    for n in range(5):
        events._already_seen(f"c{n}", "start", t + n)
    assert events._since_nano == t + 4


def test_a_clock_stepped_back_does_not_blind_the_watcher(watcher: Any) -> None:
    """Within one stream nothing repeats: an event older than the last one (the engine's clock stepped
    back, by NTP or a VM resume) is new, and must be checked."""
    events, pipeline = watcher
    t = 1_700_000_000_000_000_000
    calls = dispatched(events, pipeline, event("c1", "start", t), event("c2", "start", t - 3_000_000_000))
    assert calls == [("check", ("c1", "event", False)), ("check", ("c2", "event", False))]


# -- bad settings ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variable", "value"),
    [("MODE", "STOP"), ("CHECK_INTERVAL_S", "ten"), ("RUN_PERIODIC", "maybe"), ("LISTEN_ADDRESS", "nowhere")],
)
@pytest.mark.external  # a docker-enforcer process
def test_a_bad_env_value_for_run_exits_2_with_one_line(tmp_path: Path, variable: str, value: str) -> None:
    env = daemon_env_without_engine(tmp_path)
    env[variable] = value
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"docker-enforcer: {variable}={value!r} is not valid: ")


def daemon_env_without_engine(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENFORCER_VARS and k not in HOST_DOCKER_VARS}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["DOCKER_SOCKET"] = f"unix://{tmp_path}/none.sock"
    env["LISTEN_ADDRESS"] = "127.0.0.1:0"
    env["STATE_DB"] = str(tmp_path / "state.db")
    return env
