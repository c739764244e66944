"""What the benchmarks share: the environment of a `docker-enforcer run` measured against an isolated engine."""

from __future__ import annotations

import os
from pathlib import Path

from support.engine import Engine

ROOT = Path(__file__).resolve().parent.parent.parent


def enforcer_env(engine: Engine, workdir: Path, rules: str, **settings: str) -> dict[str, str]:
    """Env for `python -m enforcer run`: this checkout's code, the engine's socket, `rules` written to
    workdir/rules.py (0644, as the loader wants), state in workdir/state, KILL on start events, API on any
    free loopback port; `settings` add or override variables."""
    rules_path = workdir / "rules.py"
    rules_path.write_text(rules)
    rules_path.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        DOCKER_SOCKET=engine.url,
        RULES_FILE=str(rules_path),
        MODE="KILL",
        RUN_START_EVENTS="True",
        RUN_PERIODIC="False",
        LOG_LEVEL="INFO",
        LISTEN_ADDRESS="127.0.0.1:0",
        STATE_DB=str(workdir / "state" / "detections.db"),
    )
    env.update(settings)
    return env
