"""The HTML pages a browser gets: the status page at `/` and `/recent`, the rules, triggers and config pages.

Everything shown comes through Jinja with autoescaping (templates/*.html), so rule names, labels and
outcomes are text, never markup. The pages load nothing from elsewhere: the CSS is inline, there is no
script, and the status page refreshes itself with a meta tag.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import render_template

from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.record.model import Outcome
from enforcer.record.store import Detection
from enforcer.settings import Settings
from enforcer.status import SweepTimes

REFRESH_SECONDS = 10


@dataclass(frozen=True)
class PageFacts:
    """What the status page shows, gathered by the app from the status, the store and the settings."""

    host: str
    version: str
    settings: Settings
    policy: Policy
    problems: tuple[str, ...]
    last_sweep: SweepTimes
    sweep_running_since: datetime | None
    detections: tuple[Detection, ...]
    total: int  # containers in the record
    recent: bool  # /recent: only since the last sweep began
    episodes: tuple[dict[str, Any], ...] = ()  # rows of episodes_view.episode_rows
    warnings: tuple[str, ...] = ()  # enforcement held back by a safeguard (healthy all the same)


@dataclass(frozen=True)
class RuleLink:
    name: str
    anchor: str | None  # None when the rule is no longer in force
    count: int
    latest: bool  # violated by the latest finding


@dataclass(frozen=True)
class DetectionRow:
    anchor: str
    container_id: str
    short_id: str
    name: str
    image: str
    owner: str
    labels: tuple[tuple[str, str], ...]
    rules: tuple[RuleLink, ...]
    rule_errors: tuple[str, ...]
    mode: str
    action: str
    outcome: str
    outcome_class: str
    source: str
    count: int
    first_seen: str
    last_seen: str


@dataclass(frozen=True)
class RuleRow:
    anchor: str
    name: str
    severity: str
    mode: str
    mode_set_by_rule: bool
    prevent: bool
    description: str
    containers: int  # containers on this page that violated it


def status_page(facts: PageFacts) -> str:
    anchors = rule_anchors(facts.policy)
    rows = [detection_row(d, anchors) for d in facts.detections]
    violators = Counter(link.name for row in rows for link in row.rules)
    return render_template(
        "status.html",
        refresh=REFRESH_SECONDS,
        host=facts.host,
        version=facts.version,
        mode=str(facts.settings.mode),
        problems=facts.problems,
        warnings=facts.warnings,
        recent=facts.recent,
        rows=rows,
        total=facts.total,
        sweep=sweep_view(facts),
        rules=[rule_row(rule, anchors, facts.settings, violators) for rule in facts.policy.rules],
        rules_version=facts.policy.version,
        rules_path=_path(facts.policy, "rules"),
        exceptions=exception_rows(facts.policy),
        episodes=facts.episodes,
    )


def exception_rows(policy: Policy, now: datetime | None = None) -> list[dict[str, Any]]:
    """The rules file's exceptions with what is left of each, soonest to end first."""
    when = now or datetime.now(UTC)
    return [e.summary(when) for e in sorted(policy.whitelist.exceptions, key=lambda e: e.until)]


def file_page(kind: str, listing: Mapping[str, Any], host: str) -> str:
    """/rules or /triggers for a browser: the structured list, then the file's text."""
    return render_template("file.html", kind=kind, listing=listing, host=host)


def config_page(config: Mapping[str, Any], host: str) -> str:
    rows = [(key, value if isinstance(value, str) else json.dumps(value)) for key, value in config.items()]
    return render_template("config.html", rows=rows, host=host)


def rule_anchors(policy: Policy) -> dict[str, str]:
    """Page anchors by rule name: by position, since a rule name may hold any character."""
    return {rule.name: f"rule-{index}" for index, rule in enumerate(policy.rules, start=1)}


def detection_row(detection: Detection, anchors: Mapping[str, str]) -> DetectionRow:
    # The latest finding's rules in rule order, then the older ones, most recently violated first.
    order = {rule: index for index, rule in enumerate(detection.latest_rules)}
    ranked = sorted(
        detection.rules, key=lambda r: (order.get(r.rule, len(order)), -r.last_timestamp.timestamp())
    )
    links = tuple(RuleLink(r.rule, anchors.get(r.rule), r.count, r.rule in order) for r in ranked)
    return DetectionRow(
        anchor="c-" + detection.container_id[:12],
        container_id=detection.container_id,
        short_id=detection.container_id[:12],
        name=detection.name,
        image=detection.image,
        owner=detection.owner,
        labels=tuple(sorted((str(k), str(v)) for k, v in detection.labels.items())),
        rules=links,
        rule_errors=detection.rule_errors,
        mode=str(detection.mode),
        action=detection.action,
        outcome=detection.outcome_text,
        outcome_class=outcome_class(detection.outcome),
        source=detection.source,
        count=detection.count,
        first_seen=when(detection.first_timestamp),
        last_seen=when(detection.last_timestamp),
    )


def rule_row(rule: Rule, anchors: Mapping[str, str], settings: Settings, violators: Counter[str]) -> RuleRow:
    return RuleRow(
        anchor=anchors[rule.name],
        name=rule.name,
        severity=str(rule.severity),
        mode=str(rule.effective_mode(settings.mode)),
        mode_set_by_rule=rule.mode is not None,
        prevent=rule.prevent,
        description=rule.description,
        containers=violators[rule.name],
    )


def sweep_view(facts: PageFacts) -> dict[str, Any]:
    sweep = facts.last_sweep
    duration = sweep.duration
    return {
        "enabled": facts.settings.run_periodic,
        "interval": facts.settings.check_interval_s,
        "start": when(sweep.start),
        "end": when(sweep.end),
        "seconds": None if duration is None else f"{duration.total_seconds():.3f}",
        "running_since": when(facts.sweep_running_since),
        "events": facts.settings.run_start_events,
    }


def outcome_class(outcome: Outcome) -> str:
    if outcome is Outcome.FAILED:
        return "bad"
    if outcome in (Outcome.STOPPED, Outcome.PREVENTED, Outcome.ALREADY_GONE):
        return "acted"
    return "noted"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _path(policy: Policy, kind: str) -> str:
    loaded = policy.sources.get(kind)
    return loaded.path if loaded else ""
