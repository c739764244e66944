"""The create-time verdicts kept for the start check, and the rule-error log: each a small owner with a lock."""

from __future__ import annotations

import logging
import threading

import pytest

from enforcer.error_log import ErrorLog
from enforcer.facts.container import Container
from enforcer.judge.verdict import RuleError, Verdict
from enforcer.pending import NOTHING_KEPT, Kept, PendingVerdicts
from enforcer.report.metrics import Metrics


def verdict(cid: str = "c1", deferred: tuple[str, ...] = (), errors: tuple[RuleError, ...] = ()) -> Verdict:
    return Verdict(Container(cid, {"Id": cid, "Name": f"/{cid}"}), errors=errors, deferred=deferred)


# -- pending verdicts ----------------------------------------------------------------------------------------
def test_a_kept_verdict_is_taken_once_under_the_same_rules() -> None:
    pending, v = PendingVerdicts(), verdict()
    pending.keep("c1", "v1", v)
    assert pending.take("c1", "v1") == Kept(v, (), False)
    assert pending.take("c1", "v1") is NOTHING_KEPT


def test_a_verdict_under_other_rules_is_judged_again() -> None:
    pending = PendingVerdicts()
    pending.keep("c1", "v1", verdict())
    assert pending.take("c1", "v2") == Kept(None, (), False)


def test_rules_left_for_the_start_are_named_and_the_verdict_judged_again() -> None:
    pending = PendingVerdicts()
    pending.keep("c1", "v1", verdict(deferred=("needs metrics",)))
    assert pending.take("c1", "v1") == Kept(None, ("needs metrics",), False)


def test_a_container_the_create_check_stopped_already_is_said_so_whatever_the_rules() -> None:
    pending, v = PendingVerdicts(), verdict(deferred=("needs metrics",))
    pending.keep("c1", "v1", v, acted=True)
    assert pending.take("c1", "v2") == Kept(v, (), True)


def test_forget_and_the_limit_drop_verdicts_oldest_first() -> None:
    pending = PendingVerdicts(limit=2)
    for cid in ("c1", "c2", "c3"):
        pending.keep(cid, "v1", verdict(cid))
    assert len(pending) == 2
    assert pending.take("c1", "v1") is NOTHING_KEPT
    pending.forget("c2")
    assert pending.take("c2", "v1") is NOTHING_KEPT
    assert pending.take("c3", "v1").verdict is not None


def test_concurrent_keeps_and_takes_lose_nothing() -> None:
    pending = PendingVerdicts()

    def work(n: int) -> None:
        for i in range(500):
            pending.keep(f"{n}-{i}", "v1", verdict(f"{n}-{i}"))
            assert pending.take(f"{n}-{i}", "v1").verdict is not None

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pending) == 0


# -- the error log -------------------------------------------------------------------------------------------
def rule_errors(metrics: Metrics, rule: str) -> float:
    return metrics.registry.get_sample_value("docker_enforcer_rule_errors_total", {"rule": rule}) or 0.0


def test_a_rule_error_is_counted_every_time_and_warned_once_per_container_and_rules_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="enforcer.pipeline")
    metrics = Metrics("WARN")
    errors = ErrorLog(metrics)
    broken = (RuleError("broken", "KeyError: 'x'"),)
    for cid, version in (("c1", "v1"), ("c1", "v1"), ("c2", "v1"), ("c1", "v2")):
        errors.note(verdict(cid, errors=broken), version)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "enforcer.pipeline"]
    assert levels == [
        ("WARNING", "rule error: broken on container c1 (c1): KeyError: 'x'"),
        ("DEBUG", "rule error: broken on container c1 (c1): KeyError: 'x'"),
        ("WARNING", "rule error: broken on container c2 (c2): KeyError: 'x'"),
        ("WARNING", "rule error: broken on container c1 (c1): KeyError: 'x'"),
    ]
    assert rule_errors(metrics, "broken") == 4


def test_the_error_log_forgets_the_oldest_keys_past_its_limit() -> None:
    errors = ErrorLog(Metrics("WARN"), limit=2)
    assert [errors.first_time((k,)) for k in ("a", "b", "a", "c", "a")] == [True, True, False, True, True]
