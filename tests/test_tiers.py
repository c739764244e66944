"""The fast tier (`scripts/test --fast`, `pytest --fast`) holds no test needing an engine, a process or time.

What the issue found in `pytest -m "not engine"` (Chromium, promtool, systemd-analyze, `kill -9` subprocess
daemons, the 1,000-container benchmark) is named below: the fast tier must hold none of it, the full run
all of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import tiers

REPO = Path(__file__).resolve().parent.parent
HEAVY = (
    "tests/ship/",  # promtool, systemd-analyze, image builds
    "tests/report/test_browser.py",  # chromium
    "tests/report/test_kill9.py",  # `kill -9` subprocess daemons
    "tests/library/test_library_speed.py",  # the 1,000-container CPU benchmark
    "tests/test_tls.py",  # openssl and the engine
    "tests/test_settings.py::test_python_m_enforcer_prints_one_line_and_no_traceback",
    "tests/daemon/test_units.py::test_a_bad_env_value_for_run_exits_2_with_one_line",
    "tests/test_tuning.py::test_threads_started_before_and_after_get_the_priority",
)

DUMP_PLUGIN = """
import json, os

def pytest_collection_finish(session):
    items = [
        {"id": item.nodeid, "fixtures": sorted(getattr(item, "fixturenames", ())),
         "markers": sorted({m.name for m in item.iter_markers()})}
        for item in session.items
    ]
    with open(os.environ["TIERS_DUMP"], "w") as out:
        json.dump(items, out)
"""


def collect(tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    """The tests a pytest run with `options` selects, collected by a separate pytest process."""
    (tmp_path / "tiers_dump.py").write_text(DUMP_PLUGIN)
    dump = tmp_path / "items.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TIERS_DUMP": str(dump)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tiers_dump", "-p", "no:cacheprovider"]
        + list(options),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    items: list[dict[str, Any]] = json.loads(dump.read_text())
    return items


def heavy(nodeid: str) -> bool:
    return any(nodeid.startswith(prefix) for prefix in HEAVY)


@pytest.mark.external  # pytest collecting in a process of its own
def test_the_fast_tier_selects_nothing_heavy_and_the_full_run_everything(tmp_path: Path) -> None:
    fast = collect(tmp_path, "--fast")
    assert len(fast) > 500  # the pure tests are most of the suite
    for item in fast:
        assert "engine" not in item["fixtures"], item["id"]
        assert not set(item["markers"]) & set(tiers.NOT_FAST), item
        assert not heavy(item["id"]), item["id"]
    full = {item["id"] for item in collect(tmp_path)}
    for prefix in HEAVY:
        assert any(nodeid.startswith(prefix) for nodeid in full), f"{prefix} is not collected at all"
    assert {item["id"] for item in fast} < full


def test_every_test_of_this_run_carries_the_markers_of_its_needs(request: pytest.FixtureRequest) -> None:
    """Markers follow fixtures and folders; under --fast, nothing of a slower tier was selected."""
    fast = request.config.getoption("--fast")
    for item in request.session.items:
        if "engine" in getattr(item, "fixturenames", ()):
            assert item.get_closest_marker("engine"), item.nodeid
        if "/tests/ship/" in str(item.path):
            assert item.get_closest_marker("external"), item.nodeid
        if fast:
            assert tiers.is_fast(item), item.nodeid
            assert not heavy(item.nodeid), item.nodeid


def test_a_process_started_in_the_fast_tier_fails_the_test_naming_the_marker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tiers.refuse_processes(monkeypatch)
    with pytest.raises(
        pytest.fail.Exception, match=r"starts a process \(true\).*mark it @pytest.mark.external"
    ):
        subprocess.run(["true"], check=False)
    with pytest.raises(pytest.fail.Exception, match="external"):
        subprocess.check_output("echo hi", shell=True)
