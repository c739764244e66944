"""Open episodes in the API (`episodes` of `/`), on the page, and counted by phase in /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from enforcer.judge.policy import Policy
from enforcer.judge.whitelist import Whitelist
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.episodes import Episode, EpisodeStore
from enforcer.record.model import Phase
from enforcer.record.store import DetectionStore
from enforcer.report.app import create_app
from enforcer.report.episodes_view import summary
from enforcer.report.metrics import Metrics
from enforcer.settings import Settings
from enforcer.status import Health

HOST = "test-host"  # the app's own name: its Host check lets it through


def test_pending_and_warned_episodes_show_with_their_time_left(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store, episodes = DetectionStore(db, 30), EpisodeStore(db)
    now = datetime.now(UTC)
    episodes.put(Episode("a" * 64, "idle", Phase.WARNED, now - timedelta(days=1), now + timedelta(minutes=30),
                         "s", "gpu-box", "ann", "stop", now))  # fmt: skip
    episodes.put(Episode("b" * 64, "hog", Phase.PENDING, now - timedelta(minutes=4), now + timedelta(minutes=6),
                         "s", "builder", "bob", "pause", now))  # fmt: skip
    metrics = Metrics("KILL")
    metrics.count_episodes(episodes.counts)
    policy = Policy((), Whitelist((), (), (), ()), ())
    app = create_app(Settings(), Health(), PolicyInForce(policy), store, metrics, HOST, episodes)
    client = app.test_client()

    body = client.get("/", headers={"Host": HOST}).get_json()
    warned, pending = sorted(body["episodes"], key=lambda e: e["phase"], reverse=True)
    assert (warned["name"], warned["phase"], warned["owner"], warned["action"]) == (
        "/gpu-box",
        "warned",
        "ann",
        "stop",
    )
    assert 1790 < warned["seconds_left"] <= 1800
    assert warned["summary"].startswith("will be stopped at ") and warned["summary"].endswith(" unless fixed")
    assert pending["phase"] == "pending" and "acted on at" in pending["summary"]

    page = client.get("/", headers={"Host": HOST, "Accept": "text/html"}).get_data(as_text=True)
    assert 'id="episodes"' in page and "gpu-box" in page and "will be stopped at" in page

    text = client.get("/metrics", headers={"Host": HOST}).get_data(as_text=True)
    assert 'docker_enforcer_episodes{phase="warned"} 1.0' in text
    assert 'docker_enforcer_episodes{phase="pending"} 1.0' in text
    assert 'docker_enforcer_episodes{phase="enforced"} 0.0' in text
    episodes.close()
    store.close()


def test_the_summary_says_what_happens() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    paused = Episode("c", "hog", Phase.ENFORCED, now - timedelta(minutes=10), None, "s", action="pause")
    assert summary(paused, now) == "paused after 10m of violation"
    limited = Episode("c", "mem", Phase.WARNED, now, now + timedelta(hours=1), "s", action="limit")
    assert summary(limited, now) == "will be limited at 13:00 UTC unless fixed"


def test_a_pause_or_a_limit_shows_as_acted_on_the_page() -> None:
    from enforcer.record.model import Outcome
    from enforcer.report.page import outcome_class

    assert outcome_class(Outcome.PAUSED) == outcome_class(Outcome.LIMITED) == "acted"
    assert outcome_class(Outcome.WARNED) == "noted"
