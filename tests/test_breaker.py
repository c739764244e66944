"""The stop-rate breaker: at most N actions in any minute; past that, actions are held (recorded, not done)
until fewer than N went out in the last minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.fakes import Actuator, Recorder, kill_pipeline

from enforcer.breaker import StopRateBreaker
from enforcer.facts.container import Container
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.judge.whitelist import Whitelist
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Action, Outcome, Source
from enforcer.settings import Mode


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lets_the_limit_through_in_a_minute_then_holds() -> None:
    clock = Clock()
    breaker = StopRateBreaker(3, clock)
    assert [breaker.admit() for _ in range(5)] == [True, True, True, False, False]
    state = breaker.state()
    assert state.tripped and state.held == 2
    assert "more than 3 actions in a minute; 2 action(s) held" in (state.warning() or "")


def test_the_window_slides_one_action_at_a_time() -> None:
    clock = Clock()
    breaker = StopRateBreaker(2, clock)
    assert breaker.admit()
    clock.now += 30
    assert breaker.admit()
    assert not breaker.admit()
    clock.now += 29.9  # the first is not yet a minute old
    assert not breaker.admit()
    clock.now += 0.1  # now it is: one slot free
    assert breaker.admit()
    assert not breaker.admit()
    clock.now += 30  # the second is a minute old
    assert breaker.admit()
    assert not breaker.state().tripped


def test_held_actions_do_not_count_and_the_breaker_closes_when_the_rate_falls() -> None:
    clock = Clock()
    breaker = StopRateBreaker(1, clock)
    assert breaker.admit()
    for _ in range(100):
        clock.now += 0.5
        breaker.admit()  # held: they must not keep the window full
    assert breaker.state().tripped
    clock.now = 1060.0  # a minute after the one action that went out
    assert breaker.admit()
    assert not breaker.state().tripped


def test_the_warning_ends_a_minute_after_the_last_hold_even_without_further_actions() -> None:
    clock = Clock()
    breaker = StopRateBreaker(1, clock)
    breaker.admit()
    breaker.admit()
    assert breaker.state().tripped
    clock.now += 60
    assert not breaker.state().tripped
    assert breaker.state().warning() is None


def test_zero_means_no_limit() -> None:
    breaker = StopRateBreaker(0, Clock())
    assert all(breaker.admit() for _ in range(1000))
    assert not breaker.state().tripped


@pytest.fixture
def breaking_pipeline() -> Iterator[tuple[Pipeline, Actuator, Recorder]]:
    rules = (Rule("no bad names", lambda c: c.name.startswith("bad")),)
    in_force = PolicyInForce(Policy(rules, Whitelist(), ()))
    with kill_pipeline(in_force, StopRateBreaker(3, Clock())) as made:
        yield made


def test_the_pipeline_stops_up_to_the_limit_and_records_the_rest_as_held(
    breaking_pipeline: tuple[Pipeline, Actuator, Recorder],
) -> None:
    pipeline, actuator, recorder = breaking_pipeline
    for i in range(5):
        cid = f"{i}" * 12
        pipeline.check_container(Container(cid, {"Id": cid, "Name": f"/bad-{i}"}), Source.PERIODIC)
    assert len(actuator.stopped) == 3
    held = [f for f in recorder.findings if f.outcome is Outcome.HELD]
    assert len(held) == 2
    assert {(f.mode, f.action) for f in held} == {(Mode.WARN, Action.WOULD_STOP)}
    assert "stop-rate breaker" in (held[0].outcome_detail or "")
    assert held[0].outcome_text.startswith("held: stop-rate breaker")


def test_a_huge_limit_allocates_nothing_up_front() -> None:
    # The ring of MAX_STOPS_PER_MINUTE slots once made a 1e9 limit take 8 GB at start (and 2**62 fail).
    clock = Clock()
    breaker = StopRateBreaker(2**62, clock)
    assert all(breaker.admit() for _ in range(1000))
    clock.now += 60
    assert breaker.admit() and not breaker.state().tripped
