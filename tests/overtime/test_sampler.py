"""The sampler and the pipeline side of episodes, without an engine: what a round does with engine trouble,
rule errors, containers gone, WARN mode and rules left out of the policy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from enforcer.act.actions import Done
from enforcer.breaker import StopRateBreaker
from enforcer.dockerhost.errors import EngineUnavailable
from enforcer.facts.container import Container
from enforcer.facts.usage import CpuHistory
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule, Trigger
from enforcer.judge.verdict import Verdict
from enforcer.judge.whitelist import Whitelist
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.episodes import EpisodeStore
from enforcer.record.model import Action, Finding, Outcome, Phase
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings
from enforcer.sources.samples import Sampler
from enforcer.sustained import Sustained

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def box(name: str, started: str = "2026-12-01T11:00:00Z") -> Container:
    params = {"Id": name * 4, "Name": "/" + name, "State": {"Running": True, "StartedAt": started},
              "Config": {"Image": "busybox", "Labels": {}}}  # fmt: skip
    return Container(name * 4, params, check_source="sample")


class Gatherer:
    """Hands over prepared containers, or fails as the engine would; remembers what it was told to forget."""

    def __init__(self) -> None:
        self.running: list[Container] = []
        self.failing = False
        self.forgotten: list[str] = []
        self.listed = 0
        self.cpu = CpuHistory()

    def all_running(self, source: str) -> list[Container]:
        self.listed += 1
        if self.failing:
            raise EngineUnavailable("engine down")
        return list(self.running)

    def forget(self, cid: str) -> None:
        self.forgotten.append(cid)


class Told:
    """Stands for the trigger runner: keeps (phase, container, rules) of every verdict handed over."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str, tuple[str, ...]]] = []

    def submit(self, triggers: Any, verdict: Verdict) -> None:
        self.calls.append((verdict.phase, verdict.subject.name, tuple(verdict.reasons)))


class Recorder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)


RULES = (
    Rule("held", lambda c: c.name.startswith("held"), for_s=10),
    Rule("graced", lambda c: c.name.startswith("graced"), grace_s=30),
    Rule("shaky", lambda c: c.params["State"]["Shaky"], for_s=10),
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Sampler, Gatherer, Told, Recorder, EpisodeStore, PolicyInForce]]:
    in_force = PolicyInForce(Policy(RULES, Whitelist(), (Trigger("t", print),)))
    gatherer, told, recorder = Gatherer(), Told(), Recorder()
    episodes = EpisodeStore(tmp_path / "state.db")
    pipeline = Pipeline(
        Settings(mode=Mode.WARN), in_force, gatherer, None, recorder, told, Metrics("WARN"),  # type: ignore[arg-type]
    )  # fmt: skip
    sampler = Sampler(gatherer, Sustained(pipeline, episodes), episodes)  # type: ignore[arg-type]
    yield sampler, gatherer, told, recorder, episodes, in_force
    sampler.close()
    episodes.close()


def test_an_engine_error_neither_advances_nor_resets_and_a_gone_container_is_resolved(world: Any) -> None:
    sampler, gatherer, told, _, episodes, _ = world
    gatherer.running = [box("held-1"), box("graced-1")]
    assert sampler.sample()
    before = {e.key: e for e in episodes.all()}
    assert {e.phase for e in before.values()} == {Phase.PENDING, Phase.WARNED}
    assert told.calls == [("warned", "graced-1", ("graced",))]
    gatherer.failing = True
    assert not sampler.sample()
    assert {e.key: e for e in episodes.all()} == before
    gatherer.failing, gatherer.running = False, []
    assert sampler.sample()
    assert episodes.all() == []
    assert told.calls[-1] == ("resolved", "graced-1", ("graced",))  # the pending one ends silently
    assert len(told.calls) == 2


def test_a_rule_that_raises_leaves_its_clock_as_it_was(world: Any) -> None:
    sampler, _, _, _, episodes, in_force = world
    sustained, policy = sampler.sustained, in_force.get()

    def shaky(**state: Any) -> Container:
        return Container("s" * 12, {"Id": "s" * 12, "Name": "/shaky-1", "State": {"StartedAt": "x", **state}})

    sustained.sample(shaky(Shaky=True), policy, at(0))
    (pending,) = episodes.all()
    sustained.sample(shaky(), policy, at(5))
    assert episodes.all() == [pending]  # KeyError from the rule: not a sample
    sustained.sample(shaky(Shaky=True), policy, at(10))
    assert episodes.all()[0].phase is Phase.RECORDED  # held 10 s: acted on (WARN: recorded)


def test_warn_mode_records_the_warning_then_what_would_have_been_done_once(world: Any) -> None:
    sampler, _, told, recorder, episodes, in_force = world
    sustained, policy = sampler.sustained, in_force.get()
    for second in (0, 10, 31, 40, 50):
        sustained.sample(box("graced-2"), policy, at(second))
    assert [(f.action, f.outcome) for f in recorder.findings] == [
        (Action.WOULD_STOP, Outcome.WARNED),
        (Action.WOULD_STOP, Outcome.RECORDED),
    ]
    assert recorder.findings[0].outcome_detail == "would kill at 12:00:30 UTC"
    assert [phase for phase, _, _ in told.calls] == ["warned", "recorded"]
    assert episodes.all()[0].phase is Phase.RECORDED


def test_an_action_past_the_stop_rate_is_held_and_taken_by_a_later_sample(tmp_path: Path) -> None:
    class Actuator:
        def __init__(self) -> None:
            self.stopped: list[str] = []

        def stop(self, cid: str, params: Any) -> Done:
            self.stopped.append(cid)
            return Done(Action.KILL, Outcome.STOPPED)

    in_force = PolicyInForce(Policy(RULES, Whitelist(), ()))
    recorder, actuator, episodes = Recorder(), Actuator(), EpisodeStore(tmp_path / "state.db")
    breaker = StopRateBreaker(1, clock=lambda: 100.0)
    assert breaker.admit()  # the minute's one action has gone out: the next ones are held
    pipeline = Pipeline(
        Settings(mode=Mode.KILL), in_force, Gatherer(), actuator, recorder, Told(), Metrics("KILL"),  # type: ignore[arg-type]
        breaker=breaker,
    )  # fmt: skip
    sustained = Sustained(pipeline, episodes)
    try:
        for second in (0, 10, 15):
            sustained.sample(box("held-3"), in_force.get(), at(second))
        assert actuator.stopped == []
        assert [(f.mode, f.outcome) for f in recorder.findings] == [(Mode.WARN, Outcome.HELD)] * 2
        assert episodes.all()[0].phase is Phase.PENDING  # still due
        pipeline.breaker = StopRateBreaker(10)  # the rate has fallen
        sustained.sample(box("held-3"), in_force.get(), at(20))
        assert actuator.stopped == ["held-3" * 4]
        assert (recorder.findings[-1].mode, recorder.findings[-1].outcome) == (Mode.KILL, Outcome.STOPPED)
    finally:
        episodes.close()


def test_without_timed_rules_a_round_costs_nothing_and_ends_what_was_open(world: Any) -> None:
    sampler, gatherer, _, _, episodes, in_force = world
    gatherer.running = [box("held-1")]
    sampler.sample()
    assert len(episodes.all()) == 1
    in_force.replace(Policy((Rule("now", lambda c: False),), Whitelist(), ()))
    listed = gatherer.listed
    assert not sampler.sample()
    assert gatherer.listed == listed and episodes.all() == []


def test_rounds_follow_each_other_one_interval_apart_or_at_once_when_one_ran_longer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from enforcer.sources.samples import schedule

    class Slow:
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.running = 0
            self.overlapped = False

        def sample(self) -> bool:
            self.overlapped |= self.running > 0
            self.running += 1
            self.starts.append(time.monotonic())
            time.sleep(1.5 if len(self.starts) == 2 else 0.1)  # the second round outlasts the interval
            self.running -= 1
            return True

    slow, scheduler = Slow(), BackgroundScheduler(timezone="UTC")
    schedule(scheduler, slow, 1)  # type: ignore[arg-type]
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while len(slow.starts) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
        while slow.running:
            time.sleep(0.05)
    gaps = [b - a for a, b in zip(slow.starts, slow.starts[1:], strict=False)]
    assert len(gaps) >= 3 and not slow.overlapped
    assert 0.9 <= gaps[0] <= 1.3  # one interval
    assert 1.45 <= gaps[1] <= 1.8  # the long round: the next one at once, not a whole interval later
    assert 0.9 <= gaps[2] <= 1.3
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]


def test_rounds_go_on_when_a_round_returns_at_once() -> None:
    """A round without timed rules returns at once: the next one still comes."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from enforcer.sources.samples import schedule

    class Quick:
        rounds = 0

        def sample(self) -> bool:
            self.rounds += 1
            return False

    quick, scheduler = Quick(), BackgroundScheduler(timezone="UTC")
    schedule(scheduler, quick, 1)  # type: ignore[arg-type]
    scheduler.start()
    try:
        deadline = time.monotonic() + 8
        while quick.rounds < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
    assert quick.rounds >= 4


def test_a_sample_that_raises_is_logged_and_the_round_goes_on(
    world: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sampler, gatherer, _, _, episodes, _ = world
    gatherer.running = [box("held-1"), box("held-2"), box("held-3")]
    gatherer.cpu.keep_only = lambda cids: kept.extend(cids)  # type: ignore[method-assign]
    kept: list[str] = []
    put = episodes.put

    def put_but_fail_for_held_2(episode: Any) -> None:
        if episode.name == "held-2":
            raise ValueError("disk I/O error")  # the state database, as sqlite3 may fail
        put(episode)

    monkeypatch.setattr(episodes, "put", put_but_fail_for_held_2)
    assert sampler.sample()
    assert sorted(e.name for e in episodes.all()) == ["held-1", "held-3"]
    assert kept == [c.cid for c in gatherer.running]  # the round finished
    assert sampler.last_round_s is not None
    (failed,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failed.getMessage() == "sample of held-2 failed"
