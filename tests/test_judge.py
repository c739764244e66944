"""Judging one container: the original's rule cases on captured inspect/stats JSON, rule errors, stopping.

The rule cases are those of the original's tests and README: memory and CPU limits, the position limit,
host binds outside allowed dirs and the memory-usage metric, each with a violating and a passing container.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from enforcer.facts.container import Container, Missing
from enforcer.facts.gather import params_from_summary
from enforcer.judge.judge import OWN_CONTAINER, Judgement, JudgeOptions, judge
from enforcer.judge.rules import Rule, WhitelistRule
from enforcer.judge.verdict import RuleError, Verdict
from enforcer.judge.whitelist import Whitelist
from enforcer.settings import parse_whitelist

DATA = Path(__file__).resolve().parent / "data"
NO_WHITELIST = Whitelist()
GB = 1024**3


def inspected(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())[0]


def stats(usage: int | None = None) -> dict[str, Any]:
    sample = json.loads((DATA / "stats.json").read_text())
    if usage is not None:
        sample["memory_stats"]["usage"] = usage
    return sample


def container(name: str = "plain", **kwargs: Any) -> Container:
    params = inspected(name)
    return Container(params["Id"], params, **kwargs)


def rule(name: str, check: Any, **kwargs: Any) -> Rule:
    return Rule(name, check, **kwargs)


def flagged(rules: list[Rule], c: Container, **options: Any) -> list[str]:
    return judge(c, rules, NO_WHITELIST, JudgeOptions(**options)).reasons


# -- the original's rule cases ------------------------------------------------------------------------------
MEMORY_LIMIT = [
    rule("must have memory limit", lambda c: c.params["hostconfig"]["memory"] == 0),
    rule("must have memory limit (README)", lambda c: c.params["HostConfig"]["Memory"] == 0),
]
CPU_LIMIT = [
    rule(
        "must have CPU limit",
        lambda c: c.params["hostconfig"]["cpuquota"] == 0 and c.params["hostconfig"]["cpuperiod"] == 0,
    ),
    rule("must have CPU limit (README)", lambda c: c.params["HostConfig"]["CpuQuota"] == 0),
]
BINDS = [
    rule(
        "uses valid dirs for volumes",
        lambda c: (
            False
            if c.params["HostConfig"]["Binds"] is None
            else not all(b.startswith(("/opt/mnt1", "/var/tmp")) for b in c.params["HostConfig"]["Binds"])
        ),
    )
]
MEMORY_USAGE = [rule("can't use over 1GB of RAM", lambda c: c.metrics["memory_stats"]["usage"] > 1 * GB)]


@pytest.mark.parametrize("case", MEMORY_LIMIT, ids=lambda r: r.name)
def test_memory_limit(case: Rule) -> None:
    assert flagged([case], container("plain")) == [case.name]
    assert flagged([case], container("limits")) == []


@pytest.mark.parametrize("case", CPU_LIMIT, ids=lambda r: r.name)
def test_cpu_limit(case: Rule) -> None:
    assert flagged([case], container("plain")) == [case.name]
    assert flagged([case], container("limits")) == []


def test_host_binds_outside_allowed_dirs() -> None:
    # binds_labels binds /etc (not allowed) and /var/tmp (allowed); plain has no binds (JSON null).
    assert flagged(BINDS, container("binds_labels")) == ["uses valid dirs for volumes"]
    assert flagged(BINDS, container("plain")) == []
    allow_etc = rule(
        "binds only below /etc or /var/tmp",
        lambda c: not all(b.startswith(("/etc", "/var/tmp")) for b in c.params["hostconfig"]["binds"] or []),
    )
    assert flagged([allow_etc], container("binds_labels")) == []


def test_memory_usage_metric() -> None:
    sample = stats()
    assert 0 < sample["memory_stats"]["usage"] < GB  # a real busybox sleep uses a few MB
    assert flagged(MEMORY_USAGE, container(metrics=sample)) == []
    assert flagged(MEMORY_USAGE, container(metrics=stats(usage=10 * GB))) == ["can't use over 1GB of RAM"]
    assert flagged(MEMORY_USAGE, container(metrics=stats(usage=1024**2))) == []


def test_position_limit() -> None:
    no_more_than_3 = [rule("no more than 3", lambda c: c.position >= 3)]
    verdicts = [judge(container(position=p), no_more_than_3, NO_WHITELIST) for p in range(5)]
    assert [v.verdict for v in verdicts] == [False, False, False, True, True]


def test_a_position_rule_that_is_not_reached() -> None:
    assert flagged([rule("no more than 10", lambda c: c.position > 10)], container()) == []


def test_a_rule_that_matches_everything() -> None:
    assert flagged([rule("no containers", lambda c: True)], container()) == ["no containers"]


@pytest.mark.parametrize(
    ("result", "violated"),
    [
        (True, True),
        (1, True),
        ("yes", True),
        ([0], True),
        (False, False),
        (0, False),
        ("", False),
        (None, False),
    ],
)
def test_a_truthy_result_is_a_violation(result: object, violated: bool) -> None:
    assert judge(container(), [rule("r", lambda c: result)], NO_WHITELIST).verdict is violated


def test_labels_in_rules() -> None:
    must_have_owner = [
        rule("must have an owner label", lambda c: "owner" not in c.params["config"]["labels"])
    ]
    assert flagged(must_have_owner, container("binds_labels")) == []
    assert flagged(must_have_owner, container("plain")) == ["must have an owner label"]


# -- rule errors ----------------------------------------------------------------------------------------------
def test_a_rule_that_raises_is_a_rule_error_not_a_violation() -> None:
    broken = rule("broken", lambda c: c.params["HostConfig"]["NoSuchThing"] > 0)
    v = judge(container(), [broken], NO_WHITELIST)
    assert v.verdict is False
    assert v.violated == ()
    assert v.errors == (RuleError("broken", "KeyError: 'NoSuchThing'"),)
    assert v.subject.name == "plain"
    assert str(v.errors[0]) == "broken: KeyError: 'NoSuchThing'"


def test_rule_errors_are_violations_when_asked() -> None:
    broken = rule("broken", lambda c: 1 / 0)
    v = judge(container(), [broken], NO_WHITELIST, JudgeOptions(rule_errors_are_violations=True))
    assert v.verdict is True
    assert v.reasons == ["broken"]
    assert v.errors == (RuleError("broken", "ZeroDivisionError: division by zero"),)


def test_a_rule_error_does_not_stop_the_other_rules() -> None:
    rules = [rule("broken", lambda c: 1 / 0), *MEMORY_LIMIT[:1]]
    v = judge(container(), rules, NO_WHITELIST)
    assert v.reasons == ["must have memory limit"]
    assert [e.rule for e in v.errors] == ["broken"]


def test_exceptions_of_every_kind_are_caught() -> None:
    def raises(exc: BaseException) -> Any:
        def check(c: Container) -> None:
            raise exc

        return check

    rules = [
        rule("type", raises(TypeError("bad operand"))),
        rule("attr", lambda c: c.no_such_attribute),
        rule("value", raises(ValueError("nope"))),
        rule("lookup", raises(LookupError("gone"))),
        rule("runtime", raises(RuntimeError("boom"))),
        rule("exit", lambda c: sys.exit(2)),  # would end the check's worker, or the sweep, with it
    ]
    v = judge(container(), rules, NO_WHITELIST)
    assert [e.rule for e in v.errors] == ["type", "attr", "value", "lookup", "runtime", "exit"]
    assert v.errors[-1].error == "SystemExit: 2"
    assert v.errors[1].error.startswith("AttributeError: ")
    assert v.verdict is False


def test_rule_errors_hide_the_containers_env_values_and_command_line() -> None:
    params = copy.deepcopy(inspected("plain"))
    params["Config"]["Env"] = ["DB_PASSWORD=hunter2-secret", "PATH=/bin"]
    c = Container(params["Id"], params)
    leaky = rule("leaky", lambda c: int(c.params["Config"]["Env"][0].split("=")[1]))
    (error,) = judge(c, [leaky], NO_WHITELIST).errors
    assert "hunter2-secret" not in error.error
    assert "***" in error.error
    assert error.error.startswith("ValueError: ")


def test_facts_not_known_yet_defer_the_rule() -> None:
    c = container(metrics=Missing("metrics", why="metrics are not known before the container starts"))
    v = judge(c, [*MEMORY_USAGE, *MEMORY_LIMIT[:1]], NO_WHITELIST)
    assert v.deferred == ("can't use over 1GB of RAM",)
    assert v.errors == ()
    assert v.reasons == ["must have memory limit"]


# -- facts before judgement: a judgement stops for a fact not gathered and goes on once it is -------------------
def judged_gathering(c: Container, rules: list[Rule], wl: Whitelist = NO_WHITELIST, **options: Any) -> Any:
    """Judge as the pipeline does; returns the verdict and the facts asked for, in order."""
    judgement = Judgement(rules, wl, JudgeOptions(**options))
    asked = []
    verdict = judgement.run(c)
    while verdict is None:
        assert judgement.needs is not None
        asked.append(judgement.needs)
        c = c.with_facts(**{judgement.needs: stats(2 * GB) if judgement.needs == "metrics" else 5})
        verdict = judgement.run(c)
    return verdict, asked


def not_gathered() -> Container:
    return container(metrics=Missing("metrics"), position=Missing("position"))


def test_a_judgement_stops_for_a_fact_not_gathered_and_no_finished_rule_runs_twice() -> None:
    log: list[str] = []

    def noting(name: str, check: Any) -> Rule:
        return rule(name, lambda c: log.append(name) or check(c))

    rules = [
        noting("static", lambda c: False),
        noting("position", lambda c: c.position > 3),
        noting("metrics", lambda c: c.metrics["memory_stats"]["usage"] > GB),
        noting("last", lambda c: True),
    ]
    verdict, asked = judged_gathering(not_gathered(), rules, stop_on_first_violation=False)
    assert asked == ["position", "metrics"]
    assert verdict.reasons == ["position", "metrics", "last"]
    assert log == ["static", "position", "position", "metrics", "metrics", "last"]  # stopped ones again
    assert (verdict.subject.position, verdict.deferred, verdict.errors) == (5, (), ())


def test_stop_on_first_violation_keeps_the_rules_order_across_a_stop() -> None:
    rules = [
        rule("metrics", lambda c: c.metrics["memory_stats"]["usage"] > GB),
        rule("static", lambda c: True),
    ]
    verdict, asked = judged_gathering(not_gathered(), rules)
    assert (verdict.reasons, asked) == (["metrics"], ["metrics"])


def test_a_rule_that_catches_the_missing_fact_still_gets_it() -> None:
    def careful(c: Container) -> bool:
        try:
            return c.metrics["memory_stats"]["usage"] > GB
        except Exception:  # noqa: BLE001 - as a defensive user rule might
            return False

    verdict, asked = judged_gathering(not_gathered(), [rule("careful", careful)])
    assert (verdict.reasons, asked) == (["careful"], ["metrics"])


def test_a_whitelist_lambda_that_reads_a_fact_not_gathered_gets_it_and_no_error() -> None:
    wl = Whitelist(rules=(WhitelistRule("busy ones", lambda c, r: c.position > 3),))
    verdict, asked = judged_gathering(not_gathered(), [rule("any", lambda c: True)], wl)
    assert (verdict.whitelisted, verdict.whitelist_errors, asked) == (("any",), (), ["position"])


def test_without_gathering_a_fact_not_gathered_defers_the_rule() -> None:
    v = judge(
        not_gathered(), [rule("metrics", lambda c: c.metrics), rule("static", lambda c: True)], NO_WHITELIST
    )
    assert (v.deferred, v.reasons) == (("metrics",), ["static"])


def test_a_fact_that_failed_to_gather_is_the_error_of_each_rule_that_reads_it() -> None:
    c = container(metrics=Missing("metrics", failure=KeyError("stats 0123: engine says no")))
    rules = [rule("a", lambda c: c.metrics), rule("b", lambda c: c.metrics), rule("c", lambda c: True)]
    verdict, asked = judged_gathering(c, rules)
    assert asked == []
    assert [str(e) for e in verdict.errors] == [
        "a: KeyError: 'stats 0123: engine says no'",
        "b: KeyError: 'stats 0123: engine says no'",
    ]
    assert verdict.reasons == ["c"]


# -- STOP_ON_FIRST_VIOLATION ------------------------------------------------------------------------------------
def counting_rules(log: list[str]) -> list[Rule]:
    def make(name: str, result: bool) -> Rule:
        return rule(name, lambda c: log.append(name) or result)

    return [
        make("first ok", False),
        make("second hit", True),
        make("third ok", False),
        make("fourth hit", True),
    ]


def test_stop_on_first_violation_stops_at_the_first_violated_rule() -> None:
    log: list[str] = []
    v = judge(container(), counting_rules(log), NO_WHITELIST, JudgeOptions(stop_on_first_violation=True))
    assert v.reasons == ["second hit"]
    assert log == ["first ok", "second hit"]


def test_without_stop_on_first_violation_every_rule_runs() -> None:
    log: list[str] = []
    v = judge(container(), counting_rules(log), NO_WHITELIST, JudgeOptions(stop_on_first_violation=False))
    assert v.reasons == ["second hit", "fourth hit"]
    assert log == ["first ok", "second hit", "third ok", "fourth hit"]


def test_stop_on_first_violation_is_the_default() -> None:
    log: list[str] = []
    assert judge(container(), counting_rules(log), NO_WHITELIST).reasons == ["second hit"]


def test_a_rule_error_counted_as_violation_stops_too() -> None:
    log: list[str] = []
    rules = [rule("broken", lambda c: 1 / 0), *counting_rules(log)]
    v = judge(container(), rules, NO_WHITELIST, JudgeOptions(rule_errors_are_violations=True))
    assert v.reasons == ["broken"]
    assert log == []


def test_whitelisted_rules_are_skipped_not_counted() -> None:
    log: list[str] = []
    wl = Whitelist(parse_whitelist("WHITE_LIST", "plain|second hit"))
    v = judge(container(), counting_rules(log), wl)
    assert v.whitelisted == ("second hit",)
    assert v.reasons == ["fourth hit"]
    assert log == ["first ok", "third ok", "fourth hit"]


# -- the enforcer's own container -----------------------------------------------------------------------------
def test_the_enforcers_own_container_is_never_judged() -> None:
    log: list[str] = []
    c = container()
    for own in (c.cid, c.cid[:12]):
        v = judge(c, counting_rules(log), NO_WHITELIST, JudgeOptions(own_container_id=own))
        assert v.exempt == OWN_CONTAINER
        assert v.verdict is False
    assert log == []


def test_another_container_is_judged_beside_the_own_one() -> None:
    v = judge(container(), MEMORY_LIMIT[:1], NO_WHITELIST, JudgeOptions(own_container_id="f" * 64))
    assert v.reasons == ["must have memory limit"]


# -- DISABLE_PARAMS / DISABLE_METRICS: never a crash, a rule error -----------------------------------------------
SUMMARY = {
    "Id": "4f2a" + "0" * 60,
    "Names": ["/web"],
    "Image": "busybox",
    "ImageID": "sha256:" + "8" * 64,
    "Labels": {"Owner": "alice"},
    "Created": 1790000000,
    "State": "running",
}


def test_without_params_only_id_name_image_and_labels_are_known() -> None:
    params = params_from_summary(SUMMARY)
    c = Container(SUMMARY["Id"], params)
    assert c.params["Id"] == SUMMARY["Id"]
    assert str(c) == "/web"
    assert c.name == "web"
    assert c.image == "busybox"
    assert c.params["config"]["labels"]["owner"] == "alice"
    assert "HostConfig" not in c.params
    assert "State" not in c.params


def test_without_params_a_rule_on_params_is_a_rule_error() -> None:
    c = Container(SUMMARY["Id"], params_from_summary(SUMMARY))
    v = judge(c, [*MEMORY_LIMIT, rule("owner label", lambda c: "owner" not in c.labels)], NO_WHITELIST)
    assert v.verdict is False
    assert [e.rule for e in v.errors] == [r.name for r in MEMORY_LIMIT]
    assert all(e.error.startswith("KeyError:") for e in v.errors)


def test_without_metrics_a_rule_on_metrics_is_a_rule_error() -> None:
    v = judge(container(metrics={}), [*MEMORY_USAGE, *MEMORY_LIMIT[:1]], NO_WHITELIST)
    assert v.errors == (RuleError("can't use over 1GB of RAM", "KeyError: 'memory_stats'"),)
    assert v.reasons == ["must have memory limit"]


# -- the verdict ------------------------------------------------------------------------------------------------
def test_verdict_keeps_the_originals_trigger_interface() -> None:
    v = judge(container(), MEMORY_LIMIT, NO_WHITELIST, JudgeOptions(stop_on_first_violation=False))
    assert v.verdict is True
    assert v.subject is v.container
    assert str(v.subject) == "/plain"
    assert v.reasons == [r.name for r in MEMORY_LIMIT]
    assert str(v) == "plain: violates must have memory limit, must have memory limit (README)"


def test_verdict_strings() -> None:
    c = container()
    assert str(Verdict(c)) == "plain: ok"
    assert str(Verdict(c, exempt="WHITE_LIST entry plain")) == "plain: exempt (WHITE_LIST entry plain)"
