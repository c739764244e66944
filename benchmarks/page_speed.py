"""How fast the status page answers with a full record: 100,000 detections, no engine needed.

Fills a detections store in a temporary folder with --detections findings (one container and one rule each,
the daemon's row cap; 20 owners, 12 rules, outcomes and times spread over 29 days), then times, one request
after another, --runs requests of each view:

  page            GET / as a browser asks for it (Accept: text/html), a page of --page containers
  json            GET /?limit=<page> as JSON
  owner, rule,    the page filtered by an owner, a rule, an outcome, the last 24 h, rule errors
  outcome, 24h,
  errors
  container       GET /containers/<short id> (HTML)
  reference       the bare SQL of a page: the newest --page containers joined with their rules, fetched on
                  a connection of its own, no Python objects built, no HTML

through Flask's test client, or with --server through the real waitress server over loopback (http.client,
one connection per request). Prints p50 and p95 in ms for each. The goal (issue 17): the page's p50 under
50 ms; exits 1 when it is missed.

    python benchmarks/page_speed.py [--detections 100000] [--page 100] [--runs 50] [--server]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from enforcer.judge.policy import load_policy  # noqa: E402
from enforcer.policy_in_force import PolicyInForce  # noqa: E402
from enforcer.record.model import Action, Finding, Outcome, Source  # noqa: E402
from enforcer.record.store import DetectionStore  # noqa: E402
from enforcer.report.app import create_app  # noqa: E402
from enforcer.report.metrics import Metrics  # noqa: E402
from enforcer.report.server import ApiServer  # noqa: E402
from enforcer.settings import Files, Mode, Settings  # noqa: E402
from enforcer.status import Health  # noqa: E402

GOAL_MS = 50.0
RULES = [f"rule {n}: no privileged, memory limits and so on" for n in range(12)]
OWNERS = [f"team-{n}" for n in range(20)]
OUTCOMES = [
    (Mode.KILL, Action.STOP, Outcome.STOPPED),
    (Mode.WARN, Action.WOULD_STOP, Outcome.RECORDED),
    (Mode.KILL, Action.PREVENT, Outcome.PREVENTED),
    (Mode.KILL, Action.STOP, Outcome.FAILED),
]
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def findings(count: int, now: datetime) -> list[Finding]:
    span = timedelta(days=29).total_seconds()
    out = []
    for n in range(count):
        mode, action, outcome = OUTCOMES[n % len(OUTCOMES)]
        out.append(
            Finding(
                container_id=f"{n:012x}" + "ab" * 26,
                name=f"app-{n}",
                image=f"registry.example/app-{n % 300}:1.{n % 7}",
                rules=(RULES[n % len(RULES)],),
                mode=mode,
                action=action,
                outcome=outcome,
                source=Source.PERIODIC,
                outcome_detail="engine timeout" if outcome is Outcome.FAILED else None,
                owner=OWNERS[n % len(OWNERS)],
                labels={"team": OWNERS[n % len(OWNERS)], "tier": "web"},
                rule_errors=("other rule: KeyError: 'x'",) if n % 97 == 0 else (),
                timestamp=now - timedelta(seconds=span * n / count),
            )
        )
    return out


def fill(store: DetectionStore, count: int) -> float:
    started = time.perf_counter()
    batch = findings(count, datetime.now(UTC))
    for start in range(0, count, 5000):
        store.record_many(batch[start : start + 5000])
    return time.perf_counter() - started


def policy_for(folder: Path) -> PolicyInForce:
    lines = [f"    {{'name': {name!r}, 'rule': lambda c: False, 'severity': 'high'}}," for name in RULES]
    (folder / "rules.py").write_text("rules = [\n" + "\n".join(lines) + "\n]\n")
    (folder / "triggers.py").write_text("triggers = []\n")
    # The files are the benchmark's own, in a temporary folder: loaded although /tmp is writable by all.
    files = Files(rules=folder / "rules.py", triggers=folder / "triggers.py", allow_writable=True)
    logging.getLogger("enforcer").setLevel(logging.ERROR)
    return PolicyInForce(load_policy(Settings(files=files), cwd=folder))


def timed(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and this process's CPU time of each run, in ms (on a busy machine the CPU time says what
    the request itself costs; with --server it misses nothing: the server runs in this process)."""
    fn()  # warm: templates compiled, pages of the file in the cache
    wall, cpu = [], []
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return wall, cpu


def reference(path: Path, page: int) -> Callable[[], object]:
    conn = sqlite3.connect(path)

    def query() -> object:
        return conn.execute(
            "WITH page AS (SELECT * FROM containers ORDER BY last_ts DESC, container_id LIMIT ?) "
            "SELECT * FROM page c JOIN detections d ON d.container_id = c.container_id "
            "ORDER BY c.last_ts DESC, c.container_id, d.last_ts DESC, d.rule",
            (page,),
        ).fetchall()

    return query


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--detections", type=int, default=100_000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--server", action="store_true", help="through waitress over loopback")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="page-speed-"))
    try:
        store = DetectionStore(work / "state" / "detections.db", max_age_days=30, max_rows=args.detections)
        seconds = fill(store, args.detections)
        print(f"filled {store.count()} containers ({args.detections} detections) in {seconds:.1f} s")
        health = Health()
        health.engine_answered()
        now = datetime.now(UTC)
        health.sweep_finished(now - timedelta(seconds=2), now - timedelta(seconds=1))
        settings = Settings(mode=Mode.KILL)
        app = create_app(
            settings, health, policy_for(work), store, Metrics("KILL"), "bench",
            next_sweep=lambda: now + timedelta(seconds=30),
        )  # fmt: skip
        get = fetcher(app, args.server)
        limit = f"limit={args.page}"
        views: list[tuple[str, Callable[[], object]]] = [
            ("page", lambda: get("/" if args.page == 100 else f"/?{limit}", True)),
            ("json", lambda: get(f"/?{limit}", False)),
            ("owner", lambda: get(f"/?{limit}&owner=team-7", True)),
            ("rule", lambda: get(f"/?{limit}&rule=" + RULES[5].replace(" ", "+").replace(":", "%3A"), True)),
            ("outcome", lambda: get(f"/?{limit}&outcome=failed", True)),
            ("24h", lambda: get(f"/?{limit}&within=24h", True)),
            ("errors", lambda: get(f"/?{limit}&errors=1", True)),
            ("container", lambda: get("/containers/000000000abc", True)),
            ("reference", reference(store.path, args.page)),
        ]
        how = "waitress over loopback" if args.server else "Flask test client"
        print(f"{args.runs} runs each through the {how}; load average {os.getloadavg()[0]:.1f}")
        print(f"{'view':<10} {'p50 ms':>8} {'p95 ms':>8} {'cpu p50':>8}")
        results = {}
        for name, fn in views:
            wall, cpu = timed(fn, args.runs)
            results[name] = statistics.median(wall)
            p95 = sorted(wall)[max(0, int(len(wall) * 0.95) - 1)]
            print(f"{name:<10} {results[name]:>8.2f} {p95:>8.2f} {statistics.median(cpu):>8.2f}")
        store.close()
        cores = os.cpu_count() or 1
        if os.getloadavg()[0] > cores:
            print(
                f"note: the machine is busy (load average {os.getloadavg()[0]:.1f} on {cores} cores): wall-clock "
                "figures include waiting for a core; cpu p50 is what a request itself costs"
            )
        met = results["page"] < GOAL_MS
        print(
            f"goal: the page's p50 under {GOAL_MS:.0f} ms: {'met' if met else 'MISSED'} ({results['page']:.1f} ms)"
        )
        return 0 if met else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetcher(app: object, server: bool) -> Callable[[str, bool], object]:
    """A GET of the app: through the test client, or the real server over loopback."""
    if not server:
        client = app.test_client()  # type: ignore[attr-defined]

        def via_client(path: str, html: bool) -> object:
            response = client.get(path, headers=BROWSER if html else {})
            assert response.status_code == 200, response.status_code
            return response.data

        return via_client
    api = ApiServer(app, "127.0.0.1", 0)  # type: ignore[arg-type]
    api.start()
    counter = itertools.count()

    def via_server(path: str, html: bool) -> object:
        next(counter)
        conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
        conn.request("GET", path, headers=BROWSER if html else {})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        assert response.status == 200, response.status
        return body

    return via_server


if __name__ == "__main__":
    sys.exit(main())
