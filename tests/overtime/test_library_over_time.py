"""Library factories for rules held over time: what they flag on captured stats, and that they load."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from support.cli import write

from enforcer.facts.container import Container
from enforcer.judge.loader import load_rules
from enforcer.judge.rules import Remedy
from enforcer.library import FACTORIES, LibraryError, limits

DATA = Path(__file__).resolve().parent.parent / "data"
STATS: dict[str, Any] = json.loads((DATA / "stats.json").read_text())
PARAMS: dict[str, Any] = json.loads((DATA / "plain.json").read_text())[0]


def container(cpu_percent: float, memory_usage: int = 552960) -> Container:
    stats = copy.deepcopy(STATS)
    stats["memory_stats"]["usage"] = memory_usage
    return Container(PARAMS["Id"], PARAMS, metrics=stats, cpu_percent=cpu_percent)


BUSY, SOME, IDLE = container(150.0), container(30.0), container(0.3)
BIG = container(5.0, memory_usage=3 * 1024**3)


def flagged(rule: dict[str, Any]) -> set[str]:
    named = {"busy": BUSY, "some": SOME, "idle": IDLE, "big": BIG}
    return {name for name, c in named.items() if rule["rule"](c)}


def test_each_factory_flags_exactly_what_it_says() -> None:
    assert flagged(limits.cpu_above(90)) == {"busy"}
    assert flagged(limits.cpu_above(20, for_="1m")) == {"busy", "some"}
    assert flagged(limits.memory_above("2g")) == {"big"}
    assert flagged(limits.idle()) == {"idle"}
    assert flagged(limits.idle(below_percent=10)) == {"idle", "big"}


def test_they_carry_for_grace_and_action_and_load(tmp_path: Path) -> None:
    rule = limits.idle(for_="1d", grace="1h", action="stop")
    assert (rule["for"], rule["grace"], rule["action"], rule["name"]) == (
        "1d",
        "1h",
        "stop",
        "idle below 1% CPU for 1d",
    )
    path = write(
        tmp_path / "user",
        "rules.py",
        "from enforcer.library import limits\n"
        "rules = [limits.idle(for_='1d', grace='1h', action='stop'), limits.cpu_above(90, for_='10m', action='pause'),"
        " limits.memory_above('2g', for_=600, name='big memory')]\n",
    )
    idle, hog, big = load_rules(path).items
    assert (idle.for_s, idle.grace_s, idle.action) == (86400, 3600, Remedy.STOP)
    assert (hog.for_s, hog.action, big.for_s, big.name) == (600, Remedy.PAUSE, 600, "big memory")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: limits.cpu_above(-1), "cpu_above"),
        (lambda: limits.cpu_above(90, for_="soon"), "cpu_above: for_"),
        (lambda: limits.idle(for_=0), "idle: for_ must be above 0"),
        (lambda: limits.memory_above("lots"), "memory_above"),
        (lambda: limits.idle(grace="later"), "idle: grace"),
    ],
)
def test_bad_parameters_fail_when_the_file_loads(call: Any, message: str) -> None:
    with pytest.raises(LibraryError, match=message):
        call()


def test_they_stay_out_of_the_inspect_only_examples() -> None:
    assert not {f.factory for f in FACTORIES} & {limits.cpu_above, limits.memory_above, limits.idle}
