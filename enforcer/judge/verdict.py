"""The outcome of judging one container: a value, never an exception."""

from __future__ import annotations

from dataclasses import dataclass

from enforcer.facts.container import Container
from enforcer.judge.rules import Rule


@dataclass(frozen=True)
class RuleError:
    """A rule that raised; `error` is the exception type and message with container secrets redacted."""

    rule: str
    error: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.error}"


@dataclass(frozen=True)
class WhitelistError:
    """A whitelist lambda that raised (it exempted nothing); `error` is redacted as a RuleError's is."""

    whitelist_rule: str
    error: str

    def __str__(self) -> str:
        return f"whitelist rule {self.whitelist_rule}: {self.error}"


@dataclass(frozen=True)
class Verdict:
    """What the judge found; `verdict`, `subject` and `reasons` keep the original's trigger interface."""

    subject: Container
    violated: tuple[Rule, ...] = ()
    errors: tuple[RuleError, ...] = ()
    whitelisted: tuple[str, ...] = ()  # names of rules the container is exempt from
    exempt: str | None = None  # why the whole container was skipped
    deferred: tuple[str, ...] = ()  # rules that need facts not known yet (metrics before start)
    whitelist_errors: tuple[WhitelistError, ...] = ()  # one per whitelist lambda that raised
    # What triggers read in `v.phase` (see enforcer/record/episodes.py): "enforced", "recorded", "warned",
    # "resolved"; None until the pipeline concludes.
    phase: str | None = None

    @property
    def verdict(self) -> bool:
        return bool(self.violated)

    @property
    def reasons(self) -> list[str]:
        return [rule.name for rule in self.violated]

    @property
    def container(self) -> Container:
        return self.subject

    def __str__(self) -> str:
        if self.exempt:
            return f"{self.subject.name}: exempt ({self.exempt})"
        if self.violated:
            return f"{self.subject.name}: violates {', '.join(self.reasons)}"
        return f"{self.subject.name}: ok"
