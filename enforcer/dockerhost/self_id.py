"""Finding the id of the container docker-enforcer itself runs in, so that it never judges itself."""

from __future__ import annotations

import re
from pathlib import Path

_ID = re.compile(r"(?:/containers/|/docker/|docker-)([0-9a-f]{64})")


def own_container_id(proc: Path = Path("/proc/self")) -> str | None:
    """The 64-hex id from mountinfo (Docker's /etc/hostname bind) or cgroup; None outside a container."""
    for name in ("mountinfo", "cgroup"):
        try:
            text = (proc / name).read_text()
        except OSError:
            continue
        match = _ID.search(text)
        if match:
            return match.group(1)
    return None
