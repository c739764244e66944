"""The direction of imports that keeps the flow visible: source -> facts -> judge -> act -> record -> report.

Every package and module of `enforcer/` has a place in LAYERS. A module may import its own part and any
part of a lower layer; parts that share a layer are independent (neither imports the other). On top of the
layers, the parts in PURE never reach the engine. Checked on the source text (ast), so a violation fails
here, whatever runs first.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "enforcer"

# Top to bottom. A part is a package or module of enforcer/ (dotted, without `enforcer.`); the package's
# own __init__ is "enforcer". The longest part that names a module is its part, so a module can be placed
# apart from its package (`facts.gather`) when it needs a layer of its own.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("daemon",),
    (
        "sources",
        "audit",
        "casetest",
        "notifytest",
    ),  # what asks for a check: events, sweeps, reloads; audit, test
    (
        "prevention",
        "sustained",
    ),  # the create-time path: the inspect sent ahead, the racing judgement, the removal
    ("pipeline",),  # gather -> judge -> act -> record for one container
    ("pending", "error_log", "notices"),  # the pipeline's owners: create-time verdicts kept for start; rule
    # errors; the notifiers' episodes
    ("report",),  # API, page, metrics
    ("status", "policy_in_force", "act", "notify", "breaker"),  # health; the policy in force; acting on a
    # verdict; the ready notifiers (HTTP to receivers, never the engine); the stop-rate breaker
    ("defaults",),  # user files shipped as defaults; loaded by path, never imported
    ("judge", "library", "record"),
    ("facts",),
    ("dockerhost",),  # the only code that imports `docker`
    ("settings", "retry", "logs", "tuning", "systemd_notify", "units", "trust", "enforcer"),
)

# Parts that never do engine I/O, whatever their layer allows: rules stay testable with plain dicts.
PURE = (
    "judge",
    "library",
    "defaults",
    "record",
    "report",
    "status",
    "policy_in_force",
    "settings",
    "units",
    "pending",
    "error_log",
    "notify",
    "trust",
    "breaker",
)
ENGINE_IO = ("dockerhost", "facts.gather")


def module_name(path: Path) -> str:
    """`enforcer/judge/rules.py` -> `judge.rules`; a package's __init__ is the package; the root `enforcer`."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "enforcer"


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
PLACED = {part: depth for depth, layer in enumerate(LAYERS) for part in layer}


def within(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def part_of(module: str) -> str | None:
    """The longest placed part that contains the module; None when it has no place yet."""
    if module in PLACED:
        return module
    candidates = [part for part in PLACED if part != "enforcer" and within(module, part)]
    return max(candidates, key=len, default=None)


@functools.cache
def parsed(path: Path) -> ast.Module:
    """Each source parsed once per session: every test here walks the same trees."""
    return ast.parse(path.read_text(), str(path))


def imported_modules(path: Path, module: str) -> set[str]:
    """The enforcer modules that `path` imports, as names relative to `enforcer` (relative imports too)."""
    tree = parsed(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                anchor = (
                    ["enforcer", *package.split(".")] if package not in ("", "enforcer") else ["enforcer"]
                )
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from enforcer import settings` imports the module enforcer.settings
                sub = f"{base}.{alias.name}".removeprefix("enforcer.")
                found.add(f"{base}.{alias.name}" if sub in MODULES else base)
    return {
        "enforcer" if name == "enforcer" else name.removeprefix("enforcer.")
        for name in found
        if name == "enforcer" or name.startswith("enforcer.")
    }


def violations(module: str, imports: set[str]) -> list[str]:
    """Why `module` may not import each of `imports` (empty when all are allowed)."""
    own = part_of(module)
    assert own is not None
    found = []
    for target in sorted(imports):
        theirs = part_of(target)
        if theirs is None or theirs == own:
            continue  # an unplaced target fails its own test
        if PLACED[theirs] < PLACED[own]:
            found.append(f"{module} ({own}) imports {target} ({theirs}), which is in a higher layer")
        elif PLACED[theirs] == PLACED[own]:
            found.append(f"{module} imports {target}: {own} and {theirs} share a layer and stay independent")
        elif any(within(own, p) for p in PURE) and any(within(target, io) for io in ENGINE_IO):
            found.append(f"{module} imports {target}: {own} never does engine I/O")
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_has_a_layer(module: str) -> None:
    assert part_of(module) is not None, (
        f"enforcer/{MODULES[module].relative_to(PACKAGE)} has no layer: add {module!r} (or its package) to "
        f"the layer it belongs to in LAYERS, tests/test_layers.py (a new tuple where none fits)"
    )


def test_every_placed_part_exists() -> None:
    """A renamed or removed module leaves no stale entry behind."""
    assert sorted(part for part in PLACED if not any(within(m, part) for m in MODULES)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module: str) -> None:
    if part_of(module) is None:
        pytest.skip("no layer yet (test_every_module_has_a_layer fails)")
    assert violations(module, imported_modules(MODULES[module], module)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_dockerhost_talks_to_docker(module: str) -> None:
    if part_of(module) == "dockerhost":
        return
    tree = parsed(MODULES[module])
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            assert name != "docker" and not name.startswith("docker."), f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_dockerhost_and_prevention_handle_answers_sent_ahead(module: str) -> None:
    """How an early answer is polled and read is the create-time path's business, nobody else's."""
    if part_of(module) in ("dockerhost", "prevention"):
        return
    assert "dockerhost.answer" not in imported_modules(MODULES[module], module)


# -- the checker itself can fail ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "target", "why"),
    [
        ("judge.judge", "pipeline", "higher layer"),
        ("facts.container", "judge.verdict", "higher layer"),
        ("status", "act.actions", "stay independent"),
        ("judge.judge", "facts.gather", "never does engine I/O"),
        ("report.app", "dockerhost.client", "never does engine I/O"),
        ("pipeline", "prevention", "higher layer"),
        ("pending", "error_log", "stay independent"),
    ],
)
def test_a_wrong_import_is_named(module: str, target: str, why: str) -> None:
    (found,) = violations(module, {target})
    assert module in found
    assert target in found
    assert why in found


def test_relative_and_from_package_imports_are_resolved(tmp_path: Path) -> None:
    source = "from . import verdict\nfrom ..facts import gather\nfrom enforcer import settings, __version__\n"
    fake = tmp_path / "judge.py"
    fake.write_text(source)
    assert imported_modules(fake, "judge.judge") == {"judge.verdict", "facts.gather", "settings", "enforcer"}


def test_a_new_module_without_a_layer_is_reported() -> None:
    assert part_of("enforcer_new_module") is None
    assert part_of("judge.new_module") == "judge"
    assert part_of("facts.gather") == "facts"
