"""Shared by the record and report tests: the names that must survive escaping, and a Finding factory."""

from __future__ import annotations

from typing import Any

from enforcer.record.model import Action, Finding, Outcome, Source
from enforcer.settings import Mode

QUOTED_RULE = "no \"quoted\" 'names' </td><b>bold</b>"
SAFE_RULE = "must have memory limit"
HTML_LABEL = "<script>alert('x')</script>"
RULES_TEXT = f"""# the test rules
rules = [
    {{"name": {QUOTED_RULE!r}, "rule": lambda c: True, "severity": "high"}},
    {{"name": {SAFE_RULE!r}, "rule": lambda c: False, "mode": "WARN", "description": "limits"}},
]
"""
TRIGGERS_TEXT = """triggers = [{"name": "log it", "trigger": lambda verdict: None}]\n"""
HOST = "test-host"
CID = "c0ffee" + "0" * 58


def finding(**fields: Any) -> Finding:
    values: dict[str, Any] = {
        "container_id": CID,
        "name": "web",
        "image": "busybox",
        "rules": (QUOTED_RULE,),
        "mode": Mode.KILL,
        "action": Action.STOP,
        "outcome": Outcome.STOPPED,
        "source": Source.PERIODIC,
        "labels": {"team": "blue"},
    }
    values.update(fields)
    return Finding(**values)
