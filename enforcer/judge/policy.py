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

    def paths(self) -> dict[str, str]:
        return {kind: loaded.path for kind, loaded in self.sources.items()}


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
