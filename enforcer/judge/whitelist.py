"""Whitelists: by container name, by image (WHITE_LIST, IMAGE_WHITE_LIST) and by custom lambdas."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from enforcer.facts.container import Container
from enforcer.judge.exceptions import RuleException
from enforcer.judge.rules import WhitelistRule
from enforcer.settings import WhitelistEntry


def image_references(image: str) -> tuple[str, ...]:
    """The image as typed plus its normalised forms: `busybox` and `busybox:latest` name the same image."""
    refs = [image]
    last = image.rsplit("/", 1)[-1]
    if image and "@" not in image and ":" not in last:
        refs.append(image + ":latest")
    elif image.endswith(":latest"):
        refs.append(image[: -len(":latest")])
    for prefix in ("docker.io/library/", "docker.io/"):
        for ref in list(refs):
            if ref.startswith(prefix):
                refs.append(ref[len(prefix) :])
    return tuple(dict.fromkeys(refs))


def _first_match(
    entries: Iterable[WhitelistEntry], values: Iterable[str], rule: str | None
) -> WhitelistEntry | None:
    values = tuple(values)
    for entry in entries:
        if entry.rule == rule and any(entry.matches(value) for value in values):
            return entry
    return None


@dataclass(frozen=True)
class Whitelist:
    names: tuple[WhitelistEntry, ...] = ()
    images: tuple[WhitelistEntry, ...] = ()
    rules: tuple[WhitelistRule, ...] = ()
    exceptions: tuple[RuleException, ...] = ()  # from the rules file; each exempts until its `until`

    def exempts_container(self, container: Container) -> str | None:
        """Why the container is skipped for all rules, or None."""
        entry = _first_match(self.names, (container.name,), None)
        if entry:
            return f"WHITE_LIST entry {entry}"
        entry = _first_match(self.images, image_references(container.image), None)
        if entry:
            return f"IMAGE_WHITE_LIST entry {entry}"
        return None

    def exempts_from_rule(self, container: Container, rule_name: str) -> str | None:
        """Why the container is exempt from one rule, or None. A raising whitelist lambda exempts nothing."""
        return self.rule_exemptions(container)(rule_name)

    def rule_exemptions(
        self,
        container: Container,
        on_error: Callable[[WhitelistRule, BaseException], None] | None = None,
        now: datetime | None = None,
    ) -> Callable[[str], str | None]:
        """`exempts_from_rule` for one container, its name and image forms worked out once, not per rule.

        Order: WHITE_LIST and IMAGE_WHITE_LIST entries for the rule, exceptions still in force at `now` (the
        current time when None), whitelist lambdas. A whitelist lambda that raises exempts nothing (as in
        the original); `on_error` is told about it."""
        names = [entry for entry in self.names if entry.rule is not None]
        images = [entry for entry in self.images if entry.rule is not None]
        when = now or datetime.now(UTC)
        exceptions = [exception for exception in self.exceptions if exception.active(when)]
        if not names and not images and not self.rules and not exceptions:
            return _never
        name = (container.name,)
        refs = image_references(container.image) if images or exceptions else ()

        def exempt(rule_name: str) -> str | None:
            entry = _first_match(names, name, rule_name)
            if entry:
                return f"WHITE_LIST entry {entry}"
            entry = _first_match(images, refs, rule_name)
            if entry:
                return f"IMAGE_WHITE_LIST entry {entry}"
            for exception in exceptions:
                if exception.applies(container.name, refs, rule_name):
                    return str(exception)
            for custom in self.rules:
                try:
                    if custom.check(container, rule_name):
                        return str(custom)
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - must not exempt or crash
                    if on_error is not None:
                        on_error(custom, exc)
            return None

        return exempt


def _never(rule_name: str) -> None:
    return None
