"""Gathering facts: params (inspect), metrics (stats), position and image names, against the real engine.

Most tests run against the isolated engine (tests/support/engine.py). A few pin down the gatherer's
bookkeeping (cache, DISABLE_* options, containers vanishing mid-sweep) with a fake host, and the own
container's id is read from fake /proc files.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.engine import Engine, RunContainer

from enforcer.audit import audit_engine
from enforcer.dockerhost.client import DockerHost, connect
from enforcer.dockerhost.errors import ContainerGone, EngineUnavailable
from enforcer.facts.container import Container, FactUnavailable
from enforcer.facts.gather import FactGatherer, GatherOptions
from enforcer.judge.judge import Judgement, JudgeOptions, judge
from enforcer.judge.policy import Policy
from enforcer.judge.rules import Rule
from enforcer.judge.verdict import Verdict
from enforcer.judge.whitelist import Whitelist
from enforcer.settings import parse_whitelist

DATA = Path(__file__).resolve().parent / "data"
GB = 1024**3
NO_WHITELIST = Whitelist()
MEMORY_LIMIT = Rule("must have memory limit", lambda c: c.params["HostConfig"]["Memory"] == 0)
MEMORY_USAGE = Rule("can't use over 1GB of RAM", lambda c: c.metrics["memory_stats"]["usage"] > 1 * GB)
OWNER_LABEL = Rule("must have an owner label", lambda c: "owner" not in c.params["Config"]["Labels"])
THIRD = Rule("no more than 2", lambda c: c.position >= 2)


def policy(*rules: Rule, image_white_list: str = "") -> Policy:
    return Policy(tuple(rules), Whitelist((), parse_whitelist("IMAGE_WHITE_LIST", image_white_list)), ())


# -- a fake engine for the gatherer's bookkeeping ------------------------------------------------------------------
def captured() -> list[dict[str, Any]]:
    return json.loads((DATA / "all.json").read_text())


def summary_of(params: dict[str, Any]) -> dict[str, Any]:
    """What `docker ps` says about a container, shaped from its inspect output."""
    return {
        "Id": params["Id"],
        "Names": [params["Name"]],
        "Image": params["Config"]["Image"],
        "ImageID": params["Image"],
        "Labels": params["Config"]["Labels"],
        "Created": 1790000000,
        "State": "running",
    }


class FakeHost:
    """Answers list/inspect/stats from captured JSON and counts the calls."""

    def __init__(self, containers: list[dict[str, Any]], gone: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.containers = {c["Id"]: c for c in containers}
        self.gone = gone
        self.calls: dict[str, int] = {"list": 0, "inspect": 0, "stats": 0}
        self.stats_sample = json.loads((DATA / "stats.json").read_text())

    def list_running(self) -> list[dict[str, Any]]:
        self.calls["list"] += 1
        return [summary_of(c) for c in reversed(list(self.containers.values()))]  # not in start order

    def inspect(self, cid: str) -> dict[str, Any]:
        self.calls["inspect"] += 1
        if cid in self.gone:
            raise ContainerGone(f"inspect {cid[:12]}: No such container")
        return copy.deepcopy(self.containers[cid])

    def stats(self, cid: str) -> dict[str, Any]:
        self.calls["stats"] += 1
        if cid in self.gone:
            raise ContainerGone(f"stats {cid[:12]}: No such container")
        return copy.deepcopy(self.stats_sample)

    def list_created(self) -> list[dict[str, Any]]:
        return []

    def image_tags(self, image_id: str) -> list[str]:
        return ["busybox:latest"]


@pytest.fixture
def fake() -> FakeHost:
    return FakeHost(captured())


def gatherer_for(host: Any, **options: bool) -> Iterator[FactGatherer]:
    gatherer = FactGatherer(host, GatherOptions(**options))
    try:
        yield gatherer
    finally:
        gatherer.close()


@pytest.fixture
def gatherer(fake: FakeHost) -> Iterator[FactGatherer]:
    yield from gatherer_for(fake)


def test_all_running_orders_by_start_time_and_numbers_positions(
    gatherer: FactGatherer, fake: FakeHost
) -> None:
    containers = gatherer.all_running("periodic")
    assert [c.name for c in containers] == ["plain", "limits", "binds_labels"]
    assert [c.position for c in containers] == [0, 1, 2]
    assert [c.check_source for c in containers] == ["periodic"] * 3
    assert all(c.metrics["memory_stats"]["usage"] > 0 for c in containers)
    assert fake.calls == {"list": 1, "inspect": 3, "stats": 3}


def test_all_running_reports_progress(gatherer: FactGatherer) -> None:
    seen: list[tuple[int, int]] = []
    gatherer.all_running("audit", lambda done, total: seen.append((done, total)))
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]


def test_a_container_that_vanishes_mid_sweep_is_skipped() -> None:
    data = captured()
    host = FakeHost(data, gone={data[1]["Id"]})
    for gatherer in gatherer_for(host):
        containers = gatherer.all_running("periodic")
    assert [c.name for c in containers] == ["plain", "binds_labels"]
    assert [c.position for c in containers] == [0, 1]


def test_engine_trouble_is_not_swallowed(fake: FakeHost) -> None:
    def down(cid: str) -> dict[str, Any]:
        raise EngineUnavailable("stats: connection refused")

    fake.stats = down  # type: ignore[method-assign]
    for gatherer in gatherer_for(fake):
        with pytest.raises(EngineUnavailable):
            gatherer.all_running("periodic")


def test_params_are_cached_until_forgotten(gatherer: FactGatherer, fake: FakeHost) -> None:
    cid = captured()[0]["Id"]
    gatherer.params(cid)
    gatherer.params(cid)
    assert fake.calls["inspect"] == 1
    gatherer.params(cid, fresh=True)
    assert fake.calls["inspect"] == 2
    gatherer.forget(cid)
    gatherer.params(cid)
    assert fake.calls["inspect"] == 3
    assert gatherer.cached_count() == 1


def test_the_cache_keeps_only_running_containers(gatherer: FactGatherer) -> None:
    ids = [c["Id"] for c in captured()]
    gatherer.all_running("periodic")
    assert gatherer.cached_count() == 3
    gatherer.keep_only(ids[:1])
    assert gatherer.cached_count() == 1


def test_cache_params_false_always_asks_the_engine(fake: FakeHost) -> None:
    cid = captured()[0]["Id"]
    for gatherer in gatherer_for(fake, cache_params=False):
        gatherer.params(cid)
        gatherer.params(cid)
        assert gatherer.cached_count() == 0
    assert fake.calls["inspect"] == 2


def test_disable_params_never_inspects(fake: FakeHost) -> None:
    for gatherer in gatherer_for(fake, disable_params=True):
        containers = gatherer.all_running("periodic")
    assert fake.calls["inspect"] == 0
    for c in containers:
        assert set(c.params) <= {"Id", "Name", "Image", "Created", "Config"}
        assert set(c.params["Config"]) == {"Image", "Labels"}
    labelled = next(c for c in containers if c.name == "binds_labels")
    assert labelled.params["config"]["labels"]["owner"] == "alice"
    assert labelled.image == "busybox"


def test_disable_metrics_never_asks_for_stats(fake: FakeHost) -> None:
    for gatherer in gatherer_for(fake, disable_metrics=True):
        containers = gatherer.all_running("periodic")
    assert fake.calls["stats"] == 0
    assert all(dict(c.metrics) == {} for c in containers)


def judged(gatherer: FactGatherer, c: Container, rules: list[Rule], **options: Any) -> Verdict:
    """As the pipeline judges: each fact a rule needs gathered before the judgement goes on."""
    return Judgement(rules, NO_WHITELIST, JudgeOptions(**options)).until_done(c, gatherer.complete)


def test_one_container_fetches_metrics_and_position_only_when_a_rule_reads_them(
    gatherer: FactGatherer, fake: FakeHost
) -> None:
    cid = captured()[2]["Id"]
    c = gatherer.one(cid, "event")
    judged(gatherer, c, [MEMORY_LIMIT])
    assert fake.calls == {"list": 0, "inspect": 1, "stats": 0}
    verdict = judged(gatherer, c, [MEMORY_USAGE, THIRD], stop_on_first_violation=False)
    assert verdict.reasons == ["no more than 2"]
    assert fake.calls["stats"] == 1
    assert verdict.subject.position == 2
    assert verdict.subject.check_source == "event"


def test_a_fact_the_engine_fails_to_give_is_the_error_of_the_rules_that_read_it(
    gatherer: FactGatherer, fake: FakeHost
) -> None:
    cid = captured()[2]["Id"]
    c = gatherer.one(cid, "event")
    fake.gone = {cid}  # vanished after its inspect
    verdict = judged(gatherer, c, [MEMORY_USAGE, MEMORY_LIMIT], stop_on_first_violation=False)
    assert [str(e) for e in verdict.errors] == [
        f"{MEMORY_USAGE.name}: ContainerGone: stats {cid[:12]}: No such container"
    ]
    assert fake.calls["stats"] == 1


def test_before_start_metrics_and_position_defer_their_rules(gatherer: FactGatherer) -> None:
    params = captured()[0]
    c = gatherer.before_start(params["Id"], params)
    with pytest.raises(FactUnavailable):
        c.metrics  # noqa: B018
    v = judge(c, [MEMORY_USAGE, THIRD, MEMORY_LIMIT], NO_WHITELIST)
    assert v.deferred == (MEMORY_USAGE.name, THIRD.name)
    assert v.reasons == [MEMORY_LIMIT.name]


# -- against the isolated engine ------------------------------------------------------------------------------------
@pytest.fixture
def host(clean_engine: Engine) -> Iterator[DockerHost]:
    docker_host = connect(clean_engine.url, timeout_s=30)
    yield docker_host
    docker_host.close()


@pytest.fixture
def live(host: DockerHost) -> Iterator[FactGatherer]:
    yield from gatherer_for(host)


def running(engine: Engine) -> set[str]:
    with engine.api() as api:
        return {c["Id"] for c in api.containers()}


def start_in_order(run_container: RunContainer, *names: str, **kwargs: Any) -> list[str]:
    ids = []
    for name in names:
        ids.append(run_container(name, **kwargs))
        time.sleep(0.02)  # distinct StartedAt even on a coarse clock
    return ids


def test_position_is_the_place_among_running_containers_by_start_time(
    live: FactGatherer, run_container: RunContainer, clean_engine: Engine
) -> None:
    ids = start_in_order(run_container, "first", "second", "third")
    verdicts = audit_engine(live, policy(THIRD), JudgeOptions())
    assert [v.subject.name for v in verdicts] == ["first", "second", "third"]
    assert [v.subject.position for v in verdicts] == [0, 1, 2]
    assert [v.reasons for v in verdicts] == [[], [], ["no more than 2"]]
    assert live.complete(live.one(ids[2], "event"), "position").position == 2
    assert live.complete(live.one(ids[0], "event"), "position").position == 0
    assert running(clean_engine) == set(ids)  # judged, never stopped


def test_position_ignores_stopped_containers(
    live: FactGatherer, run_container: RunContainer, clean_engine: Engine
) -> None:
    ids = start_in_order(run_container, "early", "stopped", "late")
    with clean_engine.api() as api:
        api.kill(ids[1])
    verdicts = audit_engine(live, policy(THIRD), JudgeOptions())
    assert [(v.subject.name, v.subject.position, v.verdict) for v in verdicts] == [
        ("early", 0, False),
        ("late", 1, False),
    ]
    assert live.complete(live.one(ids[2], "event"), "position").position == 1


def test_a_restarted_container_moves_to_the_end(
    live: FactGatherer, run_container: RunContainer, clean_engine: Engine
) -> None:
    ids = start_in_order(run_container, "one", "two", "three", stop_signal="SIGKILL")
    with clean_engine.api() as api:
        api.restart(ids[0], timeout=0)
    assert [c.name for c in live.all_running("periodic")] == ["two", "three", "one"]


def test_params_and_metrics_from_the_engine(live: FactGatherer, run_container: RunContainer) -> None:
    limited = run_container("limited", mem_limit="64m", labels={"Owner": "alice"})
    plain = run_container("plain")
    verdicts = {
        v.subject.name: v
        for v in audit_engine(
            live, policy(MEMORY_LIMIT, MEMORY_USAGE, OWNER_LABEL), JudgeOptions(stop_on_first_violation=False)
        )
    }
    assert verdicts["plain"].reasons == [MEMORY_LIMIT.name, OWNER_LABEL.name]
    assert verdicts["limited"].reasons == []
    assert verdicts["limited"].errors == verdicts["plain"].errors == ()
    c = verdicts["limited"].subject
    assert c.cid == limited
    assert c.params["hostconfig"]["memory"] == 64 * 1024**2
    assert c.params["config"]["labels"]["OWNER"] == "alice"
    assert 0 < c.metrics["memory_stats"]["usage"] < 64 * 1024**2
    assert c.metrics["memory_stats"]["limit"] == 64 * 1024**2
    assert str(c) == "/limited"
    assert verdicts["plain"].subject.cid == plain


def test_a_memory_usage_rule_on_real_stats(live: FactGatherer, run_container: RunContainer) -> None:
    start_in_order(run_container, "sleeper-1", "sleeper-2")
    uses_memory = Rule("uses memory", lambda c: c.metrics["memory_stats"]["usage"] > 0)
    verdicts = audit_engine(
        live, policy(MEMORY_USAGE, uses_memory), JudgeOptions(stop_on_first_violation=False)
    )
    assert [v.reasons for v in verdicts] == [["uses memory"], ["uses memory"]]
    assert all(v.errors == () for v in verdicts)


def test_disable_params_on_the_engine(host: DockerHost, run_container: RunContainer) -> None:
    start_in_order(run_container, "p1", "p2")
    run_container("p3", labels={"owner": "bob"})
    for gatherer in gatherer_for(host, disable_params=True):
        verdicts = audit_engine(
            gatherer, policy(MEMORY_LIMIT, OWNER_LABEL), JudgeOptions(stop_on_first_violation=False)
        )
    assert {v.subject.name for v in verdicts} == {"p1", "p2", "p3"}
    for v in verdicts:
        assert "HostConfig" not in v.subject.params
        assert v.subject.image == "busybox:latest"
        assert [e.rule for e in v.errors] == [MEMORY_LIMIT.name]
        assert v.errors[0].error.startswith("KeyError")
    by_name = {v.subject.name: v for v in verdicts}
    assert by_name["p3"].reasons == []
    assert by_name["p1"].reasons == [OWNER_LABEL.name]


def test_disable_metrics_on_the_engine(host: DockerHost, run_container: RunContainer) -> None:
    run_container("no-metrics")
    for gatherer in gatherer_for(host, disable_metrics=True):
        (v,) = audit_engine(
            gatherer, policy(MEMORY_USAGE, MEMORY_LIMIT), JudgeOptions(stop_on_first_violation=False)
        )
    assert dict(v.subject.metrics) == {}
    assert [e.rule for e in v.errors] == [MEMORY_USAGE.name]
    assert v.reasons == [MEMORY_LIMIT.name]


def test_a_container_run_by_image_id_is_whitelisted_by_its_tag(
    live: FactGatherer, clean_engine: Engine, busybox: str
) -> None:
    image_id = clean_engine.docker("image", "inspect", "--format", "{{.Id}}", busybox).stdout.strip()
    assert image_id.startswith("sha256:")
    cid = clean_engine.docker("run", "-d", "--name", "by-id", image_id, "sleep", "3600").stdout.strip()
    c = live.one(cid, "event")
    assert c.params["Config"]["Image"] == image_id
    assert c.image == "busybox:latest"
    always = Rule("always", lambda c: True)
    for entry in ("busybox", "busybox:latest", "busy.*"):
        (v,) = audit_engine(live, policy(always, image_white_list=entry), JudgeOptions())
        assert v.exempt == f"IMAGE_WHITE_LIST entry {entry}"
    (v,) = audit_engine(live, policy(always, image_white_list="sha256:.*"), JudgeOptions())
    assert v.reasons == ["always"]


@pytest.mark.parametrize("typed", ["busybox", "busybox:latest"])
def test_busybox_and_busybox_latest_both_exempt_a_container_run_as_either(
    live: FactGatherer, clean_engine: Engine, busybox: str, typed: str
) -> None:
    clean_engine.docker("run", "-d", "--name", "typed", typed, "sleep", "3600")
    always = Rule("always", lambda c: True)
    (v,) = audit_engine(live, policy(always), JudgeOptions())
    assert (v.subject.image, v.reasons) == (typed, ["always"])
    for entry in ("busybox", "busybox:latest"):
        (v,) = audit_engine(live, policy(always, image_white_list=entry), JudgeOptions())
        assert v.exempt == f"IMAGE_WHITE_LIST entry {entry}"


def test_the_audit_never_stops_anything(
    live: FactGatherer, run_container: RunContainer, clean_engine: Engine
) -> None:
    ids = {run_container(f"violator-{n}") for n in range(4)}
    always = Rule("always", lambda c: True)
    verdicts = audit_engine(live, policy(always), JudgeOptions())
    assert all(v.verdict for v in verdicts)
    assert running(clean_engine) == ids
    with clean_engine.api() as api:
        assert all(api.inspect_container(cid)["RestartCount"] == 0 for cid in ids)


def test_many_containers_are_gathered_together(live: FactGatherer, run_container: RunContainer) -> None:
    ids = start_in_order(run_container, *(f"many-{n:02d}" for n in range(12)))
    started = time.monotonic()
    containers = live.all_running("periodic")
    elapsed = time.monotonic() - started
    assert [c.cid for c in containers] == ids
    assert all(c.metrics["memory_stats"]["usage"] > 0 for c in containers)
    assert elapsed < 10, f"gathering 12 containers with metrics took {elapsed:.1f} s"


# -- many containers: requests in flight, stats only for rules that read them ---------------------------------
def many(count: int) -> list[dict[str, Any]]:
    """`count` copies of a captured container, each with its own id, name and start time."""
    base = captured()[0]
    out = []
    for n in range(count):
        c = copy.deepcopy(base)
        c["Id"], c["Name"] = f"{n:064x}", f"/many-{n:03d}"
        c["State"]["StartedAt"] = f"2026-12-01T10:{n // 60:02d}:{n % 60:02d}Z"
        out.append(c)
    return out


class SlowStats(FakeHost):
    """Stats that take a while, as the engine's wait for its next tick: counts the requests in flight at once."""

    def __init__(self, containers: list[dict[str, Any]], expect: int) -> None:
        super().__init__(containers)
        self.expect = expect  # the requests in flight that end the wait at once
        self.lock = threading.Condition()
        self.in_flight = self.most = 0

    def stats(self, cid: str) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.lock.notify_all()
            self.lock.wait_for(lambda: self.most >= self.expect, timeout=5)
        try:
            return super().stats(cid)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.mark.parametrize(("count", "ceiling", "most"), [(150, 256, 150), (60, 16, 16), (5, 256, 5)])
def test_stats_requests_in_flight_follow_the_containers_up_to_the_ceiling(
    count: int, ceiling: int, most: int
) -> None:
    host = SlowStats(many(count), expect=most)
    gatherer = FactGatherer(host, GatherOptions(concurrency=ceiling))  # type: ignore[arg-type]
    try:
        containers = gatherer.all_running("periodic")
        assert host.most == most
        assert [c.name for c in containers] == [f"many-{n:03d}" for n in range(count)]
        audit_engine(gatherer, policy(MEMORY_USAGE), JudgeOptions())
        assert host.most == most and host.calls["stats"] == 2 * count
    finally:
        gatherer.close()


def test_without_a_rule_reading_metrics_no_stats_are_asked_for(fake: FakeHost) -> None:
    for gatherer in gatherer_for(fake):
        containers = gatherer.all_running("periodic", metrics=False)
        verdicts = [judged(gatherer, c, [MEMORY_LIMIT, OWNER_LABEL]) for c in containers]
        assert fake.calls == {"list": 1, "inspect": 3, "stats": 0}
        assert [v.reasons for v in verdicts] == [
            ["must have memory limit"],
            ["must have an owner label"],
            ["must have memory limit"],
        ]
        audit_engine(gatherer, policy(MEMORY_LIMIT, THIRD), JudgeOptions(stop_on_first_violation=False))
        assert fake.calls["stats"] == 0
        flagged = [judged(gatherer, c, [MEMORY_USAGE]).reasons for c in containers]
        assert flagged == [[], [], []] and fake.calls["stats"] == 3


def test_metrics_gathered_for_a_rule_come_with_cpu_since_the_previous_sample(fake: FakeHost) -> None:
    cpu_now = Rule("cpu", lambda c: c.cpu_percent > 1000)
    for gatherer in gatherer_for(fake):
        first = gatherer.all_running("periodic", metrics=False)[0]
        assert len(gatherer.cpu) == 0
        judged(gatherer, first, [cpu_now])
        assert len(gatherer.cpu) == 1  # kept, as a sweep with metrics keeps it
        gatherer.keep_only([])
        assert len(gatherer.cpu) == 0


def test_image_names_are_kept_only_for_images_in_use(fake: FakeHost) -> None:
    for gatherer in gatherer_for(fake):
        by_id = {"Config": {"Image": "sha256:" + "1" * 64}, "Image": "sha256:" + "1" * 64}
        assert gatherer.image_name(by_id) == "busybox:latest"
        assert len(gatherer._image_tags) == 1
        gatherer.all_running("periodic")  # no running container was created from that id
        assert len(gatherer._image_tags) == 0


class Parsed(FakeHost):
    """Each inspect parsed from its own answer, as from the engine."""

    def inspect(self, cid: str) -> dict[str, Any]:
        return dict(json.loads(json.dumps(super().inspect(cid))))


def test_cached_params_share_their_keys_and_short_strings_between_containers() -> None:
    one, two = captured()[0]["Id"], captured()[1]["Id"]
    for gatherer in gatherer_for(Parsed(captured())):
        first, second = gatherer.params(one), gatherer.params(two)
        assert first == captured()[0] and second == captured()[1]
        key = next(k for k in first["HostConfig"] if k == "NetworkMode")
        assert key is next(k for k in second["HostConfig"] if k == "NetworkMode")
        assert first["HostConfig"]["NetworkMode"] is second["HostConfig"]["NetworkMode"]


def test_a_task_of_the_pool_that_fans_out_again_runs_its_items_itself(fake: FakeHost) -> None:
    """A sweep's check that needs the running order lists and orders on its own thread: a task waiting for
    the pool's only thread would wait for itself."""
    gatherer = FactGatherer(fake, GatherOptions(concurrency=1))  # type: ignore[arg-type]
    try:
        inner = gatherer.each(lambda n: gatherer.each(lambda m: m * n, [1, 2, 3]), [2])
        assert inner == [[2, 4, 6]]
        assert gatherer.each(lambda _: gatherer.position_of(captured()[0]["Id"]), [None]) == [0]
    finally:
        gatherer.close()
