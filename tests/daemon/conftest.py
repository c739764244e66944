"""Fixtures `daemon` and `containers` for the daemon tests (see daemon_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Containers, DaemonFactory
from support.engine import Engine


@pytest.fixture
def daemon(clean_engine: Engine, tmp_path: Path) -> Iterator[DaemonFactory]:
    """A factory of `docker-enforcer run` subprocesses against the isolated engine; all stopped afterwards."""
    tmp_path.chmod(0o755)  # the rules folder's parent; the loader checks only the file and its folder
    factory = DaemonFactory(clean_engine, tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def containers(clean_engine: Engine, busybox: str) -> Iterator[Containers]:
    """Container helpers on the isolated engine; clean_engine removes every container after the test."""
    helper = Containers(clean_engine, busybox)
    try:
        yield helper
    finally:
        helper.close()
