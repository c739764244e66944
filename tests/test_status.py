"""The daemon's live status: a sweep that fails is no longer shown as running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from enforcer.settings import Settings
from enforcer.status import Status


def test_a_failed_sweep_is_not_running_and_keeps_the_last_finished_one() -> None:
    settings = Settings()
    status = Status(settings)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    status.sweep_started(first)
    status.sweep_finished(first, first + timedelta(seconds=1))
    status.sweep_started(first + timedelta(minutes=10))
    assert status.sweep_running_since == first + timedelta(minutes=10)
    status.sweep_failed()
    assert status.sweep_running_since is None
    assert (status.last_sweep.start, status.last_sweep.end) == (first, first + timedelta(seconds=1))
