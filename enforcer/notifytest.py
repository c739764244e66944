"""`docker-enforcer notify-test`: one test notification through every trigger, and what each receiver answered.

Notifiers (`"once": True`) get a test Notice (phase "recorded", `test` True, rule "docker-enforcer
notify-test", severity info); other triggers a verdict of a test container violating that rule. Each call runs
on its own thread and is given `timeout_s`: a trigger that hangs is reported, not waited for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from enforcer.facts.container import Container
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule, Severity, Trigger
from enforcer.judge.verdict import Verdict
from enforcer.notify.notice import Notice, NoticeRule, utcnow
from enforcer.record.model import Phase

TEST_RULE = "docker-enforcer notify-test"
TEST_NAME = "docker-enforcer-notify-test"
TEST_ID = "0" * 64


@dataclass(frozen=True)
class Answer:
    """What one trigger did with the test: `ok`, and the receiver's answer or the error."""

    trigger: str
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{self.trigger}: {'answered' if self.ok else 'FAILED'}: {self.text}"


def test_notice(host: str, mode: str, owner: str) -> Notice:
    now = utcnow()
    return Notice(
        host=host, container_id=TEST_ID, name=TEST_NAME, image="notify-test", owner=owner,
        rules=(NoticeRule(TEST_RULE, str(Severity.INFO)),), mode=mode, action="none", outcome="test",
        phase=Phase.RECORDED, started=now, time=now, test=True,
    )  # fmt: skip


def test_verdict(owner: str) -> Verdict:
    params = {"Id": TEST_ID, "Name": "/" + TEST_NAME, "Config": {"Image": "notify-test", "Labels": {}}}
    container = Container(TEST_ID, params, owner=owner, check_source="notify-test")
    return Verdict(
        container, (Rule(TEST_RULE, lambda c: True, severity=Severity.INFO),), phase=Phase.RECORDED
    )


def send_tests(policy: Policy, host: str, mode: str, owner: str, timeout_s: float = 30) -> list[Answer]:
    """Call every trigger once, in order, each given at most `timeout_s`."""
    return [_call(trigger, host, mode, owner, timeout_s) for trigger in policy.triggers]


def _call(trigger: Trigger, host: str, mode: str, owner: str, timeout_s: float) -> Answer:
    argument: Any = test_notice(host, mode, owner) if trigger.once else test_verdict(owner)
    outcome: list[Answer] = []

    def call() -> None:
        try:
            answer = trigger.call(argument)
            outcome.append(Answer(trigger.name, True, "" if answer is None else str(answer)[:500] or "ok"))
        except Exception as exc:  # noqa: BLE001 - reported, like every trigger error
            outcome.append(Answer(trigger.name, False, f"{type(exc).__name__}: {exc}"[:500]))

    worker = threading.Thread(target=call, name=f"notify-test:{trigger.name}"[:60], daemon=True)
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        if isinstance(argument, Notice):
            argument.stop.set()  # its retries give up
        return Answer(trigger.name, False, f"no answer within {timeout_s:g} s")
    answer = outcome[0]
    return answer if answer.text or not answer.ok else Answer(trigger.name, True, "ok (returned nothing)")
