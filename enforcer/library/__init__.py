"""Ready rules for the well-known dangers, so that host owners need not write lambdas for them.

    from enforcer.library import cis, proxies, limits
    rules = cis.rules() + [
        proxies.binds_only_under("/opt/mnt1", "/opt/mnt2"),
        proxies.require_label("com.example.owner"),
        limits.memory_at_most("2g"),
    ]

Three groups: `cis` (CIS Docker Benchmark v1.6 section 5), `proxies` (what Sockguard and Lancelot refuse) and
`limits` (resource ceilings and hygiene); `images` has rules about the image behind each container. Each ready rule is an ordinary rule dict with the extra keys `id`,
`cis`, `tags` and `remediation`; whitelists, STOP_ON_FIRST_VIOLATION, `mode` and triggers apply unchanged.
A rule belongs to every group that lists it (no-privileged is both CIS 5.5 and a proxy rule), so combine
groups with `select("cis", "proxy")`, which gives each rule once, rather than by adding lists.
docs/rules.md (`python -m enforcer.library.docs`) describes every rule.
"""

from __future__ import annotations

from typing import Any

from enforcer.library import cis, images, limits, proxies
from enforcer.library._base import FactorySpec, LibraryError, RuleSpec, selected, unique
from enforcer.library._inspect import MissingFacts

__all__ = [
    "CATALOG",
    "FACTORIES",
    "LibraryError",
    "MissingFacts",
    "RuleSpec",
    "all_rules",
    "cis",
    "images",
    "limits",
    "proxies",
    "select",
    "spec",
]

CATALOG: tuple[RuleSpec, ...] = unique(cis.SPECS + cis.OPT_IN + proxies.SPECS + limits.SPECS)
"""Every fixed ready rule, each once."""
FACTORIES: tuple[FactorySpec, ...] = cis.FACTORIES + proxies.FACTORIES + limits.FACTORIES + images.FACTORIES
"""The parameterised rules, each with the example call the docs and tests use."""


def all_rules() -> list[dict[str, Any]]:
    """Every fixed ready rule as a rule dict (new dicts on every call)."""
    return [spec.as_rule() for spec in CATALOG]


def select(*keys: str) -> list[dict[str, Any]]:
    """The fixed rules that any key names, by id ("no-docker-socket"), CIS id ("cis-5.5") or tag ("proxy").

    Each rule comes once, in catalog order. A key that names no rule raises LibraryError, so a typo in the
    rules file fails at load time instead of silently checking less.
    """
    if not keys:
        raise LibraryError("select: name at least one rule id, 'cis-<number>' or tag, e.g. select('cis')")
    return [spec.as_rule() for spec in selected(CATALOG, keys)]


def spec(rule_id: str) -> RuleSpec:
    """The spec of one fixed rule by id."""
    for candidate in CATALOG:
        if candidate.id == rule_id:
            return candidate
    raise LibraryError(f"no library rule has the id {rule_id!r}")
