"""The other docker-enforcers of this host, recognised by the ids of their containers (PEERS_DIR).

Whoever creates a container chooses its name, labels, env and image, and anyone who can use the socket can
read another container's and copy them: nothing in a configuration tells the real audit twin from a copy
named like it. What an enforcer learns at run time does: the id of the container it runs in (self_id.py).
Each enforcer in a container writes that id into PEERS_DIR, a folder only the enforcers mount, and every
enforcer exempts the ids it finds there as it exempts its own. Writing there takes a container that mounts
the folder, and that container is judged like any other.

An id stays while its container exists: a restarted container keeps its id, and a twin restarted by the
engine must not be judged before it could write its id again. It is removed once the engine says the
container is gone (ids are never reused).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

from enforcer import trust

log = logging.getLogger("enforcer.peers")
_ID = re.compile(r"[0-9a-f]{64}")


class PeerFolder:
    """PEERS_DIR. `ids()` is the snapshot taken by the last `refresh()`: judging reads it without I/O."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._ids: frozenset[str] = frozenset()
        self._problem: str | None = None

    def ids(self) -> frozenset[str]:
        return self._ids

    def refresh(self) -> None:
        """List the folder again; a folder others may write is refused (its ids would exempt anything)."""
        if self.path is None:
            return
        try:
            self._ids = self._read(self.path)
            self._report(None)
        except (OSError, ValueError) as exc:
            self._ids = frozenset()
            self._report(str(exc))

    def publish(self, own_id: str, gone: Callable[[str], bool]) -> None:
        """Write our container's id there, and remove the ids of containers the engine no longer has."""
        if self.path is None:
            return
        self.refresh()
        try:
            for cid in self._ids - {own_id}:
                if gone(cid):
                    (self.path / cid).unlink(missing_ok=True)
            os.close(os.open(self.path / own_id, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as exc:
            log.error(
                "PEERS_DIR=%s: cannot write this container's id there (%s); the other enforcers will judge "
                "this one", self.path, exc.strerror or exc,
            )  # fmt: skip
        else:
            log.info("container id %s written to PEERS_DIR=%s", own_id[:12], self.path)
        self.refresh()

    @staticmethod
    def _read(path: Path) -> frozenset[str]:
        """The ids in the folder, once it and every folder above it are trusted as a rules file's are
        (owned by root or this daemon's user, writable by neither group nor others): whoever could swap any
        of them could exempt their own container."""
        if not path.is_dir():
            raise ValueError("not a folder")
        try:
            found = trust.problems(path)
        except trust.UntrustedPathError as exc:
            raise ValueError(str(exc)) from None
        if found:
            raise ValueError(str(found[0]))
        return frozenset(name for name in os.listdir(path) if _ID.fullmatch(name))

    def _report(self, problem: str | None) -> None:
        """Log when the folder turns unreadable or readable again, not at every look."""
        if problem != self._problem:
            if problem is None:
                log.info("PEERS_DIR=%s readable again", self.path)
            else:
                log.error("PEERS_DIR=%s: %s; no other enforcer is exempt", self.path, problem)
        self._problem = problem
