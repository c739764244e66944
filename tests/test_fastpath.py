"""The lean HTTP path (inspect, kill, remove) and its requests sent ahead, against the isolated engine."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.engine import Engine, RunContainer

from enforcer.dockerhost import fastpath
from enforcer.dockerhost.client import connect
from enforcer.dockerhost.errors import ContainerGone
from enforcer.dockerhost.fastpath import FastPath


@pytest.fixture
def fast(clean_engine: Engine) -> Iterator[FastPath]:
    path = FastPath(clean_engine.url, "1.41", timeout_s=30)
    yield path
    path.close()


def on_another_thread(fn: Any) -> Any:
    """What fn() returns (or raises), called on a thread of its own, as a pool worker would."""
    out: dict[str, Any] = {}

    def call() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    thread.join(30)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_an_inspect_sent_ahead_is_answered_on_another_thread(
    fast: FastPath, run_container: RunContainer
) -> None:
    cid = run_container("ahead")
    answer = fast.inspect_soon(cid)
    assert on_another_thread(answer)["Name"] == "/ahead"


def test_a_container_gone_before_the_answer_is_read_is_container_gone(fast: FastPath) -> None:
    answer = fast.inspect_soon("no-such-container")
    with pytest.raises(ContainerGone, match="inspect no-such-cont"):
        on_another_thread(answer)


def test_connections_of_answered_requests_are_reused(fast: FastPath, run_container: RunContainer) -> None:
    cid = run_container()
    for _ in range(5):
        assert fast.inspect_soon(cid)()["Id"] == cid
    assert len(fast._open) == 1


def test_a_spare_connection_the_engine_closed_is_replaced(
    fast: FastPath, run_container: RunContainer
) -> None:
    cid = run_container()
    fast.inspect_soon(cid)()
    [spare] = fast._spare
    assert spare.sock is not None
    spare.sock.shutdown(socket.SHUT_RDWR)  # as if the engine had closed it while it sat idle
    assert fast.inspect_soon(cid)()["Id"] == cid
    assert spare not in fast._open


def test_past_the_limit_a_request_is_sent_when_its_answer_is_asked_for(
    fast: FastPath, run_container: RunContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastpath, "MAX_AHEAD", 2)
    cid = run_container()
    answers = [fast.inspect_soon(cid) for _ in range(3)]
    assert len(fast._open) == 2  # the third holds no connection yet
    assert answers[0].ready(5) and not answers[2].ready(0.01)  # not sent: never "arrived"
    assert [a()["Id"] for a in answers] == [cid] * 3
    assert fast._ahead == 0


def test_the_docker_host_sends_ahead_through_the_lean_path_and_docker_py_alike(
    clean_engine: Engine, run_container: RunContainer
) -> None:
    cid = run_container("either")
    host = connect(clean_engine.url)
    try:
        lean = host._fast
        assert lean is not None
        assert host.inspect_soon(cid)()["Name"] == "/either"
        host._fast = None  # as for a TLS engine
        assert host.inspect_soon(cid)()["Name"] == "/either"
    finally:
        host.close()
        lean.close()


def test_ready_tells_whether_the_answer_has_arrived(fast: FastPath, run_container: RunContainer) -> None:
    """A stats request without streaming is answered on the engine's next samples, a second or two later."""
    cid = run_container()
    stats = fast.begin("GET", f"/containers/{cid}/stats?stream=false", "stats")
    assert not stats.ready(0.2)
    assert stats.ready(5)
    assert "memory_stats" in stats()


def test_the_event_stream_yields_the_engine_events_filtered_and_from_since(
    fast: FastPath, clean_engine: Engine, run_container: RunContainer
) -> None:
    began = time.time()
    cid = run_container("evented")
    stream = fast.events(began - 1, {"type": ["container"], "event": ["create", "start"]})
    try:
        seen = []
        for event in stream:
            seen.append((event["id"], event["Action"]))
            if len(seen) == 2:
                break
    finally:
        stream.close()
    assert seen == [(cid, "create"), (cid, "start")]


def test_closing_the_event_stream_unblocks_its_reader(fast: FastPath) -> None:
    stream = fast.events(None, {"type": ["plugin"]})  # nothing will come
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(stream))
    reader.start()
    time.sleep(0.2)
    assert reader.is_alive()
    stream.close()
    reader.join(5)
    assert not reader.is_alive() and got == []


def test_stats_are_one_shot_and_a_gone_container_is_container_gone(
    fast: FastPath, run_container: RunContainer
) -> None:
    """One sample, not two: the engine leaves precpu_stats empty (FACTS.md) and answers on its next tick."""
    stats = fast.stats(run_container())
    assert stats["memory_stats"]["usage"] > 0
    assert stats["cpu_stats"]["system_cpu_usage"] > 0
    assert not stats["precpu_stats"].get("system_cpu_usage")
    with pytest.raises(ContainerGone, match="stats no-such-cont"):
        fast.stats("no-such-container")


def test_an_engine_before_api_1_41_is_asked_for_stats_without_one_shot() -> None:
    url = "unix:///nowhere/docker.sock"  # nothing is sent
    assert [FastPath(url, v, 30)._one_shot for v in ("1.40", "1.41", "1.43", "x")] == [
        False,
        True,
        True,
        False,
    ]


def test_stats_answered_empty_are_container_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine ends a pending stats request with an empty 200 when the container stops meanwhile."""
    path = FastPath("unix:///nowhere/docker.sock", "1.41", 30)
    monkeypatch.setattr(path, "request", lambda method, url, what: None)
    with pytest.raises(ContainerGone, match="the container stopped"):
        path.stats("c" * 64)


def test_an_exec_that_cannot_be_inspected_leaves_no_request_ahead(
    clean_engine: Engine, run_container: RunContainer
) -> None:
    # The container's inspect goes out ahead of the exec's: when the exec's fails (gone, refused), the
    # container's answer is still read, so its connection and its slot ahead are given back.
    cid = run_container("exec-gone")
    host = connect(clean_engine.url)
    try:
        lean = host._fast
        assert lean is not None
        for _ in range(3):
            with pytest.raises(ContainerGone):
                host.inspect_exec_with_container("0" * 64, cid)
        assert lean._ahead == 0
        assert len(lean._spare) == 1 and len(lean._open) == 2  # one spare reused, and this thread's own
    finally:
        host.close()
