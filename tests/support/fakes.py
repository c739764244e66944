"""Fakes of the pipeline's parts for pure tests: a recorder that keeps findings, an actuator that stops nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from enforcer.act.actions import Done
from enforcer.act.triggers import TriggerRunner
from enforcer.breaker import StopRateBreaker
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Action, Finding, Outcome
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings


class Recorder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)


class Actuator:
    """Notes the ids it was asked to stop and says they stopped."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop(self, cid: str, params: Mapping[str, Any], timeout_s: int | None = None) -> Done:
        self.stopped.append(cid)
        return Done(Action.KILL, Outcome.STOPPED)


@contextmanager
def kill_pipeline(
    in_force: PolicyInForce, breaker: StopRateBreaker | None = None
) -> Iterator[tuple[Pipeline, Actuator, Recorder]]:
    """A KILL-mode pipeline for facts handed over (as sweeps do) with the fakes above; triggers closed after."""
    triggers = TriggerRunner(on_error=lambda name: None)
    actuator, recorder = Actuator(), Recorder()
    made = Pipeline(
        Settings(mode=Mode.KILL), in_force, None, actuator, recorder, triggers, Metrics("KILL"),  # type: ignore[arg-type]
        breaker=breaker,
    )  # fmt: skip
    try:
        yield made, actuator, recorder
    finally:
        triggers.close(wait=True)
