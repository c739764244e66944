"""`docker-enforcer test CASES.py`: rule tests, each a container and the rules it must (and must not) violate.

A cases file is plain Python, loaded like a rules file (same ownership and permission checks):

    cases = [
        {"name": "a plain container breaks the memory rule",
         "container": "saved/plain.json",          # saved `docker inspect` output, relative to this file,
         "violates": ["must have memory limit"]},  # or the inspect dict itself
        {"name": "limits set", "container": {...}, "violates": [],
         "metrics": {...}, "position": 3,           # optional: what `c.metrics` and `c.position` give
         "image": "saved/image.json"},              # optional: saved `docker image inspect` (`c.image_info`)
    ]

Every rule is judged for every case (as with STOP_ON_FIRST_VIOLATION=False), whitelists included, so a case
states the exact set of rules it violates; an empty list means it violates nothing. A rule that reads
`c.metrics` in a case without "metrics" is not judged (as at create time, before a container runs), nor
one that reads `c.image_info` in a case without "image".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enforcer.facts.container import NO_IMAGE_INFO, Container, Missing
from enforcer.judge.judge import JudgeOptions, judge
from enforcer.judge.loader import RulesFileError, load_file
from enforcer.judge.policy import Policy

CASE_KEYS = {"name", "container", "violates", "metrics", "position", "image"}


@dataclass(frozen=True)
class Case:
    name: str
    container: Container
    violates: frozenset[str]


@dataclass(frozen=True)
class CaseResult:
    case: Case
    violated: tuple[str, ...]
    errors: tuple[str, ...]
    unjudged: tuple[str, ...] = ()  # rules that read a fact the case does not give (metrics, image)

    @property
    def passed(self) -> bool:
        return not self.errors and frozenset(self.violated) == self.case.violates

    def __str__(self) -> str:
        if self.passed:
            return f"PASS {self.case.name}"
        expected = ", ".join(sorted(self.case.violates)) or "nothing"
        got = ", ".join(self.violated) or "nothing"
        line = f"FAIL {self.case.name}: expected {expected}; violated {got}"
        line += "".join(f"; rule error {error}" for error in self.errors)
        if self.unjudged:
            line += f"; not judged without 'metrics' or 'image': {', '.join(self.unjudged)}"
        return line


def load_cases(path: Path, allow_writable: bool = False, rule_names: Sequence[str] = ()) -> tuple[Case, ...]:
    """The cases of a cases file (checked and loaded as a rules file is); every problem in one RulesFileError."""
    known = set(rule_names)

    def parse(path: Path, items: Iterable[Any]) -> tuple[Case, ...]:
        cases, problems = [], []
        for index, item in enumerate(items, start=1):
            try:
                cases.append(_case(path, index, item, known))
            except RulesFileError as exc:
                problems.append(str(exc))
        if not cases and not problems:
            problems.append(f"{path}: `cases` is empty; add at least one case")
        if problems:
            raise RulesFileError("\n".join(problems))
        return tuple(cases)

    loaded: tuple[Case, ...] = load_file("cases", path, allow_writable, parse).items
    return loaded


def _case(path: Path, index: int, item: Any, known: set[str]) -> Case:
    where = f"{path}: case #{index}"
    if not isinstance(item, Mapping):
        raise RulesFileError(f"{where}: must be a dict with 'name', 'container' and 'violates'")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesFileError(f"{where}: has no 'name' (a non-empty string)")
    where = f"{where} ({name!r})"
    unknown = set(item) - CASE_KEYS
    if unknown:
        accepted = ", ".join(sorted(CASE_KEYS))
        raise RulesFileError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; accepted: {accepted}"
        )
    violates = item.get("violates")
    if not isinstance(violates, (list, tuple)) or not all(isinstance(r, str) for r in violates):
        raise RulesFileError(f"{where}: 'violates' must be a list of rule names ([] for none)")
    strangers = [rule for rule in violates if known and rule not in known]
    if strangers:
        raise RulesFileError(f"{where}: no rule is named {', '.join(map(repr, strangers))}")
    params = _inspect_object(path, where, "container", item.get("container"))
    image = item.get("image")
    image_info = NO_IMAGE_INFO if image is None else _inspect_object(path, where, "image", image)
    metrics = item.get("metrics", NO_METRICS)
    position = item.get("position", 0)
    if not (metrics is NO_METRICS or isinstance(metrics, Mapping)):
        raise RulesFileError(f"{where}: 'metrics' must be a dict (the `docker stats` JSON)")
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise RulesFileError(f"{where}: 'position' must be a whole number of at least 0")
    cid = str(params.get("Id") or f"case-{index}")
    container = Container(
        cid, params, metrics=metrics, position=position, check_source="test", image_info=image_info
    )
    return Case(name, container, frozenset(violates))


NO_METRICS = Missing("metrics", why="the case gives no 'metrics'")


def _inspect_object(path: Path, where: str, key: str, given: Any) -> Mapping[str, Any]:
    """The inspect dict given, or read from saved `docker inspect` (or `docker image inspect`) output: a list
    of one, or the object."""
    if isinstance(given, Mapping):
        return given
    if not isinstance(given, (str, Path)):
        raise RulesFileError(f"{where}: '{key}' must be an inspect dict or the path of saved inspect JSON")
    source = path.parent / given
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RulesFileError(f"{where}: cannot read {source}: {exc}") from None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, Mapping):
        raise RulesFileError(f"{where}: {source} must hold one `docker inspect` object (or a list of one)")
    return data


def run_cases(cases: Sequence[Case], policy: Policy, own_container_id: str | None = None) -> list[CaseResult]:
    """Judge every case against every rule (never stopping at the first violation)."""
    options = JudgeOptions(stop_on_first_violation=False, own_container_id=own_container_id)
    results = []
    for case in cases:
        verdict = judge(case.container, policy.rules, policy.whitelist, options)
        errors = tuple(f"{e.rule}: {e.error}" for e in verdict.errors)
        results.append(CaseResult(case, tuple(verdict.reasons), errors, tuple(verdict.deferred)))
    return results
