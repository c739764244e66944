"""`docker-enforcer audit` with `cis.rules()` on real containers flags exactly the expected (container, rule) pairs.

A mix of violating and clean busybox containers runs on the isolated engine; the audit runs as a process
(`python -m enforcer audit --json`) with a rules file that pulls in the library, as a user's would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

from support.engine import Engine, RunContainer

from enforcer.library import cis

REPO = Path(__file__).resolve().parents[2]
RULES = "from enforcer.library import cis\n\nrules = cis.rules()\n"

# Docker's defaults that CIS section 5 asks to change: every container not configured otherwise has them.
DEFAULTS = {
    "memory-limit",
    "cpu-limit",
    "read-only-rootfs",
    "no-new-privileges",
    "healthcheck-configured",
    "pids-limit",
}
HARDENED: dict[str, Any] = {
    "read_only": True,
    "mem_limit": "64m",
    "nano_cpus": 500_000_000,
    "pids_limit": 100,
    "security_opt": ["no-new-privileges", "apparmor=docker-default"],
    "user": "1000:1000",
    "network_mode": "none",
    "restart_policy": {"Name": "on-failure", "MaximumRetryCount": 3},
    "healthcheck": {"test": ["CMD", "true"], "interval": 30_000_000_000},
    "cap_drop": ["ALL"],
}


def scenarios(engine: Engine) -> dict[str, tuple[dict[str, Any], set[str]]]:
    """Container name -> (create options, rules it must violate besides DEFAULTS)."""
    socket = {str(engine.socket): {"bind": "/var/run/docker.sock", "mode": "rw"}}
    return {
        "lib-plain": ({}, set()),
        "lib-sys-admin": ({"cap_add": ["SYS_ADMIN"]}, {"no-added-capabilities", "no-dangerous-capabilities"}),
        "lib-etc-ro": ({"volumes": {"/etc": {"bind": "/host-etc", "mode": "ro"}}}, {"no-sensitive-mounts"}),
        "lib-socket": ({"volumes": socket}, {"no-docker-socket"}),
        "lib-host-network": ({"network_mode": "host"}, {"no-host-network"}),
        # Docker itself adds label=disable to a container in the host's PID namespace.
        "lib-host-pid": ({"pid_mode": "host"}, {"no-host-pid", "no-selinux-disabled"}),
        "lib-seccomp": ({"security_opt": ["seccomp=unconfined"]}, {"no-seccomp-unconfined"}),
        "lib-port-80": ({"ports": {"8080/tcp": 80}}, {"no-privileged-ports", "no-ports-on-all-interfaces"}),
        "lib-restart-always": ({"restart_policy": {"Name": "always"}}, {"restart-retries-limited"}),
    }


def audit(engine: Engine, workdir: Path) -> tuple[int, list[dict[str, Any]], str]:
    rules = workdir / "rules.py"
    rules.write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "WHITE_LIST", "IMAGE_WHITE"))}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DOCKER_SOCKET": engine.url,
            "RULES_FILE": str(rules),
            "STOP_ON_FIRST_VIOLATION": "False",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "enforcer", "audit", "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def test_audit_with_cis_rules_flags_exactly_the_expected_pairs(
    tmp_path: Path, clean_engine: Engine, run_container: RunContainer
) -> None:
    with closing(clean_engine.client()) as client:
        info = client.info()
        networks = {n.name for n in client.networks.list()}
    assert "bridge" not in networks, "the isolated engine runs without docker0 (--bridge=none)"
    no_apparmor = not any("apparmor" in option for option in info.get("SecurityOptions") or ())

    expected: set[tuple[str, str]] = set()
    for name, (options, violated) in scenarios(clean_engine).items():
        run_container(name, **options)
        rules = DEFAULTS | violated | ({"apparmor-profile"} if no_apparmor else set())
        expected |= {(name, rule) for rule in rules}
    run_container("lib-hardened", **HARDENED)
    if no_apparmor:  # without AppArmor the engine drops even a requested profile when the container starts
        expected.add(("lib-hardened", "apparmor-profile"))

    code, verdicts, stderr = audit(clean_engine, tmp_path)

    ids = {rule["name"]: rule["id"] for rule in cis.rules()}
    ours = [v for v in verdicts if v["name"].startswith("lib-")]
    assert len(ours) == len(scenarios(clean_engine)) + 1, stderr
    assert [v for v in ours if v["rule_errors"] or v["exempt"] or v["whitelisted"]] == []
    flagged = {(v["name"], ids[rule]) for v in ours for rule in v["violated_rules"]}
    assert code == 1
    assert sorted(flagged - expected) == [], "flagged but not expected"
    assert sorted(expected - flagged) == [], "expected but not flagged"
