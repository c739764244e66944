"""The image behind each container, against the isolated engine: `c.image_info` fetched once per image across a
sweep, and image rules flagging exactly the containers of the image they should, in sweeps and at start.

A second image is made in the engine by `docker commit` of busybox with a USER and a source label.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.daemon import Containers, DaemonFactory
from support.engine import Engine

from enforcer.act.triggers import TriggerRunner
from enforcer.dockerhost.client import DockerHost, connect
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.judge.loader import parse_rules
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.judge.whitelist import Whitelist
from enforcer.library import images
from enforcer.pipeline import Pipeline
from enforcer.policy_in_force import PolicyInForce
from enforcer.record.model import Finding
from enforcer.report.metrics import Metrics
from enforcer.settings import Mode, Settings
from enforcer.sources.sweeps import Sweeper
from enforcer.status import Health

LABELLED = "tools/labelled:1"
SOURCE = "org.opencontainers.image.source"
KILL_WITHIN_S = 3.0


@pytest.fixture
def labelled(clean_engine: Engine) -> str:
    """busybox committed with USER 1000 and a source label (kept in the engine for the session)."""
    if not clean_engine.docker("images", "-q", LABELLED).stdout.strip():
        clean_engine.docker("create", "--name", "to-commit", "busybox:latest", "sleep", "3600")
        clean_engine.docker(
            "commit", "--change", "USER 1000", "--change", f"LABEL {SOURCE}=https://git.example.com/tools",
            "to-commit", LABELLED,
        )  # fmt: skip
        clean_engine.docker("rm", "--force", "to-commit")
    return LABELLED


class Recorder:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def record(self, finding: Finding) -> None:
        self.findings.append(finding)


class CountingHost(DockerHost):
    """The real host, counting image inspects."""

    image_inspects = 0

    def inspect_image(self, image_id: str) -> dict[str, Any]:
        type(self).image_inspects += 1
        return super().inspect_image(image_id)


@pytest.fixture
def sweep_parts(clean_engine: Engine) -> Iterator[tuple[Sweeper, FactGatherer, Recorder]]:
    CountingHost.image_inspects = 0
    host = CountingHost(connect(clean_engine.url).conn)
    gatherer = FactGatherer(host, GatherOptions())
    settings = Settings(mode=Mode.WARN, stop_on_first_violation=False)
    rules = (*parse_rules(Path("rules.py"), [images.require_label()]), Rule("plain", lambda c: False))
    recorder, triggers, metrics = Recorder(), TriggerRunner(on_error=lambda name: None), Metrics("WARN")
    pipeline = Pipeline(
        settings, PolicyInForce(Policy(rules, Whitelist(), ())), gatherer, None,  # type: ignore[arg-type]
        recorder, triggers, metrics,
    )  # fmt: skip
    yield Sweeper(settings, gatherer, pipeline, Health(), metrics), gatherer, recorder
    triggers.close(wait=True)
    gatherer.close()
    host.close()


def test_a_sweep_fetches_each_image_once_and_flags_exactly_its_containers(
    sweep_parts: tuple[Sweeper, FactGatherer, Recorder], containers: Containers, labelled: str
) -> None:
    sweeper, gatherer, recorder = sweep_parts
    plain = {containers.run(f"plain-{i}") for i in range(40)}
    tagged = {containers.run(f"labelled-{i}", image=labelled) for i in range(5)}

    assert sweeper.sweep()
    assert CountingHost.image_inspects == 2  # 45 containers, two images
    assert {f.container_id for f in recorder.findings} == plain
    assert {f.rules for f in recorder.findings} == {(f"image label {SOURCE} required",)}
    assert sweeper.sweep()
    assert CountingHost.image_inspects == 2  # kept while containers use them
    assert len(gatherer.images) == 2

    for cid in tagged:
        containers.api.remove_container(cid, force=True)
    assert sweeper.sweep()
    assert len(gatherer.images) == 1  # no container uses the labelled image any more


def test_an_image_rule_stops_exactly_the_containers_of_its_image(
    daemon: DaemonFactory, containers: Containers, labelled: str
) -> None:
    """In the catch-up sweep and at start: busybox runs as root by default, the labelled image as 1000."""
    before_root = containers.run("before-root")
    before_user = containers.run("before-user", image=labelled)
    rules = "from enforcer.library import images\nrules = [images.default_user_root()]\n"
    enforcer = daemon(rules, MODE="KILL")
    assert containers.wait_stopped(before_root, KILL_WITHIN_S)
    after_root = containers.run("after-root")
    after_user = containers.run("after-user", image=labelled)
    assert containers.wait_stopped(after_root, KILL_WITHIN_S)
    assert enforcer.wait_for_violation("after-root")["rules"] == ["image not root by default"]
    assert enforcer.wait_for_violation("before-root")["source"] == "periodic"
    assert containers.running(before_user) and containers.running(after_user)
    assert enforcer.violations("before-user") == enforcer.violations("after-user") == []
