"""Temporary folders the rules loader trusts, for the tests, the benchmarks and the demo.

The loader refuses a rules file when any folder above it may be written by a user other than root or the
daemon's own (enforcer/judge/trust.py), and /tmp is such a folder: so pytest's tmp_path and tempfile's
folders, which live under /tmp, cannot hold rules files. These live under /run (root's, 0755) instead, or,
for a user who cannot write /run, under ~/.cache: the check itself picks the first that passes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from enforcer import trust

CANDIDATES = (Path("/run"), Path.home() / ".cache")
SHARED = "docker-enforcer-tests"  # one shared parent; each run takes its own mkdtemp folder inside


def trusted_parent() -> Path:
    """The shared parent folder, created 0755 where needed; the first candidate the loader trusts."""
    refused = []
    for candidate in CANDIDATES:
        folder = candidate / SHARED
        try:
            folder.mkdir(mode=0o755, parents=True, exist_ok=True)
            found = trust.problems(folder)
        except (OSError, trust.UntrustedPathError) as exc:
            refused.append(f"{folder}: {exc}")
            continue
        if not found:
            return folder
        refused.append(f"{folder}: {'; '.join(map(str, found))}")
    raise RuntimeError("no trusted place for temporary rules files: " + " | ".join(refused))


def trusted_tempdir(prefix: str) -> Path:
    """A new folder (0755, so unprivileged test users can look in) that the loader trusts."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=trusted_parent()))
    os.chmod(folder, 0o755)
    return folder
