"""One-shot audit: every running container (or saved `docker inspect` output) judged, nothing acted on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enforcer.facts.container import Container
from enforcer.facts.gather import FactGatherer, start_key
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.policy import Policy
from enforcer.judge.verdict import Verdict


class InspectFileError(Exception):
    """Saved inspect output that cannot be read; the message names the file and the problem."""


def audit_engine(
    gatherer: FactGatherer,
    policy: Policy,
    options: JudgeOptions,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Verdict]:
    """Running containers with all their facts, then those created and never started, on their params (rules
    that need metrics or position are left for their start, as at a create event)."""
    containers = gatherer.all_running("audit", on_progress) + gatherer.all_created("audit")
    return [judge(container, policy.rules, policy.whitelist, options) for container in containers]


def containers_from_file(path: Path) -> list[Container]:
    """Containers from `docker inspect` JSON (a list); position follows StartedAt, metrics are empty."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InspectFileError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InspectFileError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(i, dict) and "Id" in i for i in data):
        raise InspectFileError(f"{path}: expected a list of `docker inspect` objects, each with an Id")
    ordered = sorted(data, key=start_key)
    return [Container(p["Id"], p, position=i, check_source="audit") for i, p in enumerate(ordered)]


def audit_file(path: Path, policy: Policy, options: JudgeOptions) -> list[Verdict]:
    return [judge(c, policy.rules, policy.whitelist, options) for c in containers_from_file(path)]


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    c = verdict.subject
    return {
        "id": c.cid,
        "name": c.name,
        "image": c.image,
        "violated_rules": verdict.reasons,
        "rule_errors": [{"rule": e.rule, "error": e.error} for e in verdict.errors],
        "whitelist_errors": [
            {"whitelist_rule": e.whitelist_rule, "error": e.error} for e in verdict.whitelist_errors
        ],
        "whitelisted": list(verdict.whitelisted),
        "exempt": verdict.exempt,
        "state": "created" if _never_started(c) else "running",
    }


def _never_started(container: Container) -> bool:
    state = container.params.get("State") or {}
    return state.get("Status") == "created"


def table(verdicts: list[Verdict]) -> str:
    """A plain-text table: container, image, violated rules, rule (and whitelist lambda) errors, whitelisted rules."""
    headers = ("CONTAINER", "IMAGE", "VIOLATED", "RULE ERRORS", "WHITELISTED")
    rows = [headers]
    for v in verdicts:
        whitelisted = f"all ({v.exempt})" if v.exempt else ", ".join(v.whitelisted)
        rows.append(
            (
                v.subject.name + (" (created)" if _never_started(v.subject) else ""),
                v.subject.image,
                ", ".join(v.reasons) or "-",
                "; ".join(str(e) for e in (*v.errors, *v.whitelist_errors)) or "-",
                whitelisted or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join(line.rstrip() for line in lines)
