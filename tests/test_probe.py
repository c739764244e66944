"""Which rules read `c.exec` (`docker-enforcer check` lists them): by their code's names and by one call."""

from __future__ import annotations

from typing import Any

import pytest

from enforcer.judge.probe import reads_exec
from enforcer.judge.rules import Rule
from enforcer.library import CATALOG, FACTORIES


def helper_reads_exec(c: Any) -> bool:
    return bool(c.exec)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (lambda c: c.exec and c.exec.privileged, True),
        (lambda c: c.exec is not None and c.exec.user in ("", "0"), True),
        (lambda c: c.params["Nope"] and c.exec, True),  # raises on the sample: found by its code's names
        (lambda c: helper_reads_exec(c), True),  # through a helper: found by the call
        (lambda c: c.name == "x", False),
        (lambda c: c.params["HostConfig"]["Privileged"], False),
        (lambda c: c.image_info["Config"]["User"] == "", False),
        (lambda c: 1 / 0, False),
    ],
)
def test_rules_that_read_exec(check: Any, expected: bool) -> None:
    assert reads_exec(Rule("r", check)) is expected


def test_in_the_library_only_the_exec_rules_read_exec() -> None:
    rules = [Rule(spec.id, spec.check) for spec in CATALOG]
    rules += [Rule(f.call, f.example()["rule"]) for f in FACTORIES]
    assert {rule.name for rule in rules if reads_exec(rule)} == {"no-privileged-exec", "no-root-exec"}
