"""Modules the user's files import from their own folders, checked like the files before their code runs.

A rules file may import helpers that sit next to it. Those run as root too, so a meta-path finder, first on
`sys.meta_path` for the life of the process, checks every module found inside a user file's folder before
it runs: while the user file executes, and later, when a rule, whitelist rule or trigger imports from there.
Such modules are run from their source, never from a `__pycache__` file that someone else may have written,
and each load of a user file gets fresh ones, so a changed helper is checked and loaded again on reload.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

Check = Callable[[Path, bool], None]  # check(path, allow_writable) raises when the path is refused
# The enforcer's own modules are never user modules, even when a user file sits in a folder above them (a
# rules.py at the top of a checkout): loading them again on reload would make two copies of its classes.
OWN_PACKAGE = Path(__file__).resolve().parent.parent


class SourceOnlyLoader(importlib.abc.Loader):
    """Executes a module from its .py source only (no bytecode read from or written to the folder)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        with open(self.origin, "rb") as source:
            code = compile(source.read(), self.origin, "exec", dont_inherit=True)
        exec(code, module.__dict__)


class FolderGuard(importlib.abc.MetaPathFinder):
    """Checks, with `check`, every module that the normal path search finds inside a watched folder."""

    def __init__(self, check: Check) -> None:
        self._check = check
        self._lock = threading.Lock()
        self._folders: dict[Path, bool] = {}  # real path of a user file's folder -> allow_writable
        self._loaded: set[str] = set()

    def install(self) -> None:
        """Put the guard first on sys.meta_path (once), ahead of the finders that would load unchecked."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def watch(self, folder: Path, allow_writable: bool) -> None:
        with self._lock:
            self._folders[Path(os.path.realpath(folder))] = allow_writable

    def forget_modules(self) -> None:
        """Drop the modules loaded from watched folders, so the next import checks and runs them again."""
        with self._lock:
            names, self._loaded = self._loaded, set()
        for name in names:
            sys.modules.pop(name, None)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.has_location:
            return None  # not found, or a namespace package (no code of its own)
        allow_writable = self._allowance(spec.origin)
        if allow_writable is None:
            return None  # not from a user file's folder: the usual finders load it
        self._check(Path(spec.origin), allow_writable)
        if isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            spec.loader = SourceOnlyLoader(spec.origin)
            spec.cached = None
        with self._lock:
            self._loaded.add(fullname)
        return spec

    def _allowance(self, origin: str) -> bool | None:
        """Whether problems of `origin` are only warned about (False if any watched folder holding it says
        so); None when no watched folder holds it."""
        real = Path(os.path.realpath(origin))
        if real.is_relative_to(OWN_PACKAGE):
            return None
        with self._lock:
            folders = list(self._folders.items())
        holding = [allow_writable for folder, allow_writable in folders if real.is_relative_to(folder)]
        return all(holding) if holding else None
