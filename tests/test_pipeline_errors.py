"""Rule errors and whitelist lambda errors through the pipeline: counted every time, logged at WARNING once per
rule (or lambda), container and rules version and at DEBUG after that, recorded with the finding."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from enforcer.act.triggers import TriggerRunner
from enforcer.facts.container import Container
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Loaded, Rule, WhitelistRule
from enforcer.judge.whitelist import Whitelist
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Finding, Source
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings

SECRET = "hunter2-secret"
RULES = (
    Rule("broken", lambda c: c.params["Nope"]),
    Rule("no bad names", lambda c: c.name.startswith("bad")),
)
WHITELIST = Whitelist(rules=(WhitelistRule("leaky", lambda c, r: int(c.params["Config"]["Env"][0])),))


class Recorder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)


def container(name: str) -> Container:
    params = {"Id": name * 8, "Name": "/" + name, "Config": {"Image": "busybox", "Env": [f"TOKEN={SECRET}"]}}
    return Container(name * 8, params)


def policy(version: str) -> Policy:
    return Policy(RULES, WHITELIST, (), {"rules": Loaded("rules.py", version, "", RULES)})


@pytest.fixture
def pipeline() -> Iterator[tuple[Pipeline, Recorder]]:
    settings = Settings(mode=Mode.WARN, stop_on_first_violation=False)
    triggers = TriggerRunner(on_error=lambda name: None)
    recorder = Recorder()
    made = Pipeline(
        settings,
        PolicyInForce(policy("v1")),
        None,  # type: ignore[arg-type]  # sweeps hand their facts over: no gathering
        None,  # type: ignore[arg-type]  # WARN mode: no action on the engine
        recorder,
        triggers,
        Metrics("WARN"),
    )
    yield made, recorder
    triggers.close(wait=True)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (record.levelname, record.getMessage().split(" on container")[0])
        for record in caplog.records
        if record.name == "enforcer.pipeline" and " error: " in record.getMessage()
    ]


def count(pipeline: Pipeline, metric: str, **labels: Any) -> float:
    return pipeline.metrics.registry.get_sample_value(f"docker_enforcer_{metric}_total", labels) or 0.0


def test_a_raising_whitelist_lambda_is_counted_logged_once_and_recorded_like_a_rule_error(
    pipeline: tuple[Pipeline, Recorder], caplog: pytest.LogCaptureFixture
) -> None:
    checks, recorder = pipeline
    caplog.set_level(logging.DEBUG, logger="enforcer.pipeline")
    checks.check_container(container("bad-1"), Source.PERIODIC)
    checks.check_container(container("bad-1"), Source.PERIODIC)  # the next sweep
    checks.check_container(container("bad-2"), Source.PERIODIC)  # another container
    checks.in_force.replace(policy("v2"))
    checks.check_container(container("bad-1"), Source.PERIODIC)  # a new rules version

    assert errors_logged(caplog) == [
        ("WARNING", "rule error: broken"),
        ("WARNING", "whitelist rule error: leaky"),
        ("DEBUG", "rule error: broken"),
        ("DEBUG", "whitelist rule error: leaky"),
        ("WARNING", "rule error: broken"),
        ("WARNING", "whitelist rule error: leaky"),
        ("WARNING", "rule error: broken"),
        ("WARNING", "whitelist rule error: leaky"),
    ]
    assert count(checks, "whitelist_rule_errors", whitelist_rule="leaky") == 4.0
    assert count(checks, "rule_errors", rule="broken") == 4.0
    assert [f.rules for f in recorder.findings] == [("no bad names",)] * 4  # the lambda exempted nothing
    assert recorder.findings[0].rule_errors == (
        "broken: KeyError: 'Nope'",
        "whitelist rule leaky: ValueError: invalid literal for int() with base 10: '***'",
    )
    assert SECRET not in caplog.text
