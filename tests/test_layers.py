"""The direction of imports that keeps the flow visible: source -> facts -> judge -> act -> record -> report.

Checked on the source text (ast), so a violation fails here, whatever runs first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "enforcer"

# package part -> enforcer parts it must never import
FORBIDDEN = {
    "judge": {
        "dockerhost",
        "facts.gather",
        "sources",
        "act",
        "record",
        "report",
        "pipeline",
        "daemon",
        "cli",
    },
    "facts": {"sources", "act", "record", "report", "pipeline", "daemon", "cli", "judge"},
    "act": {"sources", "report", "pipeline", "daemon", "cli"},
    "record": {"dockerhost", "sources", "act", "report", "pipeline", "daemon", "cli"},
    "report": {"dockerhost", "sources", "act", "pipeline", "daemon", "cli"},
    "dockerhost": {"facts", "judge", "sources", "act", "record", "report", "pipeline", "daemon", "cli"},
    "library": {"dockerhost", "sources", "act", "record", "report", "pipeline", "daemon", "cli"},
    "settings": {"dockerhost", "facts", "judge", "sources", "act", "record", "report", "pipeline", "daemon"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE).with_suffix("")
    return relative.parts[0]


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "defaults" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_flow(path: Path) -> None:
    forbidden = FORBIDDEN.get(part_of(path), set())
    for module in imported_modules(path):
        if not module.startswith("enforcer."):
            continue
        target = module.removeprefix("enforcer.")
        assert not any(target == f or target.startswith(f + ".") for f in forbidden), (
            f"{path.relative_to(PACKAGE)} imports {module}"
        )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_dockerhost_talks_to_docker(path: Path) -> None:
    if part_of(path) == "dockerhost":
        return
    for module in imported_modules(path):
        assert module != "docker" and not module.startswith("docker."), f"{path} imports {module}"
