"""Fixtures for the record and report tests: real settings, policy, health, store and metrics.

policy        a Policy loaded from rules/triggers files written to tmp_path
settings      Settings in KILL mode (frozen: vary with dataclasses.replace)
health        a Health whose engine answers
store         a DetectionStore in tmp_path, closed after the test
metrics       Metrics with containers_stopped_total wired to the store
make_app      make_app(**settings_changes) -> the Flask app over the fixtures above
client        a test client of make_app()
make_finding  make_finding(**fields) -> a Finding with sensible defaults
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from report_support import HOST, RULES_TEXT, TRIGGERS_TEXT, finding

from enforcer.judge.policy import Policy, load_policy
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Finding
from enforcer.record.store import DetectionStore
from enforcer.report.app import create_app
from enforcer.report.metrics import Metrics
from enforcer.settings import Files, Mode, Settings
from enforcer.status import Health


@pytest.fixture
def policy(tmp_path: Path) -> Policy:
    folder = tmp_path / "user"
    folder.mkdir(mode=0o755)
    (folder / "rules.py").write_text(RULES_TEXT)
    (folder / "triggers.py").write_text(TRIGGERS_TEXT)
    files = Files(rules=folder / "rules.py", triggers=folder / "triggers.py")
    return load_policy(Settings(files=files), cwd=tmp_path)


@pytest.fixture
def settings() -> Settings:
    return Settings(mode=Mode.KILL)


@pytest.fixture
def health() -> Health:
    live = Health()
    live.engine_answered()
    return live


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DetectionStore]:
    opened = DetectionStore(tmp_path / "state" / "detections.db", max_age_days=30)
    yield opened
    opened.close()


@pytest.fixture
def metrics(store: DetectionStore) -> Metrics:
    registry = Metrics("KILL")
    registry.count_distinct_detected(store.distinct_containers)
    return registry


@pytest.fixture
def make_app(
    settings: Settings, health: Health, policy: Policy, store: DetectionStore, metrics: Metrics
) -> Callable[..., Flask]:
    def factory(**overrides: Any) -> Flask:
        app_settings = replace(settings, **overrides)
        app = create_app(app_settings, health, PolicyInForce(policy), store, metrics, HOST)
        app.testing = True
        return app

    return factory


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> FlaskClient:
    return make_app().test_client()


@pytest.fixture
def make_finding() -> Callable[..., Finding]:
    return finding
