"""The library adds nothing noticeable to the kill path: at most 1 ms of CPU per container, on average."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "library_judge.py"


def test_judging_against_the_whole_library_stays_within_budget() -> None:
    spec = importlib.util.spec_from_file_location("library_judge", BENCHMARK)
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    per_container_ms, rules = benchmark.cpu_ms_per_container(containers=1000, rounds=3)
    assert rules >= 40
    assert per_container_ms <= benchmark.BUDGET_MS
