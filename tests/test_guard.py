"""The blast-radius guard: its decision (pure, on plain dicts), the reloader that applies it, the pipeline under
a hold, and `max_new_stops` in the rules file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakes import Actuator, Recorder, kill_pipeline

from enforcer.dockerhost.errors import EngineUnavailable
from enforcer.facts.container import Container, Missing
from enforcer.judge import guard
from enforcer.judge.judge import JudgeOptions
from enforcer.judge.loader import RulesFileError, load_rules
from enforcer.judge.policy import NOTHING, Hold, Policy
from enforcer.judge.rules import Loaded, Rule
from enforcer.judge.whitelist import Whitelist
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Action, Outcome, Source
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings
from enforcer.sources.guard import BlastRadiusGuard
from enforcer.sources.reload import PolicyReloader

OPTIONS = JudgeOptions()


def running(*names: str) -> list[Container]:
    """Running containers on params and position only, as the guard sees them."""
    return [
        Container(
            f"{i:012d}", {"Id": f"{i:012d}", "Name": "/" + name}, metrics=Missing("metrics"), position=i
        )
        for i, name in enumerate(names)
    ]


def policy(*rules: Rule, max_new_stops: int | None = None, version: str = "") -> Policy:
    loaded = Loaded("rules.py", version or "-".join(r.name for r in rules), "", rules, (), max_new_stops)
    return Policy(rules, Whitelist(), (), {"rules": loaded})


BAD = Rule("no bad names", lambda c: c.name.startswith("bad"))
WORSE = Rule("no bad or worse names", lambda c: c.name.startswith(("bad", "worse")))
EVERYTHING = Rule("everything", lambda c: True)
BY_METRICS = Rule("memory", lambda c: c.metrics["memory_stats"]["usage"] > 0)
ONLY_WARN = Rule("warn only", lambda c: True, mode=Mode.WARN)
TIMED = Rule("for a while", lambda c: True, for_s=60)


def test_counts_only_containers_the_version_in_force_leaves_alone() -> None:
    containers = running("bad-1", "bad-2", "worse-1", "good")
    stopped = guard.new_stops(containers, policy(BAD), policy(WORSE), OPTIONS, Mode.KILL)
    assert [c.name for c in stopped] == ["worse-1"]


def test_within_the_limit_the_candidate_is_put_in_force() -> None:
    candidate = policy(EVERYTHING)
    chosen, stopped = guard.vet(policy(BAD), candidate, running("a", "b"), OPTIONS, Mode.KILL, 2)
    assert chosen is candidate and len(stopped) == 2


def test_past_the_limit_the_version_in_force_stays_and_carries_the_hold() -> None:
    enforcing, candidate = policy(BAD), policy(EVERYTHING)
    chosen, stopped = guard.vet(enforcing, candidate, running("a", "b", "c"), OPTIONS, Mode.KILL, 2)
    assert chosen.rules == enforcing.rules and chosen.version == enforcing.version
    assert chosen.held == Hold(candidate, 3, 2)
    assert "would stop 3 running container(s)" in chosen.held.warning()
    assert "more than its limit of 2" in chosen.held.warning()


def test_the_rules_file_sets_its_own_limit() -> None:
    candidate = policy(EVERYTHING, max_new_stops=50)
    chosen, _ = guard.vet(NOTHING, candidate, running(*"abcdefgh"), OPTIONS, Mode.KILL, 5)
    assert chosen is candidate
    strict = policy(EVERYTHING, max_new_stops=0)
    chosen, _ = guard.vet(NOTHING, strict, running("a"), OPTIONS, Mode.KILL, 5)
    assert chosen.held is not None and chosen.held.limit == 0


def test_at_start_the_first_version_is_compared_with_nothing_enforced() -> None:
    chosen, _ = guard.vet(
        NOTHING, policy(BAD), running(*[f"bad-{i}" for i in range(6)]), OPTIONS, Mode.KILL, 5
    )
    assert chosen.rules == () and chosen.held is not None and chosen.held.new_stops == 6


def test_metrics_rules_warn_rules_and_rules_over_time_are_left_out() -> None:
    candidate = policy(BY_METRICS, ONLY_WARN, TIMED)
    assert guard.new_stops(running("a", "b"), NOTHING, candidate, OPTIONS, Mode.KILL) == []


def test_warn_mode_holds_nothing() -> None:
    candidate = policy(EVERYTHING)
    assert guard.vet(NOTHING, candidate, running("a", "b"), OPTIONS, Mode.WARN, 0) == (candidate, [])


def test_the_enforcers_own_container_is_not_counted() -> None:
    own = JudgeOptions(own_container_id="000000000000")
    assert [
        c.name for c in guard.new_stops(running("me", "x"), NOTHING, policy(EVERYTHING), own, Mode.KILL)
    ] == ["x"]


# -- the reloader applies it ---------------------------------------------------------------------------------


class Listing:
    def __init__(self, containers: list[Container]) -> None:
        self.containers = containers
        self.fails = False

    def __call__(self) -> list[Container]:
        if self.fails:
            raise EngineUnavailable("engine down")
        return self.containers


def reloader_with(
    start: Policy, listing: Listing, monkeypatch: pytest.MonkeyPatch, limit: int = 1
) -> tuple[PolicyReloader, PolicyInForce, list[Policy]]:
    settings = Settings(mode=Mode.KILL, max_new_stops=limit)
    in_force = PolicyInForce(start)
    reloader = PolicyReloader(settings, in_force, Metrics("KILL"))
    loads: list[Policy] = []
    monkeypatch.setattr("enforcer.sources.reload.load_policy", lambda settings, cwd=None: loads.pop(0))
    reloader.guard(BlastRadiusGuard(settings, listing, OPTIONS))
    return reloader, in_force, loads


def test_reloads_hold_and_release(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    listing = Listing(running("bad-1", "bad-2", "good"))
    first = policy(BAD, max_new_stops=2)
    reloader, in_force, loads = reloader_with(first, listing, monkeypatch)
    assert in_force.get() is first  # two new stops, its own limit is 2

    loads.append(policy(EVERYTHING))  # one more than `first` stops; limit 1: allowed
    reloader.reload("SIGHUP")
    assert in_force.get().rules == (EVERYTHING,) and in_force.get().held is None

    in_force.replace(first)
    wide = policy(WORSE, EVERYTHING, version="wide")
    listing.containers = running("bad-1", "a", "b")
    loads.append(wide)
    reloader.reload("SIGHUP")
    held = in_force.get()
    assert held.rules == first.rules and held.held is not None and held.held.policy is wide
    assert "held: it would stop 2 running container(s)" in caplog.text

    loads.append(wide)  # the same version again: still held
    reloader.reload("SIGHUP")
    assert in_force.get().held is not None

    deliberate = policy(BAD, EVERYTHING, max_new_stops=5, version="deliberate")
    loads.append(deliberate)
    reloader.reload("a file changed on disk")
    assert in_force.get() is deliberate
    assert f"the hold of rules version {wide.version[:12]} ends" in caplog.text


def test_a_version_that_cannot_be_judged_is_held_and_judged_again(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = Listing(running("good"))
    reloader, in_force, loads = reloader_with(policy(BAD), listing, monkeypatch)
    listing.fails = True
    loads.append(policy(EVERYTHING))
    reloader.reload("SIGHUP")
    assert in_force.get().held is not None and in_force.get().held.new_stops is None  # type: ignore[union-attr]
    listing.fails = False
    reloader.poll()
    assert in_force.get().rules == (EVERYTHING,) and in_force.get().held is None


# -- the pipeline under a hold ---------------------------------------------------------------------------------


@pytest.fixture
def held_pipeline() -> Iterator[tuple[Pipeline, Actuator, Recorder]]:
    with kill_pipeline(PolicyInForce(guard.holding(policy(BAD), policy(WORSE), 30, 5))) as made:
        yield made


def test_under_a_hold_the_rules_in_force_act_and_the_held_ones_only_record(
    held_pipeline: tuple[Pipeline, Actuator, Recorder],
) -> None:
    pipeline, actuator, recorder = held_pipeline
    bad, worse, good = running("bad-1", "worse-1", "good")
    for container in (bad, worse, good):
        pipeline.check_container(container, Source.PERIODIC)
    assert actuator.stopped == [bad.cid]
    outcomes = {f.name: (f.mode, f.action, f.outcome, f.rules) for f in recorder.findings}
    assert outcomes == {
        "bad-1": (Mode.KILL, Action.KILL, Outcome.STOPPED, ("no bad names",)),
        "worse-1": (Mode.WARN, Action.WOULD_STOP, Outcome.HELD, ("no bad or worse names",)),
    }
    detail = recorder.findings[1].outcome_detail or ""
    assert detail.startswith("rules version") and "held by the blast-radius guard" in detail


# -- max_new_stops in the rules file -------------------------------------------------------------------------


def test_the_loader_reads_max_new_stops(tmp_path: Path) -> None:
    path = tmp_path / "rules.py"
    path.write_text("rules = []\nmax_new_stops = 50\n")
    assert load_rules(path, allow_writable=True).max_new_stops == 50
    path.write_text("rules = []\n")
    assert load_rules(path, allow_writable=True).max_new_stops is None


@pytest.mark.parametrize("value", ["-1", "'50'", "True", "2.5"])
def test_the_loader_refuses_a_bad_max_new_stops(tmp_path: Path, value: str) -> None:
    path = tmp_path / "rules.py"
    path.write_text(f"rules = []\nmax_new_stops = {value}\n")
    with pytest.raises(RulesFileError, match="`max_new_stops` must be a whole number of at least 0"):
        load_rules(path, allow_writable=True)


def test_a_reload_that_fails_unexpectedly_keeps_the_rules_and_the_daemon(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP reloads on the daemon's main loop: nothing a reload raises may end it."""
    first = policy(BAD, max_new_stops=5)
    reloader, in_force, loads = reloader_with(first, Listing(running("good")), monkeypatch)

    def broken(*args: object) -> Policy:
        raise OSError("a bug in vetting")

    monkeypatch.setattr(reloader._guard, "vet", broken)
    loads.append(policy(EVERYTHING))
    assert reloader.reload("SIGHUP") is False
    assert in_force.get() is first
    assert "reload (SIGHUP) failed, the previous rules stay in force" in caplog.text
