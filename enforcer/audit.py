"""One-shot audit: every running container (or saved `docker inspect` output) judged, nothing acted on."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enforcer.facts.container import NO_IMAGE_INFO, Container
from enforcer.facts.gather import FactGatherer, Progress, start_key
from enforcer.judge.judge import Judgement, JudgeOptions, judge
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
    """Running containers judged concurrently, each fact a rule reads gathered for it (stats only for rules
    that read metrics; the image once per image), then those created and never started, on their params
    (rules that need metrics or position are left for their start, as at a create event)."""
    running = gatherer.all_running("audit", metrics=False)
    progress = Progress(on_progress, len(running))

    def judged(container: Container) -> Verdict:
        verdict = _judged(container, policy, options, gatherer)
        progress.one_done()
        return verdict

    verdicts = gatherer.each(judged, running)
    created = gatherer.each(lambda c: _judged(c, policy, options, gatherer), gatherer.all_created("audit"))
    return [verdict for verdict in verdicts + created if verdict is not None]


def _judged(container: Container, policy: Policy, options: JudgeOptions, gatherer: FactGatherer) -> Verdict:
    return Judgement(policy.rules, policy.whitelist, options).until_done(container, gatherer.complete)


def _json_objects(path: Path, what: str) -> list[dict[str, Any]]:
    """A JSON list of objects with an Id (or one such object), as `docker inspect` prints them."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InspectFileError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InspectFileError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(i, dict) and "Id" in i for i in data):
        raise InspectFileError(f"{path}: expected a list of `{what}` objects, each with an Id")
    return data


def containers_from_file(
    path: Path, owner_labels: Sequence[str] = (), images_path: Path | None = None
) -> list[Container]:
    """Containers from `docker inspect` JSON (a list); position follows StartedAt, metrics are empty. With
    `images_path` (saved `docker image inspect` output), each container's image is the one of its image id;
    rules that read the image of a container whose image is not there are not judged."""
    ordered = sorted(_json_objects(path, "docker inspect"), key=start_key)
    images = (
        {}
        if images_path is None
        else {i["Id"]: i for i in _json_objects(images_path, "docker image inspect")}
    )
    return [
        Container(
            p["Id"],
            p,
            position=i,
            check_source="audit",
            owner_labels=owner_labels,
            image_info=images.get(str(p.get("Image") or ""), NO_IMAGE_INFO),
        )
        for i, p in enumerate(ordered)
    ]


def audit_file(
    path: Path,
    policy: Policy,
    options: JudgeOptions,
    owner_labels: Sequence[str] = (),
    images_path: Path | None = None,
) -> list[Verdict]:
    containers = containers_from_file(path, owner_labels, images_path)
    return [judge(c, policy.rules, policy.whitelist, options) for c in containers]


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
    return columns(rows)


@dataclass(frozen=True)
class Change:
    """One container whose verdict differs between two rules versions (what-if)."""

    container: Container
    before: tuple[str, ...]  # rules the old version flags
    after: tuple[str, ...]  # rules the new version flags

    @property
    def flagged(self) -> tuple[str, ...]:
        """Rules that newly flag the container."""
        return tuple(rule for rule in self.after if rule not in self.before)

    @property
    def released(self) -> tuple[str, ...]:
        """Rules that flagged it and no longer do."""
        return tuple(rule for rule in self.before if rule not in self.after)

    def json(self) -> dict[str, Any]:
        c = self.container
        return {
            "id": c.cid,
            "name": c.name,
            "image": c.image,
            "before": list(self.before),
            "after": list(self.after),
            "newly_flagged": list(self.flagged),
            "released": list(self.released),
        }


def compare(verdicts: list[Verdict], old: Policy, new: Policy, options: JudgeOptions) -> list[Change]:
    """The containers already judged, judged again by both versions; those whose violated rules differ."""
    changes = []
    for verdict in verdicts:
        container = verdict.subject
        before = judge(container, old.rules, old.whitelist, options).reasons
        after = judge(container, new.rules, new.whitelist, options).reasons
        if set(before) != set(after):
            changes.append(Change(container, tuple(before), tuple(after)))
    return changes


def change_table(changes: list[Change], old_path: Path, new_path: str) -> str:
    """The what-if as plain text: one row per changed container."""
    if not changes:
        return f"no container's verdict changes from {old_path} to {new_path}"
    headers = ("CONTAINER", "IMAGE", "NOW", "NEWLY FLAGGED BY", "RELEASED FROM")
    rows = [headers]
    for change in changes:
        now = "flagged" if change.after else "clean"
        was = "flagged" if change.before else "clean"
        rows.append(
            (
                change.container.name,
                change.container.image,
                now if now != was else f"still {now}",
                ", ".join(change.flagged) or "-",
                ", ".join(change.released) or "-",
            )
        )
    return f"{len(changes)} container(s) change from {old_path} to {new_path}:\n" + columns(rows)


def columns(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned plain-text columns; the last column is left ragged."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
    return "\n".join(line.rstrip() for line in lines)
