"""PEERS_DIR: the enforcers of one host exempt each other by container id, never by name."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from enforcer.dockerhost.peers import PeerFolder
from enforcer.facts.container import Container
from enforcer.judge.judge import PEER_CONTAINER, JudgeOptions, judge
from enforcer.judge.rules import Rule
from enforcer.judge.whitelist import Whitelist
from enforcer.settings import Settings

OWN = "a" * 64
TWIN = "b" * 64
GONE = "c" * 64


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "peers"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    return path


def test_ids_are_the_container_ids_in_the_folder_as_of_the_last_refresh(folder: Path) -> None:
    for name in (TWIN, "docker-enforcer-audit", TWIN[:12], "notes.txt"):
        (folder / name).touch()
    peers = PeerFolder(folder)
    assert peers.ids() == frozenset()  # nothing read before the first refresh
    peers.refresh()
    assert peers.ids() == {TWIN}
    (folder / TWIN).unlink()
    assert peers.ids() == {TWIN}  # a snapshot: judging does no I/O
    peers.refresh()
    assert peers.ids() == frozenset()


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o1777])
def test_a_folder_others_may_write_exempts_nobody(
    folder: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    (folder / TWIN).touch()
    folder.chmod(mode)
    peers = PeerFolder(folder)
    peers.refresh()
    peers.refresh()
    assert peers.ids() == frozenset()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "is writable by" in errors[0], errors  # once, not every look
    folder.chmod(0o755)
    peers.refresh()
    assert peers.ids() == {TWIN}


def test_a_folder_under_a_parent_others_may_write_exempts_nobody(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever may write the parent can swap the folder for one holding their own container's id."""
    (folder / TWIN).touch()
    folder.parent.chmod(0o777)
    try:
        peers = PeerFolder(folder)
        peers.refresh()
        assert peers.ids() == frozenset()
        (error,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert f"the folder {folder.parent} is writable by group and others" in error
    finally:
        folder.parent.chmod(0o755)


def test_a_folder_owned_by_another_user_exempts_nobody(folder: Path) -> None:
    (folder / TWIN).touch()
    os.chown(folder, 65534, 65534)
    peers = PeerFolder(folder)
    peers.refresh()
    assert peers.ids() == frozenset()
    os.chown(folder, os.getuid(), os.getgid())
    peers.refresh()
    assert peers.ids() == {TWIN}


def test_a_missing_folder_exempts_nobody(tmp_path: Path) -> None:
    peers = PeerFolder(tmp_path / "missing")
    peers.refresh()
    peers.publish(OWN, gone=lambda cid: True)  # logged, never raised
    assert peers.ids() == frozenset()


def test_unset_reads_nothing() -> None:
    peers = PeerFolder(None)
    peers.refresh()
    peers.publish(OWN, gone=lambda cid: True)
    assert peers.ids() == frozenset()


def test_publish_writes_our_id_and_drops_only_the_ids_of_containers_that_are_gone(folder: Path) -> None:
    for cid in (TWIN, GONE):
        (folder / cid).touch()
    asked: list[str] = []

    def gone(cid: str) -> bool:
        asked.append(cid)
        return cid == GONE

    peers = PeerFolder(folder)
    peers.publish(OWN, gone)
    assert sorted(p.name for p in folder.iterdir()) == [OWN, TWIN]
    assert (folder / OWN).stat().st_mode & 0o777 == 0o644
    assert sorted(asked) == [TWIN, GONE]
    assert peers.ids() == {OWN, TWIN}
    peers.publish(OWN, gone)  # a restarted enforcer writes the same id again
    assert sorted(p.name for p in folder.iterdir()) == [OWN, TWIN]


def test_the_judge_exempts_a_peer_by_id_and_judges_a_container_named_like_it() -> None:
    rules = [Rule("no socket", lambda c: True)]
    options = JudgeOptions(peer_ids=lambda: frozenset({TWIN}))
    twin = Container(TWIN, {"Id": TWIN, "Name": "/whatever"})
    forged = Container("d" * 64, {"Id": "d" * 64, "Name": "/docker-enforcer-audit"})
    assert judge(twin, rules, Whitelist(), options).exempt == PEER_CONTAINER
    verdict = judge(forged, rules, Whitelist(), options)
    assert verdict.exempt is None and [r.name for r in verdict.violated] == ["no socket"]


def test_peers_dir_is_a_setting() -> None:
    assert Settings.from_env({}).peers_dir is None
    settings = Settings.from_env({"PEERS_DIR": "/var/lib/docker-enforcer-peers"})
    assert settings.peers_dir == Path("/var/lib/docker-enforcer-peers")
    assert settings.public()["peers_dir"] == "/var/lib/docker-enforcer-peers"
