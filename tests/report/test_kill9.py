"""The record across a `kill -9` in the middle of a burst of detections: none lost, none counted twice.

A child process records findings as fast as it can and prints each one's number once `record` returned
(committed). The test SIGKILLs it midway, twice (the second child reopening the same file, as the restarted
daemon would), and checks the store against the numbers printed: every printed finding is there, and at most
the one in flight after the last print is there besides.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from enforcer.record.store import DetectionStore

pytestmark = [pytest.mark.external, pytest.mark.slow]  # child processes killed with SIGKILL

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = 20

CHILD = f"""
import sys
from pathlib import Path
from enforcer.record.model import Finding
from enforcer.record.store import DetectionStore

store = DetectionStore(Path(sys.argv[1]), max_age_days=30)
start = int(sys.argv[2])
for i in range(start, start + 1_000_000):
    c = i % {CONTAINERS}
    store.record(Finding(
        container_id=f"{{c:064d}}", name=f"c{{c}}", image="busybox", rules=(f"r{{i % 3}}", "all"),
        mode="KILL", action="stop", outcome="stopped", source="event", labels={{"seq": str(i)}},
    ))
    print(i, flush=True)
"""


def run_and_kill(db: Path, start: int, after: int) -> int:
    """Start a writer at finding `start`, SIGKILL it once `after` findings were printed; the last printed."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None and child.stderr is not None
    printed = []
    for line in child.stdout:
        printed.append(int(line))
        if len(printed) >= after:
            break
    child.send_signal(signal.SIGKILL)
    # Read the rest through the same file object: communicate() would skip what it has buffered already.
    printed += [int(line) for line in child.stdout.read().split()]
    errors = child.stderr.read()
    child.wait(timeout=30)
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL, errors
    assert printed == list(range(start, start + len(printed))), "the child printed out of order"
    assert len(printed) >= after, errors
    return printed[-1]


def expected_counts(total: int) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    per_container: Counter[str] = Counter()
    per_rule: Counter[tuple[str, str]] = Counter()
    for i in range(total):
        cid = f"{i % CONTAINERS:064d}"
        per_container[cid] += 1
        per_rule[cid, f"r{i % 3}"] += 1
        per_rule[cid, "all"] += 1
    return per_container, per_rule


def check(db: Path, last_printed: int) -> int:
    """Every printed finding is in the store exactly once; returns how many findings the store holds."""
    store = DetectionStore(db, max_age_days=30)
    try:
        found = store.detections()
        distinct = store.distinct_containers()
    finally:
        store.close()
    total = sum(d.count for d in found)
    assert total in (last_printed + 1, last_printed + 2), "lost or duplicated findings"
    per_container, per_rule = expected_counts(total)
    assert {d.container_id: d.count for d in found} == dict(per_container)
    assert {(d.container_id, r.rule): r.count for d in found for r in d.rules} == dict(per_rule)
    assert distinct == len(per_container)
    return total


def test_no_finding_is_lost_or_duplicated_across_two_kill_9s(tmp_path: Path) -> None:
    db = tmp_path / "state" / "detections.db"

    held = check(db, run_and_kill(db, start=0, after=300))
    held = check(db, run_and_kill(db, start=held, after=500))

    assert held >= 800
