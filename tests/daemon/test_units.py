"""Unit tests of the daemon's parts that need no engine: own container id, event dispatch, resume dedup."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from support.daemon import ENFORCER_VARS, REPO
from support.engine import HOST_DOCKER_VARS

from enforcer.dockerhost.errors import EngineError
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.sources.events import EventWatcher
from enforcer.status import Health


# -- event dispatch --------------------------------------------------------------------------------------
class FakePipeline:
    """Records what the watcher asks of the pipeline and of the prevention module."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._lock = threading.Lock()
        self.raced = True  # the racing half ran on the reader
        self.left_to_do = True  # something is left for a worker
        self.created_raises: Exception | None = None

    def _note(self, name: str, *args: Any) -> None:
        with self._lock:
            self.calls.append((name, args))

    def check(self, cid: str, source: str, event_time: float | None = None, fresh: bool = False) -> None:
        self._note("check", cid, source, fresh)

    def check_exec(self, cid: str, exec_id: str, event_time: float | None = None) -> None:
        self._note("check_exec", cid, exec_id)

    def created(self, cid: str, event_time: float | None) -> FakeCreateCheck:
        if self.created_raises is not None:
            raise self.created_raises
        self._note("created", cid, threading.current_thread().name)
        return FakeCreateCheck(self, cid)

    def forget(self, cid: str, gone: bool = False) -> None:
        self._note("forget", cid)


class FakeCreateCheck:
    def __init__(self, pipeline: FakePipeline, cid: str) -> None:
        self.pipeline, self.cid = pipeline, cid
        self.raced, self.left_to_do = pipeline.raced, pipeline.left_to_do

    def finish(self) -> None:
        self.pipeline._note("finish", self.cid, threading.current_thread().name)


@pytest.fixture
def watcher() -> Any:
    yield from watching(Settings(run_start_events=True))


def watching(settings: Settings) -> Any:
    pipeline = FakePipeline()
    events = watcher_of(settings, pipeline, workers=2)
    yield events, pipeline
    events.close(wait=True)


def watcher_of(settings: Settings, pipeline: FakePipeline, workers: int | None = None) -> EventWatcher:
    return EventWatcher(
        settings,
        host=None,  # type: ignore[arg-type]  # _dispatch never talks to the engine
        pipeline=pipeline,  # type: ignore[arg-type]
        prevention=pipeline,  # type: ignore[arg-type]
        health=Health(),
        metrics=Metrics("KILL"),
        catch_up=lambda: None,
        stop=threading.Event(),
        workers=workers,
    )


class Waiting(FakePipeline):
    """Checks that wait a while, as on a busy engine: counts the checks in flight at once."""

    def __init__(self, expect: int) -> None:
        super().__init__()
        self.expect = expect
        self.in_flight = self.most = 0
        self.turn = threading.Condition()

    def check(self, cid: str, source: str, event_time: float | None = None, fresh: bool = False) -> None:
        with self.turn:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.turn.notify_all()
            self.turn.wait_for(lambda: self.most >= self.expect, timeout=5)
            self.in_flight -= 1


def test_a_burst_of_starts_is_checked_all_at_once_up_to_engine_concurrency() -> None:
    """No violator's kill waits for another's check (the default pool was 32)."""
    pipeline = Waiting(expect=60)
    events = watcher_of(Settings(run_start_events=True), pipeline)
    try:
        for n in range(60):
            events._dispatch(event(f"c{n}", nano=1_700_000_000_000_000_000 + n))
        assert events.drain(30)
        assert pipeline.most == 60
    finally:
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


def test_a_create_event_goes_to_the_prevention_module_on_the_reader_and_the_rest_to_a_worker(
    watcher: Any,
) -> None:
    events, pipeline = watcher
    reader = threading.current_thread().name
    (created, finished) = dispatched(events, pipeline, event("c1", "create", 1))
    assert created == ("created", ("c1", reader))
    assert finished[0] == "finish" and finished[1][0] == "c1"
    assert finished[1][1].startswith("check") and finished[1][1] != reader


def test_a_create_check_with_nothing_left_after_the_reader_takes_no_worker(watcher: Any) -> None:
    events, pipeline = watcher
    pipeline.left_to_do = False
    calls = dispatched(events, pipeline, event("c1", "create", 1))
    assert [name for name, _ in calls] == ["created"]


@pytest.mark.parametrize("raced", [True, False])
def test_while_shutting_down_only_a_raced_create_check_is_finished_on_the_reader(
    watcher: Any, raced: bool
) -> None:
    """A removal may have gone out in the racing half: it is recorded, and the container unlocked."""
    events, pipeline = watcher
    pipeline.raced = raced
    events.close(wait=True)
    reader = threading.current_thread().name
    calls = dispatched(events, pipeline, event("c1", "create", 1))
    assert calls == [("created", ("c1", reader))] + ([("finish", ("c1", reader))] if raced else [])


@pytest.mark.parametrize("error", [EngineError("inspect c1: engine says no"), KeyError("HostConfig")])
def test_a_create_check_failing_on_the_reader_is_logged_and_the_reader_goes_on(
    watcher: Any, caplog: pytest.LogCaptureFixture, error: Exception
) -> None:
    events, pipeline = watcher
    pipeline.created_raises = error
    calls = dispatched(events, pipeline, event("c1", "create", 1), event("c2", "start", 2))
    assert calls == [("check", ("c2", "event", False))]  # c1 not retried
    assert "check of c1 failed" in caplog.text


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
        ("created", ("c1", threading.current_thread().name)),
        ("finish", ("c1", calls[3][1][1])),
        ("forget", ("c2",)),
        ("forget", ("c3",)),
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


def exec_event(cid: str, exec_id: str | None, nano: int = 1) -> dict[str, Any]:
    attributes = {"image": "busybox", "name": "x"} | ({"execID": exec_id} if exec_id else {})
    return {
        "Type": "container",
        "Action": "exec_start: sh -c echo secret",
        "Actor": {"ID": cid, "Attributes": attributes},
        "timeNano": nano,
    }


def test_exec_events_alone_check_execs_and_nothing_else() -> None:
    for events, pipeline in watching(Settings(run_exec_events=True)):
        assert events.filters()["event"] == ["update", "rename", "die", "destroy", "exec_start"]
        calls = dispatched(
            events, pipeline, exec_event("c1", "e1", 1), exec_event("c2", None, 2),
            event("c3", "create", 3), event("c3", "start", 4),
        )  # fmt: skip
        assert calls == [("check_exec", ("c1", "e1"))]


def test_a_flood_of_execs_is_bounded_the_excess_dropped_logged_and_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Exec checks wait in a bounded backlog: a flood of `docker exec` cannot grow the daemon's memory."""
    monkeypatch.setattr("enforcer.sources.events.EXEC_BACKLOG", 3)

    class Stuck(FakePipeline):
        release = threading.Event()

        def check_exec(self, cid: str, exec_id: str, event_time: float | None = None) -> None:
            super().check_exec(cid, exec_id, event_time)
            self.release.wait(5)

    pipeline = Stuck()
    events = watcher_of(Settings(run_exec_events=True), pipeline, workers=2)
    try:
        for n in range(10):
            events._dispatch(exec_event(f"c{n}", f"e{n}", n + 1))
        assert events.metrics.exec_checks_dropped._value.get() == 7
        assert caplog.text.count("dropped: 3 exec checks are waiting already") == 7
        Stuck.release.set()
        assert events.drain(5)
        assert len(pipeline.calls) == 3
        events._dispatch(exec_event("c-after", "e-after", 99))  # the backlog emptied: checked again
        assert events.drain(5)
        assert ("check_exec", ("c-after", "e-after")) in pipeline.calls
    finally:
        Stuck.release.set()
        events.close(wait=True)


def test_exec_start_is_ignored_unless_exec_events_are_on(watcher: Any) -> None:
    events, pipeline = watcher
    assert "exec_start" not in events.filters()["event"]
    assert dispatched(events, pipeline, exec_event("c1", "e1")) == []


def test_a_malformed_exec_event_is_skipped_without_its_command(
    watcher: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An exec_start event's Action carries the exec's command line: never logged, not even at DEBUG."""
    events, pipeline = watcher
    caplog.set_level("DEBUG", logger="enforcer.events")
    broken = {"Action": "exec_start: curl -H 'X-Token: s3cret-in-exec'", "Actor": {"Attributes": {}}}
    assert dispatched(events, pipeline, broken) == []
    assert "malformed event" in caplog.text and "s3cret" not in caplog.text
