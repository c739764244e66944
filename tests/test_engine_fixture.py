"""The isolated engine the other tests rely on: private, able to run busybox, restartable, with stats."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import docker.errors
import pytest
from support.engine import Engine, RunContainer, ensure_busybox_image, start_engine

HOST_SOCKET = Path("/var/run/docker.sock")


def test_engine_is_not_the_host_engine(engine: Engine) -> None:
    assert engine.socket != HOST_SOCKET
    assert engine.socket.resolve() != HOST_SOCKET.resolve()
    assert engine.url == f"unix://{engine.socket}"
    assert "DOCKER_HOST" not in os.environ
    with engine.api() as api:
        assert api.info()["DockerRootDir"] == str(engine.data_root)


def test_busybox_echo_through_sdk_and_cli(clean_engine: Engine, busybox: str) -> None:
    with closing(clean_engine.client()) as client:
        assert client.containers.run(busybox, ["echo", "hi"], remove=True) == b"hi\n"
    assert clean_engine.docker("run", "--rm", busybox, "echo", "hi").stdout == "hi\n"


def test_run_container_starts_a_running_container(clean_engine: Engine, run_container: RunContainer) -> None:
    container_id = run_container("fixture-check", labels={"purpose": "test"})
    with clean_engine.api() as api:
        state = api.inspect_container(container_id)
    assert state["State"]["Running"] is True
    assert state["Name"] == "/fixture-check"
    assert state["Config"]["Labels"] == {"purpose": "test"}


def test_stats_one_shot(clean_engine: Engine, run_container: RunContainer) -> None:
    container_id = run_container()
    with clean_engine.api() as api:
        stats = api.stats(container_id, stream=False, one_shot=True)
    assert stats["memory_stats"]["usage"] > 0


def test_restart_keeps_containers_and_their_data(clean_engine: Engine, run_container: RunContainer) -> None:
    # busybox sleep as PID 1 ignores SIGTERM: with that stop signal dockerd's shutdown would wait 10 s.
    container_id = run_container("survivor", stop_signal="SIGKILL")
    with closing(clean_engine.client()) as client:
        container = client.containers.get(container_id)
        assert container.exec_run(["sh", "-c", "echo kept > /data.txt"]).exit_code == 0

        clean_engine.restart()

        assert clean_engine.is_running()
        container = client.containers.get(container_id)  # the client made before the restart still works
        assert container.name == "survivor"
        container.start()
        assert container.exec_run(["cat", "/data.txt"]).output == b"kept\n"


def test_remove_all_containers(clean_engine: Engine, run_container: RunContainer) -> None:
    for _ in range(5):
        run_container()
    clean_engine.remove_all_containers()
    with clean_engine.api() as api:
        assert api.containers(all=True) == []


def test_two_engines_run_side_by_side(engine: Engine, run_container: RunContainer) -> None:
    run_container("only-in-first")
    second = start_engine()
    try:
        assert second.socket != engine.socket
        ensure_busybox_image(second)
        with closing(second.client()) as client:
            with pytest.raises(docker.errors.NotFound):
                client.containers.get("only-in-first")
            assert client.containers.run("busybox:latest", ["echo", "second"], remove=True) == b"second\n"
    finally:
        second.destroy()
    assert not second.base_dir.exists()
    assert engine.ping()
