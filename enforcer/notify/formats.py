"""The bodies each receiver reads, built from a Notice (pure: no I/O).

- webhook: one JSON object (`webhook_body`);
- Slack and Mattermost incoming webhooks: `{"text": ...}` (`slack_body`);
- Alertmanager's v2 API: a list with one alert per container and rule (`alertmanager_alerts`);
- falcosidekick: one Falco event per rule (`falco_events`), valid for its input checks (priority one of
  Falco's, rule, time and output_fields set).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from enforcer.notify.notice import EndReason, Notice, NoticeRule

# An open episode is re-posted every REPEAT_S; its alert's endsAt stays ALERT_AHEAD_S ahead, as Prometheus
# keeps several resend intervals: a missed re-post or two does not resolve it.
REPEAT_S = 60
ALERT_AHEAD_S = 5 * REPEAT_S
SOURCE = "docker-enforcer"
FALCO_PRIORITY = {
    "critical": "Critical",
    "high": "Error",
    "medium": "Warning",
    "low": "Notice",
    "info": "Informational",
}
ENDED = {
    EndReason.FIXED: "no longer violates",
    EndReason.GONE: "is gone (stopped or removed); it no longer violates",
    EndReason.STOPPED: "was stopped by the enforcer",
    EndReason.RESOLVED: "no longer violates (fixed, restarted or gone)",
}


def rfc3339(when: datetime) -> str:
    """`2026-12-01T12:00:00.123456Z`: what Alertmanager and falcosidekick (Go's time.Time) read."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if when.utcoffset() is not None else when.isoformat() + "Z"


def headline(notice: Notice, rules: tuple[NoticeRule, ...] | None = None) -> str:
    """One line for people: what happened to which container, on which host, whose it is."""
    named = ", ".join(f"{r.name} ({r.severity})" for r in (rules or notice.rules))
    who = f"{notice.name} ({notice.short_id}, image {notice.image}, owner {notice.owner}) on {notice.host}"
    test = "[test] " if notice.test else ""
    if notice.ended and notice.reason != EndReason.STOPPED:
        return f"{test}resolved: {who} {ENDED.get(notice.reason or '', 'no longer violates')}: {named}"
    what = {
        "enforced": f"{notice.action}: {notice.outcome}",
        "warned": "warned: will be acted on unless fixed",
    }
    done = what.get(str(notice.phase), f"recorded, would {notice.action.removeprefix('would ')}")
    return f"{test}{notice.mode} {done}: {who} violates {named}"


def webhook_body(notice: Notice) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "host": notice.host,
        "container": notice.name,
        "container_id": notice.container_id,
        "image": notice.image,
        "owner": notice.owner,
        "rules": [{"name": r.name, "severity": r.severity} for r in notice.rules],
        "mode": notice.mode,
        "action": notice.action,
        "outcome": notice.outcome,
        "phase": str(notice.phase),
        "ended": notice.ended,
        "reason": notice.reason,
        "started": rfc3339(notice.started),
        "time": rfc3339(notice.time),
        "text": headline(notice),
        "test": notice.test,
    }


def slack_body(notice: Notice) -> dict[str, Any]:
    """Slack's and Mattermost's incoming webhooks both take `text` (Markdown-ish, no blocks needed). `&`, `<`
    and `>` are escaped as Slack asks, and a zero-width space follows each `@` (Mattermost's `@channel`,
    `@all`, `@name`): a label value (the owner) chosen by whoever made the container must not become a
    mention or a link."""
    icon = ":white_check_mark:" if notice.ended and notice.reason != EndReason.STOPPED else ":rotating_light:"
    text = headline(notice).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("@", "@\u200b")
    return {"text": f"{icon} docker-enforcer {text}"}


def alert_labels(notice: Notice, rule: NoticeRule) -> dict[str, str]:
    """What identifies an alert: the same labels are the same alert."""
    return {
        "alertname": rule.name,
        "container": notice.name,
        "host": notice.host,
        "severity": rule.severity,
        "owner": notice.owner,
        "mode": notice.mode,
    }


def alertmanager_alerts(notice: Notice) -> list[dict[str, Any]]:
    """One alert per rule; firing with endsAt ALERT_AHEAD_S ahead while the episode is open, resolved
    (endsAt now) once it ended. A stop by the enforcer fires once and resolves by itself."""
    ahead = notice.time + timedelta(seconds=ALERT_AHEAD_S)
    ends = notice.time if notice.ended and notice.reason != EndReason.STOPPED else ahead
    return [
        {
            "labels": alert_labels(notice, rule),
            "annotations": {
                "summary": headline(notice, (rule,)),
                "container_id": notice.container_id,
                "image": notice.image,
                "action": notice.action,
                "outcome": notice.outcome,
                "phase": str(notice.phase),
            },
            "startsAt": rfc3339(notice.started),
            "endsAt": rfc3339(ends),
        }
        for rule in notice.rules
    ]


def falco_events(notice: Notice) -> list[dict[str, Any]]:
    """One Falco event per rule. falcosidekick refuses (400) a priority it does not know, an empty rule, no
    time or empty output_fields; it filters each output on the priority."""
    return [
        {
            "output": headline(notice, (rule,)),
            "priority": "Informational" if notice.ended else FALCO_PRIORITY.get(rule.severity, "Warning"),
            "rule": rule.name,
            "time": rfc3339(notice.time),
            "source": SOURCE,
            "hostname": notice.host,
            "tags": [SOURCE, "container", notice.mode.lower(), str(notice.phase), rule.severity],
            "output_fields": {
                "container.id": notice.short_id,
                "container.name": notice.name,
                "container.image": notice.image,
                "enforcer.owner": notice.owner,
                "enforcer.mode": notice.mode,
                "enforcer.action": notice.action,
                "enforcer.outcome": notice.outcome,
                "enforcer.phase": str(notice.phase),
                "enforcer.severity": rule.severity,
                "enforcer.ended": notice.ended,
            },
        }
        for rule in notice.rules
    ]
