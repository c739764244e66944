"""Fixtures for the shipping tests (image, systemd units, audit twin, Swarm stack, alerts).

    enforcer_image  session  tag of the image built by scripts/build-image on the isolated engine, from a
                             Debian base made by debootstrap (cached, see ship_support.py)

Tests that build or deploy the image are marked `slow` (a minute or two); they still run by default and
under CI=true: deselect them with `-m "not slow"`.
"""

from __future__ import annotations

import time

import pytest
from ship_support import IMAGE_TAG, build_image, ensure_base_image
from support.engine import Engine


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds or deploys the image; takes a minute or more")


@pytest.fixture(scope="session")
def enforcer_image(engine: Engine) -> str:
    """The docker-enforcer image, built once per session on the isolated engine, offline."""
    began = time.monotonic()
    base = ensure_base_image(engine)
    based = time.monotonic()
    result = build_image(engine, base, IMAGE_TAG)
    if result.returncode != 0:
        pytest.fail(
            f"scripts/build-image failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    print(
        f"\nbase image ready in {based - began:.1f}s, enforcer image built in {time.monotonic() - based:.1f}s"
    )
    return IMAGE_TAG
