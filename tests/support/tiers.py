"""Test tiers: what the fast tier (`scripts/test --fast`, `pytest --fast`) leaves out, and its guard.

Markers, registered in pyproject.toml:
    engine    needs the isolated Docker engine
    external  starts a process: a browser, promtool, systemd-analyze, openssl, a docker-enforcer process
    slow      a benchmark, or a test that takes many seconds by design

Applied by conftest.py without anyone asking: `engine` to every test that uses the `engine` fixture
(directly or through another fixture), `external` to everything under tests/ship/, `slow` to modules whose
name says speed or bench (test_library_speed.py). Anything else that starts a process carries the marker
itself (`@pytest.mark.external`, or `pytestmark` for a whole module).

The fast tier runs the tests with none of these markers, and starting a process there fails the test with a
message naming the marker to add: a new test cannot slip a browser or a daemon into the fast tier unnoticed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

NOT_FAST = ("engine", "external", "slow")
FIXTURE_MARKS = {"engine": "engine"}
FOLDER_MARKS = {"ship": "external"}
SLOW_NAMES = ("speed", "bench")
TESTS_DIR = Path(__file__).resolve().parent.parent


def classify(item: pytest.Item) -> None:
    """Add the markers that follow from the test's fixtures, folder and module name."""
    fixtures = set(getattr(item, "fixturenames", ()))
    for fixture, marker in FIXTURE_MARKS.items():
        if fixture in fixtures:
            item.add_marker(marker)
    path = Path(str(item.path))
    if path.is_relative_to(TESTS_DIR):
        for folder in path.relative_to(TESTS_DIR).parts[:-1]:
            if folder in FOLDER_MARKS:
                item.add_marker(FOLDER_MARKS[folder])
    if any(word in path.stem for word in SLOW_NAMES):
        item.add_marker("slow")


def is_fast(item: pytest.Item) -> bool:
    return not any(item.get_closest_marker(name) for name in NOT_FAST)


def keep_fast(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (as -m does) every test of a slower tier."""
    slower = [item for item in items if not is_fast(item)]
    if slower:
        config.hook.pytest_deselected(items=slower)
        items[:] = [item for item in items if is_fast(item)]


def refuse_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now until the test ends, starting a process fails the test (subprocess.run, Popen, check_output)."""
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse)


def _refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> NoReturn:
    program = args if isinstance(args, str | bytes) else next(iter(args), "?")
    pytest.fail(
        f"this test starts a process ({program!s}), which the fast tier does not allow: mark it "
        "@pytest.mark.external (or `slow`, `engine`; see tests/support/tiers.py)",
        pytrace=False,
    )
