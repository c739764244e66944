"""The sampler and the pipeline side of episodes, without an engine: what a round does with engine trouble,
rule errors, containers gone, WARN mode and rules left out of the policy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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


def test_without_timed_rules_a_round_costs_nothing_and_ends_what_was_open(world: Any) -> None:
    sampler, gatherer, _, _, episodes, in_force = world
    gatherer.running = [box("held-1")]
    sampler.sample()
    assert len(episodes.all()) == 1
    in_force.replace(Policy((Rule("now", lambda c: False),), Whitelist(), ()))
    listed = gatherer.listed
    assert not sampler.sample()
    assert gatherer.listed == listed and episodes.all() == []
