"""Helpers for tests that call the command line in-process (`enforcer.cli.main`); fixtures: tests/conftest.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from enforcer.cli import main


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    path.chmod(0o644)
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str], **environ: str) -> tuple[int, str, str]:
    code = main(argv, environ)
    out, err = capsys.readouterr()
    return code, out, err
