"""Fixtures for the prevention tests (issue 8), reusing the daemon tests' helpers (tests/daemon/daemon_support.py).

daemon      function  the daemon tests' factory of `docker-enforcer run` subprocesses (all stopped afterwards)
containers  function  the daemon tests' container helpers on the isolated engine
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DAEMON_TESTS = Path(__file__).resolve().parent.parent / "daemon"
if str(DAEMON_TESTS) not in sys.path:  # daemon_support is not a package; pytest adds its folder only when
    sys.path.insert(0, str(DAEMON_TESTS))  # it collects the daemon tests too

from daemon_support import Containers, DaemonFactory  # noqa: E402
from support.engine import Engine  # noqa: E402


@pytest.fixture
def daemon(clean_engine: Engine, tmp_path: Path) -> Iterator[DaemonFactory]:
    tmp_path.chmod(0o755)  # the rules folder's parent; the loader checks only the file and its folder
    factory = DaemonFactory(clean_engine, tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def containers(clean_engine: Engine, busybox: str) -> Iterator[Containers]:
    helper = Containers(clean_engine, busybox)
    try:
        yield helper
    finally:
        helper.close()
