"""CPU cost of judging containers against the whole ready-rule library (the budget: 1 ms per container).

    python benchmarks/library_judge.py [--containers 1000] [--rounds 5]

Containers are the captured `docker inspect` examples of tests/library/examples, cycled to the wanted
count; each is a fresh `Container` (as the gatherer builds them), judged with every fixed rule and every
factory example and STOP_ON_FIRST_VIOLATION off, so every rule runs. CPU time (not wall time) is measured;
the best of several rounds is reported, as is usual for micro-benchmarks. Exit status 1 if over budget.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # runs from a checkout without installing

from enforcer.facts.container import Container  # noqa: E402
from enforcer.judge.judge import JudgeOptions, judge  # noqa: E402
from enforcer.judge.loader import parse_rules  # noqa: E402
from enforcer.judge.rules import Rule  # noqa: E402
from enforcer.judge.whitelist import Whitelist  # noqa: E402
from enforcer.library import FACTORIES, all_rules  # noqa: E402

EXAMPLES = REPO / "tests" / "library" / "examples"
BUDGET_MS = 1.0


def inspect_examples() -> list[dict[str, Any]]:
    return [json.loads(path.read_text())[0] for path in sorted(EXAMPLES.glob("*.json"))]


def library_rules() -> tuple[Rule, ...]:
    return parse_rules(Path("library"), all_rules() + [factory.example() for factory in FACTORIES])


def cpu_ms_per_container(containers: int = 1000, rounds: int = 5) -> tuple[float, int]:
    """The best round's CPU milliseconds per container, and how many rules each was judged against."""
    rules = library_rules()
    whitelist = Whitelist()
    options = JudgeOptions(stop_on_first_violation=False)
    params = list(itertools.islice(itertools.cycle(inspect_examples()), containers))
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.process_time()
        for item in params:
            judge(Container(item["Id"], item), rules, whitelist, options)
        best = min(best, time.process_time() - start)
    return best * 1000 / containers, len(rules)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    per_container, rules = cpu_ms_per_container(args.containers, args.rounds)
    verdict = "within" if per_container <= BUDGET_MS else "OVER"
    print(
        f"{args.containers} containers x {rules} library rules: {per_container * 1000:.0f} us CPU per container "
        f"({verdict} the {BUDGET_MS:g} ms budget)"
    )
    return 0 if per_container <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
