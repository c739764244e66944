"""Pytest fixtures around an isolated Docker engine (see support/engine.py).

Fixtures:
    engine         session  the running isolated Engine; stopped and deleted at the end
    busybox        session  tag of the busybox image imported into it ("busybox:latest")
    clean_engine   function the engine; every container is force-removed after the test
    run_container  function run_container(name=None, *, command=("sleep", "3600"), **create_kwargs) -> id

tmp_path lives under /run/docker-enforcer-tests (support/trusted_tmp.py), not /tmp: the loader refuses
rules files below a folder anyone may write, /tmp included.

Tests that use ``engine`` (directly or through another fixture) get the ``engine`` marker, so
``pytest -m "not engine"`` runs only the tests that need no Docker; ``pytest --fast`` runs only the fast
tier (no engine, no process, no benchmark: support/tiers.py). Where dockerd, busybox-static or
root is missing those tests are skipped with the reason, or fail when CI=true, so that CI never
passes by silently skipping them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# Tests import helpers as ``from support.engine import ...`` without tests/ being a package.
TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

import docker.errors  # noqa: E402
from support import tiers  # noqa: E402
from support.daemon import Containers, DaemonFactory  # noqa: E402
from support.engine import (  # noqa: E402
    HOST_DOCKER_VARS,
    Engine,
    RunContainer,
    ensure_busybox_image,
    ensure_prerequisites,
    start_engine,
)
from support.trusted_tmp import trusted_tempdir  # noqa: E402


def _forget_host_docker() -> None:
    """Drop DOCKER_HOST and friends so that no test can reach the host's engine by accident."""
    for name in HOST_DOCKER_VARS:
        os.environ.pop(name, None)


_forget_host_docker()


OWN_BASETEMP = pytest.StashKey[Path]()


@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path plugin reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    """tmp_path in a folder the rules loader trusts (not under /tmp, see support/trusted_tmp.py), unless
    --basetemp names one; removed at the end of the session."""
    if config.option.basetemp is None:
        config.option.basetemp = str(trusted_tempdir("pytest-"))
        config.stash[OWN_BASETEMP] = Path(config.option.basetemp)


def pytest_unconfigure(config: pytest.Config) -> None:
    own = config.stash.get(OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast tier: only tests marked neither engine, external nor slow; starting a process fails",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by fixture, folder and name (support/tiers.py); with --fast, keep the fast tier only."""
    for item in items:
        tiers.classify(item)
    if config.getoption("--fast"):
        tiers.keep_fast(config, items)


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.config.getoption("--fast"):
        tiers.refuse_processes(monkeypatch)


def _require_prerequisites() -> None:
    """Skip (or, under CI=true, fail) with a clear message when an engine cannot be started here."""
    missing = ensure_prerequisites()
    if not missing:
        return
    message = "cannot start an isolated Docker engine; missing: " + "; ".join(missing)
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """A private dockerd in a fresh /tmp/de-* dir, never the host's engine; removed after the session."""
    _require_prerequisites()
    isolated = start_engine()
    try:
        yield isolated
    finally:
        isolated.destroy()


@pytest.fixture(scope="session")
def busybox(engine: Engine) -> str:
    """The tag of a busybox image present in the engine."""
    return ensure_busybox_image(engine)


@pytest.fixture
def clean_engine(engine: Engine, busybox: str) -> Iterator[Engine]:
    """The engine, with every container force-removed after the test."""
    yield engine
    if not engine.is_running():  # a test stopped it: bring it back for the next ones
        engine.start()
    engine.remove_all_containers()


@pytest.fixture
def run_container(clean_engine: Engine, busybox: str) -> Iterator[RunContainer]:
    """A function that runs a detached busybox container and returns its id; removed after the test."""
    client = clean_engine.client()
    started: list[str] = []

    def run(
        name: str | None = None, *, command: Sequence[str] = ("sleep", "3600"), **create_kwargs: Any
    ) -> str:
        container = client.containers.run(busybox, list(command), detach=True, name=name, **create_kwargs)
        started.append(container.id)
        return str(container.id)

    yield run
    if clean_engine.is_running():  # else clean_engine restarts it and removes everything
        for container_id in started:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(container_id, force=True, v=True)
    client.close()


@pytest.fixture
def daemon(clean_engine: Engine, tmp_path: Path) -> Iterator[DaemonFactory]:
    """A factory of `docker-enforcer run` subprocesses against the isolated engine; all stopped afterwards."""
    tmp_path.chmod(0o755)  # pytest makes it 0700; readable as a deployment's folders are
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


# -- the command line, called in-process (tests/support/cli.py) -------------------------------------------
@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`main` configures the `enforcer` logger; put it back so other tests see the usual logging."""
    logger = logging.getLogger("enforcer")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_logging: None) -> Path:
    """An empty working dir for the command line (so no rules file is picked up by accident)."""
    work = tmp_path / "work"
    work.mkdir(mode=0o755)
    monkeypatch.chdir(work)
    return work
