"""The policy in force: rules, whitelists and triggers loaded together, with the files they came from."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from enforcer.judge.loader import load_rules, load_triggers, load_whitelist_rules, resolve
from enforcer.judge.rules import Loaded, Rule, Trigger
from enforcer.judge.whitelist import Whitelist
from enforcer.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    whitelist: Whitelist
    triggers: tuple[Trigger, ...]
    sources: dict[str, Loaded] = field(default_factory=dict, compare=False)
    held: Hold | None = field(default=None, compare=False)  # a newer version held by the blast-radius guard

    @property
    def version(self) -> str:
        """sha256 over the three files' contents: changes whenever any of them does."""
        digest = hashlib.sha256()
        for kind in sorted(self.sources):
            digest.update(self.sources[kind].sha256.encode())
        return digest.hexdigest()

    @cached_property
    def instant_rules(self) -> tuple[Rule, ...]:
        """Rules judged at once, on every check (events, sweeps, create)."""
        return tuple(rule for rule in self.rules if not rule.timed)

    @cached_property
    def timed_rules(self) -> tuple[Rule, ...]:
        """Rules held over time ("for", "grace"): judged only by the sampler (enforcer/sources/samples.py)."""
        return tuple(rule for rule in self.rules if rule.timed)

    @property
    def max_new_stops(self) -> int | None:
        """The rules file's own `max_new_stops`, if it sets one."""
        rules = self.sources.get("rules")
        return rules.max_new_stops if rules is not None else None

    def paths(self) -> dict[str, str]:
        return {kind: loaded.path for kind, loaded in self.sources.items()}


@dataclass(frozen=True)
class Hold:
    """A rules version the blast-radius guard held back: it would stop `new_stops` running containers that the
    version in force leaves alone, more than `limit`. Its rules only record (WARN) until a version within the
    limit is loaded; the policy that carries the hold stays enforced. `new_stops` is None when the running
    containers could not be listed (the engine did not answer): it is judged again."""

    policy: Policy
    new_stops: int | None
    limit: int

    @property
    def detail(self) -> str:
        """The outcome detail of what the held version's rules find."""
        return f"rules version {self.policy.version[:12]} held by the blast-radius guard (MAX_NEW_STOPS)"

    def warning(self) -> str:
        """For /healthz and the page (no container names: /healthz is open to anyone who reaches it)."""
        if self.new_stops is None:
            why = "the running containers could not be listed to judge it"
        else:
            why = (
                f"it would stop {self.new_stops} running container(s) that the rules in force leave alone, "
                f"more than its limit of {self.limit}"
            )
        return (
            f"rules version {self.policy.version[:12]} held: {why}; its rules only record until a version "
            "within the limit is loaded (max_new_stops = N in the rules file allows a deliberate change)"
        )


NOTHING = Policy((), Whitelist(), ())  # what is enforced before the first version is put in force


def load_policy(settings: Settings, cwd: Path | None = None) -> Policy:
    """Load and validate all three files; raises RulesFileError naming the first problem."""
    files = settings.files
    loaders = {
        "rules": (load_rules, files.rules),
        "whitelist_rules": (load_whitelist_rules, files.whitelist_rules),
        "triggers": (load_triggers, files.triggers),
    }
    sources = {}
    for kind, (loader, explicit) in loaders.items():
        path = resolve(kind, explicit, cwd)
        sources[kind] = loader(path, files.allow_writable)
        log.debug("%s file: %s", kind, path)
    whitelist = Whitelist(
        settings.white_list,
        settings.image_white_list,
        sources["whitelist_rules"].items,
        sources["rules"].exceptions,
    )
    return Policy(sources["rules"].items, whitelist, sources["triggers"].items, sources)
