"""The HTML pages a browser gets: the status page at `/` and `/recent`, the rules, triggers and config pages.

Everything shown comes through Jinja with autoescaping (templates/*.html), so rule names, labels and
outcomes are text, never markup. The pages load nothing from elsewhere: the CSS is inline, there is no
script, and the status page refreshes itself with a meta tag.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from flask import render_template

from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.record.model import Outcome, Phase, Source
from enforcer.record.store import Detection, Filter, RuleDetection, Summary, Tally
from enforcer.report.episodes_view import episode_rows
from enforcer.settings import Settings
from enforcer.status import SweepTimes

REFRESH_SECONDS = 10


class ShownQuery(Protocol):
    """What the page needs of the request's options (app.Query)."""

    @property
    def within(self) -> str | None: ...

    @property
    def before(self) -> datetime | None: ...

    @property
    def only(self) -> Filter: ...

    def filter_args(self) -> dict[str, Any]: ...

    @property
    def filtered(self) -> bool: ...


def link(path: str, args: Mapping[str, Any], anchor: str = "detections") -> str:
    """A URL of this API with its arguments encoded (repeated keys for lists)."""
    query = urlencode(args, doseq=True)
    return f"{path}{'?' + query if query else ''}#{anchor}"


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
    query: ShownQuery  # the filters shown in the form and kept in the links
    summary: Summary
    episodes: tuple[dict[str, Any], ...] = ()  # rows of episodes_view.episode_rows
    warnings: tuple[str, ...] = ()  # enforcement held back by a safeguard (healthy all the same)
    pending: Mapping[Phase, int] = field(default_factory=dict)  # open episodes pending or warned, by phase
    next_sweep: datetime | None = None
    more: bool = False  # the page is full: there may be older detections


@dataclass(frozen=True)
class RuleLink:
    name: str
    anchor: str | None  # None when the rule is no longer in force
    count: int
    latest: bool  # violated by the latest finding
    severity: str = ""  # "" when the rule is no longer in force


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
    url: str = ""


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


@dataclass(frozen=True)
class SummaryItem:
    """One figure of the summary line: a label, its counts, and the links that filter the table to them."""

    key: str
    label: str
    total: int
    recent: int
    link_all: str
    link_recent: str


@dataclass(frozen=True)
class Liveness:
    """Whether a container still runs, as far as the daemon knows without asking the engine."""

    running: bool | None  # None: not known
    text: str
    as_of: datetime | None


# The summary line: (key, label, outcomes). `held` appears once the Outcome enum has it.
SUMMARY = (
    ("stopped", "stopped or prevented", ("stopped", "prevented")),
    ("recorded", "recorded (WARN)", ("recorded",)),
    ("graced", "warned, in grace", ("warned",)),
    ("held", "held by a safeguard", ("held",)),
    ("failed", "action failed", ("failed",)),
)
KNOWN_OUTCOMES = {str(o) for o in Outcome}
NOT_RUNNING = {
    Outcome.STOPPED: "stopped by the enforcer",
    Outcome.PREVENTED: "removed at create, before it started",
    Outcome.ALREADY_GONE: "already gone when the enforcer acted",
    Outcome.PAUSED: "paused by the enforcer",
}


def summary_tallies(summary: Summary) -> dict[str, Tally]:
    """The summary line's figures by key, rule errors last; a category whose outcome this version does not
    know (yet) is left out."""
    out = {
        key: summary.of(*outcomes)
        for key, _, outcomes in SUMMARY
        if all(o in KNOWN_OUTCOMES for o in outcomes)
    }
    out["rule_errors"] = summary.rule_errors
    return out


def summary_items(summary: Summary) -> list[SummaryItem]:
    labels = {key: (label, outcomes) for key, label, outcomes in SUMMARY}
    items = []
    for key, tally in summary_tallies(summary).items():
        label, outcomes = labels.get(key, ("rule errors", ()))
        args: dict[str, Any] = {"outcome": list(outcomes)} if outcomes else {"errors": "1"}
        items.append(
            SummaryItem(
                key, label, tally.total, tally.recent, link("/", args), link("/", {**args, "within": "24h"})
            )
        )
    return items


def episode_counts(episodes: Any) -> dict[Phase, int]:
    counts = dict.fromkeys((Phase.PENDING, Phase.WARNED), 0)
    for episode in episodes:
        if episode.phase in counts:
            counts[episode.phase] += 1
    return counts


def status_page(facts: PageFacts) -> str:
    anchors = rule_anchors(facts.policy)
    severities = {rule.name: str(rule.severity) for rule in facts.policy.rules}
    rows = [detection_row(d, anchors, severities) for d in facts.detections]
    violators = Counter(link.name for row in rows for link in row.rules)
    query = facts.query
    older = None
    if facts.more and rows:
        last = facts.detections[-1].last_timestamp
        older = link(request_path(facts), {**query.filter_args(), "before": iso_text(last)})
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
        summary=summary_items(facts.summary),
        pending=facts.pending,
        episodes=facts.episodes,
        form=form_view(query, facts.policy),
        filtered=query.filtered or query.before is not None,
        older=older,
    )


def request_path(facts: PageFacts) -> str:
    return "/recent" if facts.recent else "/"


def form_view(query: Any, policy: Policy) -> dict[str, Any]:
    """The filter form's fields with the values in the URL selected."""
    only = query.only
    rules = [rule.name for rule in policy.rules]
    if only.rule is not None and only.rule not in rules:
        rules.append(only.rule)  # a rule no longer in force stays selectable while it is filtered on
    return {
        "owner": only.owner or "",
        "rule": only.rule or "",
        "rules": rules,
        "outcomes": [str(o) for o in Outcome],
        "outcome": {str(o) for o in only.outcomes},
        "within": query.within or "",
        "periods": ["1h", "24h", "7d", "30d"],
        "errors": only.rule_errors,
    }


def liveness(
    detection: Detection, last_sweep: SweepTimes, settings: Settings, episodes: Any = ()
) -> Liveness:
    """Whether the container still runs, from what the daemon already knows: an open episode means the
    sampler saw it running; an action that stopped it means not; a WARN-mode violator is found again by
    every sweep while it runs, so a last detection before the last sweep began means it was not seen since
    (rules held over time are the sampler's: without an open episode, only the last detection is known)."""
    last = detection.last_timestamp
    sampled = [e.updated for e in episodes]
    if sampled:
        return Liveness(True, "running: the rules held over time are following it", max(sampled))
    if detection.outcome in NOT_RUNNING:
        return Liveness(False, f"not running: {NOT_RUNNING[detection.outcome]} at {when(last)}", last)
    if detection.source is Source.SAMPLE:  # sweeps leave rules held over time to the sampler
        return Liveness(
            None,
            f"last seen running at {when(last)}; no episode is open now: it stopped violating, "
            "stopped running or was removed",
            last,
        )
    start = last_sweep.start
    if settings.run_periodic and start is not None and last >= start:
        return Liveness(True, f"running: the last sweep ({when(start)}) found it still violating", last)
    if settings.run_periodic and start is not None:
        return Liveness(
            None,
            f"not seen by the last sweep ({when(start)}): stopped, removed or no longer violating; "
            f"last seen running at {when(last)}",
            last,
        )
    return Liveness(None, f"last seen running at {when(last)}", last)


def rule_detail(found: RuleDetection, rule: Rule | None) -> dict[str, Any]:
    """One rule a container violated: what was done and when, with the rule's description and remediation
    from the policy in force (None when the rule is no longer in force)."""
    meta = {} if rule is None else rule.meta
    return {
        "rule": found.rule,
        "in_force": rule is not None,
        "severity": None if rule is None else str(rule.severity),
        "description": None if rule is None else (rule.description or None),
        "remediation": meta.get("remediation"),
        "count": found.count,
        "first_timestamp": iso_text(found.first_timestamp),
        "last_timestamp": iso_text(found.last_timestamp),
        "mode": str(found.mode),
        "action": str(found.action),
        "outcome": found.outcome_text,
        "source": str(found.source),
        "rule_errors": list(found.rule_errors),
    }


def container_page(
    detection: Detection,
    policy: Policy,
    episodes: Any,
    alive: Liveness,
    others: tuple[Detection, ...],
    host: str,
    settings: Settings,
) -> str:
    rules = {rule.name: rule for rule in policy.rules}
    anchors = rule_anchors(policy)
    severities = {rule.name: str(rule.severity) for rule in policy.rules}
    config = detection.config
    return render_template(
        "container.html",
        host=host,
        row=detection_row(detection, anchors, severities),
        detection=detection,
        alive=alive,
        rules=[
            {
                **rule_detail(r, rules.get(r.rule)),
                "anchor": anchors.get(r.rule),
                "first": when(r.first_timestamp),
                "last": when(r.last_timestamp),
            }
            for r in ranked_rules(detection)
        ],
        episodes=episode_rows(episodes, datetime.now(UTC)),
        config=None if config is None else json.dumps(config, indent=2, sort_keys=True, default=str),
        restart_policy=detection.restart_policy,
        others=[
            (f"/containers/{d.container_id}", d.name, d.container_id[:12], when(d.last_timestamp))
            for d in others
        ],
        mode=str(settings.mode),
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


def detection_row(
    detection: Detection, anchors: Mapping[str, str], severities: Mapping[str, str] | None = None
) -> DetectionRow:
    order = set(detection.latest_rules)
    ranked = ranked_rules(detection)
    severity = severities or {}
    links = tuple(
        RuleLink(r.rule, anchors.get(r.rule), r.count, r.rule in order, severity.get(r.rule, ""))
        for r in ranked
    )
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
        url=f"/containers/{detection.container_id}",
    )


def ranked_rules(detection: Detection) -> list[RuleDetection]:
    """The latest finding's rules in rule order, then the older ones, most recently violated first."""
    order = {rule: index for index, rule in enumerate(detection.latest_rules)}
    return sorted(
        detection.rules, key=lambda r: (order.get(r.rule, len(order)), -r.last_timestamp.timestamp())
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
        "next": when(facts.next_sweep),
        "events": facts.settings.run_start_events,
    }


def outcome_class(outcome: Outcome) -> str:
    if outcome is Outcome.FAILED:
        return "bad"
    if outcome in (Outcome.STOPPED, Outcome.PREVENTED, Outcome.ALREADY_GONE, Outcome.PAUSED, Outcome.LIMITED):
        return "acted"
    return "noted"


def when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_text(moment: datetime) -> str:
    """ISO 8601, UTC without offset, as the JSON shows times (and `before` takes them)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat()


def _path(policy: Policy, kind: str) -> str:
    loaded = policy.sources.get(kind)
    return loaded.path if loaded else ""
