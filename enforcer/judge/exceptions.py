"""Exceptions that expire: a rules file's `exceptions = [...]`, each exempting containers until a date.

    exceptions = [
        {"rule": "memory limited", "container": "ci-runner-.*", "until": "2027-01-31",
         "reason": "runners get limits with the new image", "ticket": "OPS-123"},
        {"image": "registry.example.com/legacy/.*", "until": "2027-03-01T12:00:00",
         "reason": "legacy app, being retired"},
    ]

`container` and `image` are regular expressions matched against the whole name (without its `/`) and the
image as typed, as WHITE_LIST and IMAGE_WHITE_LIST entries are; at least one is required, both must match
when both are given. `rule` (optional) names the one rule exempted, else all. `until` (required) is an ISO
date, exempting through that day, or a date and time; UTC unless it carries an offset. `reason` is required,
`ticket` optional. Unlike the whitelist variables, which are permanent by design, an exception stops
exempting by itself once its time is up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

EXCEPTION_KEYS = {"rule", "container", "image", "until", "reason", "ticket"}
ENDING_SOON = timedelta(days=7)


class ExceptionError(ValueError):
    """An exception entry that cannot be used; the message says which key and what to write."""


@dataclass(frozen=True)
class RuleException:
    """One exception: which containers, from which rule (None: all), until when, and why."""

    until: datetime  # aware, UTC; the exception exempts strictly before this instant
    reason: str
    rule: str | None = None
    container: str | None = None  # whole-name regex
    image: str | None = None  # whole-image regex
    ticket: str | None = None
    given_until: str = field(default="", compare=False)  # as written: a date means through that day
    _container_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _image_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key in ("container", "image"):
            pattern = getattr(self, key)
            if pattern is not None:
                object.__setattr__(self, f"_{key}_re", re.compile(pattern))

    def __str__(self) -> str:
        target = " and ".join(
            f"{key} {pattern!r}"
            for key, pattern in (("container", self.container), ("image", self.image))
            if pattern
        )
        rule = f"rule {self.rule!r}" if self.rule else "all rules"
        ticket = f", {self.ticket}" if self.ticket else ""
        return f"exception from {rule} for {target} until {self.until_text} ({self.reason}{ticket})"

    @property
    def until_text(self) -> str:
        return self.given_until or self.until.isoformat()

    def active(self, now: datetime) -> bool:
        return now < self.until

    def applies(self, name: str, images: Iterable[str], rule_name: str) -> bool:
        """Whether it covers this container and rule, whatever the time."""
        if self.rule is not None and self.rule != rule_name:
            return False
        if self._container_re is not None and not self._container_re.fullmatch(name):
            return False
        return self._image_re is None or any(self._image_re.fullmatch(ref) for ref in images)

    def days_left(self, now: datetime) -> float:
        return round((self.until - now).total_seconds() / 86400, 1)

    def summary(self, now: datetime) -> dict[str, Any]:
        """JSON-able, for /rules, /config, the page and `check`."""
        return {
            "rule": self.rule,
            "container": self.container,
            "image": self.image,
            "until": self.until_text,
            "ends_at": self.until.isoformat(),
            "reason": self.reason,
            "ticket": self.ticket,
            "active": self.active(now),
            "days_left": max(0.0, self.days_left(now)),
        }


def parse_exceptions(path: Path, items: Any) -> tuple[RuleException, ...]:
    """The file's `exceptions` list; every problem at once, one line each, in one ExceptionError."""
    if not isinstance(items, (list, tuple)):
        raise ExceptionError(f"{path}: `exceptions` must be a list of dicts, not {type(items).__name__}")
    parsed, problems = [], []
    for index, item in enumerate(items, start=1):
        try:
            parsed.append(_one(item))
        except ExceptionError as exc:
            problems.append(f"{path}: exception #{index}: {exc}")
    if problems:
        raise ExceptionError("\n".join(problems))
    return tuple(parsed)


def _one(item: Any) -> RuleException:
    if not isinstance(item, Mapping):
        raise ExceptionError(
            f"must be a dict like {{'container': ..., 'until': ..., 'reason': ...}}, not {item!r}"
        )
    unknown = set(item) - EXCEPTION_KEYS
    if unknown:
        accepted = ", ".join(sorted(EXCEPTION_KEYS))
        raise ExceptionError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; accepted: {accepted}")
    texts = {key: _text(item, key) for key in EXCEPTION_KEYS - {"until"}}
    if not texts["container"] and not texts["image"]:
        raise ExceptionError("give 'container' or 'image' (a regular expression), or both")
    if not texts["reason"]:
        raise ExceptionError("has no 'reason': say why it is granted, so that it can be reviewed")
    for key in ("container", "image"):
        if texts[key]:
            try:
                re.compile(texts[key] or "")
            except re.error as exc:
                raise ExceptionError(
                    f"'{key}' {texts[key]!r} is not a valid regular expression ({exc})"
                ) from None
    until = item.get("until")
    return RuleException(
        until=parse_until(until),
        given_until=str(until).strip(),
        reason=texts["reason"] or "",
        rule=texts["rule"],
        container=texts["container"],
        image=texts["image"],
        ticket=texts["ticket"],
    )


def _text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExceptionError(f"'{key}' must be a string, not {type(value).__name__}")
    return value.strip() or None


def parse_until(value: Any) -> datetime:
    """`2027-01-31` (through that day, UTC) or `2027-01-31T12:00:00[+01:00]` (UTC without an offset)."""
    if value is None:
        raise ExceptionError("has no 'until': every exception ends; write a date such as '2027-01-31'")
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value + timedelta(days=1), datetime.min.time())
    elif isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise ExceptionError(f"'until' {value!r} is not a date") from None
        when = datetime.combine(day + timedelta(days=1), datetime.min.time())
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ExceptionError(
                f"'until' {value!r} is not an ISO date or date and time (2027-01-31, 2027-01-31T18:00:00)"
            ) from None
    else:
        raise ExceptionError(
            f"'until' must be an ISO date string such as '2027-01-31', not {type(value).__name__}"
        )
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def ending_soon(exceptions: Iterable[RuleException], now: datetime) -> list[RuleException]:
    """Those still active that end within ENDING_SOON (`check` warns about them)."""
    return [e for e in exceptions if e.active(now) and e.until - now <= ENDING_SOON]
