"""Each setting is declared once; from_env, public() (/config) and the README's table follow from it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from enforcer import settings as module
from enforcer.settings import Declared, Files, Settings, SettingsError, declarations

README = Path(__file__).resolve().parent.parent / "README.md"
DECLARED = {d.variable: d for d in declarations()}

# What /config shows (as before the settings were declared once, plus the settings added since): a change
# here is a change users see.
PUBLIC_KEYS = {
    "mode",
    "run_periodic",
    "run_start_events",
    "run_update_events",
    "run_rename_events",
    "run_exec_events",
    "check_interval_s",
    "sample_interval_s",
    "immediate_periodical_start",
    "catch_up_sweep",
    "docker_socket",
    "docker_req_timeout_s",
    "engine_concurrency",
    "docker_tls_verify",
    "cache_params",
    "disable_params",
    "disable_metrics",
    "stop_on_first_violation",
    "rule_errors_are_violations",
    "stop_timeout_s",
    "prevent_on_create",
    "max_new_stops",
    "max_stops_per_minute",
    "nice",
    "log_level",
    "log_format",
    "white_list",
    "image_white_list",
    "peers_dir",
    "owner_label",
    "owner_labels",
    "listen_address",
    "api_token_set",
    "allowed_hosts",
    "metrics_public",
    "state_db",
    "detections_max_age_days",
}


def test_the_readme_table_is_generated_from_the_declarations() -> None:
    """If this fails, run: python -m enforcer.settings --readme README.md"""
    text = README.read_text(encoding="utf-8")
    assert text == module.with_readme_table(text), "run: python -m enforcer.settings --readme README.md"


def test_every_declared_variable_has_one_row() -> None:
    table = module.readme_table()
    for variable in DECLARED:
        assert table.count(f"| `{variable}` |") == 1, variable


def test_a_changed_table_is_rewritten(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    stale = f"# x\n\n{module.TABLE_BEGIN}\n| `MODE` | `KILL` | stale |\n{module.TABLE_END}\n\nafter\n"
    readme.write_text(stale)
    assert module.main(["--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text == f"# x\n\n{module.TABLE_BEGIN}\n{module.readme_table()}{module.TABLE_END}\n\nafter\n"
    assert "stale" not in text


def test_a_readme_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        module.with_readme_table("# no table here\n")


def test_without_arguments_the_table_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert module.main([]) == 0
    assert capsys.readouterr().out == module.readme_table()


def declared_fields(kind: type) -> set[str]:
    return {f.name for f in dataclasses.fields(kind) if module._DECLARED in f.metadata}


def test_every_attribute_is_declared_once() -> None:
    """Only the group `files` and the derived `ignored_variables` are not settings of their own."""
    assert declared_fields(Settings) == {f.name for f in dataclasses.fields(Settings)} - {
        "files",
        "ignored_variables",
    }
    assert declared_fields(Files) == {f.name for f in dataclasses.fields(Files)}
    assert len(DECLARED) == len(declarations())  # no variable declared twice


@pytest.mark.parametrize("variable", sorted(DECLARED))
def test_each_variable_reaches_its_attribute(variable: str) -> None:
    """A value unlike the default either changes the settings or is refused naming the variable."""
    try:
        changed = Settings.from_env({variable: "x9"})
    except SettingsError as exc:
        assert exc.variable == variable
        assert exc.value == "x9"
    else:
        assert changed != Settings()


def test_public_shows_exactly_what_config_showed() -> None:
    assert set(Settings.from_env({}).public()) == PUBLIC_KEYS
    json.dumps(Settings.from_env({"WHITE_LIST": "a|b", "NICE": "5", "STATE_DB": "/x.db"}).public())


def test_public_values_are_plain() -> None:
    public = Settings.from_env(
        {"WHITE_LIST": "a|b,c", "LISTEN_ADDRESS": "127.0.0.1:9", "MODE": "kill"}
    ).public()
    assert public["white_list"] == ["a|b", "c"]
    assert public["listen_address"] == "127.0.0.1:9"
    assert public["mode"] == "KILL"
    assert public["state_db"] == "state/detections.db"
    assert public["nice"] is None
    assert public["api_token_set"] is False


@pytest.mark.parametrize("secret", [d for d in declarations() if d.secret], ids=lambda d: d.variable)
def test_secrets_never_show(secret: Declared) -> None:
    value = "s3cret-Value-42"
    settings = Settings.from_env({secret.variable: value})
    assert value not in repr(settings)
    assert value not in json.dumps(settings.public())
    assert value not in module.readme_table()


def test_api_token_is_the_secret() -> None:
    assert [d.variable for d in declarations() if d.secret] == ["API_TOKEN"]
    assert Settings.from_env({"API_TOKEN": "t0ken"}).api_token == "t0ken"


@pytest.mark.parametrize(("value", "seconds"), [("", None), ("0", None), ("2500000", 2.5)])
def test_the_systemd_watchdog_is_read_in_seconds(value: str, seconds: float | None) -> None:
    assert Settings.from_env({"WATCHDOG_USEC": value}).watchdog_s == seconds


def test_the_systemd_notify_socket_is_kept_as_given() -> None:
    assert (
        Settings.from_env({"NOTIFY_SOCKET": "@/org/systemd/notify"}).notify_socket == "@/org/systemd/notify"
    )
    assert Settings.from_env({}).notify_socket is None
