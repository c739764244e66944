"""Issue 8, the create path's decisions, against a scripted engine: the orderings a real race rarely shows.

The prevention module, pipeline, gatherer and actuator are the real ones; only the engine is a fake that
answers inspect from a dict of containers and refuses, as dockerd does, to remove a running container without
force.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from enforcer import retry
from enforcer.act.actions import Actuator
from enforcer.act.triggers import TriggerRunner
from enforcer.dockerhost.answer import Answer
from enforcer.dockerhost.errors import ContainerGone, EngineError
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Loaded, Rule
from enforcer.judge.whitelist import Whitelist
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.prevention import Prevention
from enforcer.record.model import Action, Finding, Outcome, Source
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings

BAD = "b" * 64
GOOD = "g" * 64
NEVER_STARTED = "0001-01-01T00:00:00Z"


class ScriptedEngine:
    """Containers as inspect shows them; every call is noted as (call, id)."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.start_on_remove: set[str] = set()  # these start just before the removal arrives
        self.answers_late = False  # requests sent ahead are answered after the event reader stops waiting
        self.inspect_fails = False

    def add(self, cid: str, name: str, status: str = "created", started_at: str = NEVER_STARTED) -> None:
        self.containers[cid] = {
            "Id": cid,
            "Name": "/" + name,
            "Image": "sha256:" + "1" * 64,
            "Created": "2024-05-01T12:00:00.000000001Z",
            "State": {"Status": status, "Running": status == "running", "StartedAt": started_at},
            "Config": {"Image": "busybox", "Labels": {}, "Env": ["TOKEN=secret"]},
            "HostConfig": {"RestartPolicy": {"Name": "no"}},
            "Mounts": [],
        }

    def start(self, cid: str, started_at: str = "2024-05-01T12:00:01.5Z") -> None:
        self.containers[cid]["State"] = {"Status": "running", "Running": True, "StartedAt": started_at}

    def _get(self, call: str, cid: str) -> dict[str, Any]:
        self.calls.append((call, cid))
        if cid not in self.containers:
            raise ContainerGone(f"{call} {cid[:12]}: No such container")
        return self.containers[cid]

    def inspect(self, cid: str) -> dict[str, Any]:
        if self.inspect_fails:
            raise EngineError(f"inspect {cid[:12]}: engine says no")
        return self._get("inspect", cid)

    def _sent(self, call: Callable[[], Any]) -> Answer[Any]:
        """Like the engine, the request acts when it is sent; its answer is read later."""
        try:
            value = call()
        except EngineError as exc:
            failure = exc

            def fail() -> Any:
                raise failure

            return Answer(fail, arrived=not self.answers_late)
        return Answer(lambda: value, arrived=not self.answers_late)

    def inspect_soon(self, cid: str) -> Answer[Any]:
        return self._sent(lambda: copy.deepcopy(self.inspect(cid)))

    def remove_soon(self, cid: str, force: bool = True) -> Answer[Any]:
        return self._sent(lambda: self.remove(cid, force))

    def remove(self, cid: str, force: bool = True) -> None:
        if cid in self.start_on_remove:
            self.start(cid)
        state = self._get("remove", cid)["State"]
        if state["Running"] and not force:
            raise EngineError(f"remove {cid[:12]}: You cannot remove a running container {cid}.")
        del self.containers[cid]

    def kill(self, cid: str) -> None:
        self._get("kill", cid)["State"] = {"Status": "exited", "Running": False, "StartedAt": "x"}

    def stats(self, cid: str) -> dict[str, Any]:
        self._get("stats", cid)
        return {"memory_stats": {"usage": 1}}

    def list_running(self) -> list[dict[str, Any]]:
        self.calls.append(("list", ""))
        return [{"Id": c["Id"]} for c in self.containers.values() if c["State"]["Running"]]

    def image_tags(self, image_id: str) -> list[str]:
        return ["busybox:latest"]

    def count(self, call: str, cid: str = BAD) -> int:
        return self.calls.count((call, cid))


class Recorder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)

    def actions(self) -> list[tuple[str, str, str]]:
        return [(f.action, f.outcome, f.source) for f in self.findings]


STATIC = Rule("no bad names", lambda c: c.name.startswith("bad"), prevent=True)
METRICS = Rule("no memory", lambda c: c.name.startswith("bad") and "memory_stats" in c.metrics, prevent=True)
POSITION = Rule("third or later", lambda c: c.name.startswith("bad") and c.position >= 2)


class Harness:
    def __init__(self, rules: tuple[Rule, ...], settings: Settings) -> None:
        self.engine = ScriptedEngine()
        self.recorder = Recorder()
        self.metrics = Metrics(str(settings.mode))
        self.triggers = TriggerRunner(on_error=lambda name: None)
        self.gatherer = FactGatherer(self.engine, GatherOptions())  # type: ignore[arg-type]
        self.in_force = PolicyInForce(Policy(rules, Whitelist(), ()))
        self.pipeline = Pipeline(
            settings,
            self.in_force,
            self.gatherer,
            Actuator(self.engine, threading.Event()),  # type: ignore[arg-type]
            self.recorder,
            self.triggers,
            self.metrics,
        )
        self.prevention = Prevention(self.pipeline, self.engine)  # type: ignore[arg-type]

    def counter(self, name: str) -> float:
        value = self.metrics.registry.get_sample_value(f"docker_enforcer_{name}_total")
        return value or 0.0

    def start_check(self, cid: str = BAD) -> None:
        self.pipeline.check(cid, Source.EVENT, event_time=None, fresh=False)

    def close(self) -> None:
        self.triggers.close(wait=True)
        self.gatherer.close()


@pytest.fixture
def make() -> Iterator[Any]:
    made: list[Harness] = []

    def factory(*rules: Rule, **settings: Any) -> Harness:
        harness = Harness(rules or (STATIC,), Settings(**{"mode": Mode.KILL, **settings}))
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.close()


def test_a_created_violator_is_removed_and_recorded_as_prevented(make: Any) -> None:
    h = make()
    h.engine.add(BAD, "bad-1")
    h.prevention.check_created(BAD)

    assert BAD not in h.engine.containers
    assert h.recorder.actions() == [("prevent", "prevented", "create")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (1.0, 0.0)
    h.start_check()  # the start event of a prevented container never comes; if it did: nothing to do
    assert len(h.recorder.findings) == 1


def test_the_create_check_judges_the_inspect_sent_as_the_event_came_in(make: Any) -> None:
    h = make()
    h.engine.add(BAD, "bad-1")
    h.engine.answers_late = True
    check = h.prevention.created(BAD, None)
    assert not check.raced and check.left_to_do  # too late for the reader: a worker finishes it
    check.finish()

    assert h.engine.count("inspect") == 1  # no second inspect
    assert BAD not in h.engine.containers
    assert h.recorder.actions() == [("prevent", "prevented", "create")]


def test_a_container_gone_before_the_inspect_sent_ahead_is_dropped_quietly(make: Any) -> None:
    h = make()
    h.engine.answers_late = True
    check = h.prevention.created(BAD, None)  # never there (or removed already)
    assert check.finish() is None
    assert h.recorder.findings == []


def test_without_prevention_the_start_path_kills_on_the_create_verdict_without_inspecting_again(
    make: Any,
) -> None:
    h = make(Rule("no bad names", lambda c: c.name.startswith("bad")))
    h.engine.add(BAD, "bad-1")
    h.prevention.check_created(BAD)
    assert h.recorder.findings == [] and BAD in h.engine.containers

    h.engine.start(BAD)
    h.start_check()
    assert h.engine.count("inspect") == 1  # the create check's only
    assert h.engine.count("kill") == 1
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (0.0, 0.0)


def test_a_container_that_starts_just_before_its_removal_is_not_recorded_as_prevented(make: Any) -> None:
    """The engine refuses the (unforced) removal: the create check kills it at once, without waiting for the
    start event, and records a kill at start (a race lost); the start check then does nothing more."""
    h = make()
    h.engine.add(BAD, "bad-1")
    h.engine.start_on_remove.add(BAD)
    h.prevention.check_created(BAD)

    assert h.engine.count("remove") == 1  # refused: not retried
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (0.0, 1.0)
    h.start_check()
    assert h.engine.count("inspect") == 1 and h.engine.count("kill") == 1
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (0.0, 1.0)


@pytest.mark.parametrize("status", ["running", "exited"])
def test_a_container_started_before_the_create_check_is_left_to_the_start_path(
    make: Any, status: str
) -> None:
    """Its start event was handled first (a race lost, counted there): the late create check removes nothing."""
    h = make()
    h.engine.add(BAD, "bad-1")
    h.engine.start(BAD)
    h.start_check()
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert h.counter("prevention_race_lost") == 1.0
    if status == "running":
        h.engine.start(BAD)  # started again by someone meanwhile

    h.prevention.check_created(BAD)
    assert h.engine.count("remove") == 0 and BAD in h.engine.containers
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (0.0, 1.0)


def test_a_metrics_rule_is_judged_at_start_and_its_kill_is_no_race_lost(make: Any) -> None:
    h = make(METRICS)
    h.engine.add(BAD, "bad-1")
    h.prevention.check_created(BAD)
    assert h.recorder.findings == [] and BAD in h.engine.containers
    assert h.counter("rule_errors") == 0.0

    h.engine.start(BAD)
    h.start_check()
    assert h.engine.count("stats") == 1
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (0.0, 0.0)


def test_the_create_check_leaves_the_params_cache_to_the_running_container(make: Any) -> None:
    """`position` orders running containers by State.StartedAt: create-time params would put a new one first."""
    h = make(POSITION)
    for n, started in enumerate(("2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00.2Z")):
        cid = str(n) * 64
        h.engine.add(cid, f"good-{n}")
        h.prevention.check_created(cid)
        h.engine.start(cid, started)
        h.start_check(cid)
    h.engine.add(BAD, "bad-1")
    h.prevention.check_created(BAD)
    assert h.gatherer.cached_count() == 0

    h.engine.start(BAD, "2024-05-01T12:00:00.3Z")
    h.start_check()
    assert h.recorder.actions() == [("kill", "stopped", "event")]


def test_update_and_rename_checks_count_no_race_lost(make: Any) -> None:
    h = make()
    h.engine.add(BAD, "good-then-bad", status="running")
    h.engine.containers[BAD]["Name"] = "/bad-renamed"
    h.pipeline.check(BAD, Source.EVENT, None, fresh=True)  # as for a rename event
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert h.counter("prevention_race_lost") == 0.0


def test_warn_records_would_prevent_and_removes_nothing(make: Any) -> None:
    h = make(mode=Mode.WARN, prevent_on_create=True)
    h.engine.add(BAD, "bad-1")
    h.prevention.check_created(BAD)
    assert h.engine.count("remove") == 0
    assert h.recorder.actions() == [("would prevent", "recorded", "create")]
    (finding,) = h.recorder.findings
    assert finding.config is not None and "secret" not in repr(finding.config)


# -- the racing half on the event reader, the rest on a worker ---------------------------------------------
def test_the_racing_half_removes_the_violator_and_leaves_the_record_to_the_rest(make: Any) -> None:
    h = make()
    h.engine.add(BAD, "bad-1")
    check = h.prevention.created(BAD, None)

    assert check.raced and check.left_to_do
    assert BAD not in h.engine.containers  # the removal went out in the racing half
    assert h.recorder.findings == []
    assert not h.pipeline.locks.acquire(BAD, blocking=False)  # a start check waits for the rest
    check.finish()
    assert h.recorder.actions() == [("prevent", "prevented", "create")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (1.0, 0.0)
    assert h.pipeline.locks.acquire(BAD, blocking=False)
    assert not check.left_to_do
    check.finish()  # nothing more
    assert len(h.recorder.findings) == 1


def test_the_racing_half_keeps_a_clean_verdict_for_the_start_check(make: Any) -> None:
    h = make()
    h.engine.add(GOOD, "good-1")
    check = h.prevention.created(GOOD, None)
    assert check.raced and h.recorder.findings == []
    assert not check.left_to_do  # nothing left for a worker: the container is free at once
    assert h.pipeline.locks.acquire(GOOD, blocking=False)
    h.pipeline.locks.release(GOOD)
    h.engine.start(GOOD)
    h.start_check(GOOD)
    assert h.engine.count("inspect", GOOD) == 1  # the start check judged the kept verdict


def test_the_racing_half_does_nothing_while_another_check_holds_the_container(make: Any) -> None:
    h = make()
    h.engine.add(BAD, "bad-1")
    assert h.pipeline.locks.acquire(BAD)
    check = h.prevention.created(BAD, None)
    assert not check.raced and check.left_to_do  # the whole check is left to a worker
    assert BAD in h.engine.containers and h.recorder.findings == []
    h.pipeline.locks.release(BAD)
    check.finish()
    assert h.recorder.actions() == [("prevent", "prevented", "create")]
    assert h.engine.count("inspect") == 1


def test_a_start_that_got_in_before_the_removal_sent_by_the_racing_half_is_killed_by_the_rest(
    make: Any,
) -> None:
    h = make()
    h.engine.add(BAD, "bad-1")
    h.engine.start_on_remove.add(BAD)
    check = h.prevention.created(BAD, None)
    assert check.raced and check.left_to_do
    check.finish()
    assert h.recorder.actions() == [("kill", "stopped", "event")]
    assert (h.counter("preventions"), h.counter("prevention_race_lost")) == (0.0, 1.0)


@pytest.mark.parametrize("create", [False, True], ids=["kill", "prevent"])
def test_a_failed_action_keeps_its_reason_apart_and_is_logged_and_counted_as_before(
    make: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, create: bool
) -> None:
    h = make()
    h.engine.add(BAD, "bad-1", status="created" if create else "running")
    reason = f"{BAD[:12]}: 500 Server Error: permission denied"

    def refuse(cid: str, force: bool = False) -> None:
        raise EngineError(reason)

    monkeypatch.setattr(h.engine, "remove" if create else "kill", refuse)
    monkeypatch.setattr(retry, "_testing", True)  # no backoff between the attempts
    with caplog.at_level(logging.INFO, logger="enforcer.pipeline"):
        h.prevention.check_created(BAD) if create else h.start_check()

    [finding] = h.recorder.findings
    action = Action.PREVENT if create else Action.KILL
    assert (finding.action, finding.outcome, finding.outcome_detail) == (action, Outcome.FAILED, reason)
    assert finding.source is (Source.CREATE if create else Source.EVENT) and finding.mode is Mode.KILL
    labels = {"action": str(action), "outcome": "failed"}
    assert h.metrics.registry.get_sample_value("docker_enforcer_actions_total", labels) == 1
    [logged] = [r for r in caplog.records if r.getMessage().startswith("violation:")]
    assert logged.getMessage().endswith(f"action={action} outcome=failed: {reason}")
    assert logged.outcome == f"failed: {reason}"


def test_a_failure_in_the_racing_half_frees_the_container(make: Any) -> None:
    h = make()
    h.engine.add(BAD, "bad-1")
    h.engine.inspect_fails = True
    with pytest.raises(EngineError):
        h.prevention.created(BAD, None)
    assert h.pipeline.locks.acquire(BAD, blocking=False)


def test_slow_rules_send_create_checks_to_workers_until_the_rules_change(
    make: Any, caplog: pytest.LogCaptureFixture
) -> None:
    slow = Rule("slow", lambda c: time.sleep(0.02))
    h = make(slow)
    raced = []
    for n in range(4):
        cid = f"{n}" * 64
        h.engine.add(cid, f"slow-{n}")
        raced.append(h.prevention.created(cid, None).raced)
    assert raced == [True, True, True, False]
    assert "3 times in a row: create checks run on workers until the rules change" in caplog.text

    h.in_force.replace(Policy((slow,), Whitelist(), (), {"rules": Loaded("rules.py", "v2", "", (slow,))}))
    h.engine.add(GOOD, "good-1")
    assert h.prevention.created(GOOD, None).raced


def test_rules_see_the_check_source_as_a_plain_string_as_before(make: Any) -> None:
    seen: list[object] = []
    h = make(Rule("note the source", lambda c: seen.append(c.check_source)))
    h.engine.add(BAD, "bad-1", status="running")
    h.start_check()
    h.pipeline.check_container(h.gatherer.all_running(str(Source.PERIODIC))[0], Source.PERIODIC)

    assert seen == ["event", "periodic"]
    assert all(type(source) is str for source in seen)


def test_removals_at_create_count_for_the_stop_rate_breaker(make: Any) -> None:
    h = make(max_stops_per_minute=1)
    h.engine.add(BAD, "bad-1")
    h.engine.add(GOOD, "bad-2")
    h.prevention.check_created(BAD)
    h.prevention.check_created(GOOD)

    assert BAD not in h.engine.containers and GOOD in h.engine.containers
    assert h.recorder.actions() == [("prevent", "prevented", "create"), ("would prevent", "held", "create")]
    assert (h.recorder.findings[1].mode, h.recorder.findings[1].outcome_detail) == (
        Mode.WARN, h.pipeline.breaker.detail,
    )  # fmt: skip
