from pathlib import Path

import pytest

from energyhub.config import EXAMPLE_SITE_FILE, load_settings
from energyhub.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ENERGYHUB_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.db_url is None
    assert settings.timescaledb == "auto"
    assert settings.site_file == EXAMPLE_SITE_FILE
    assert EXAMPLE_SITE_FILE.exists()


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYHUB_DB_URL", "postgresql://u@h/db")
    monkeypatch.setenv("ENERGYHUB_RETENTION_DAYS", "30")
    settings = load_settings()
    assert settings.db_url == "postgresql://u@h/db"
    assert settings.retention_days == 30


def test_bad_value_names_the_variable_and_the_expected_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENERGYHUB_DB_POOL_MAX", "many")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "ENERGYHUB_DB_POOL_MAX='many'" in str(caught.value)
    assert "integer" in str(caught.value)


def test_a_pool_smaller_than_its_minimum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool took min(min, max) unsaid: ENERGYHUB_DB_POOL_MIN=20 with a maximum of 5 kept 5."""
    monkeypatch.setenv("ENERGYHUB_DB_POOL_MIN", "20")
    monkeypatch.setenv("ENERGYHUB_DB_POOL_MAX", "5")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "ENERGYHUB_DB_POOL_MAX='5': must be ≥ ENERGYHUB_DB_POOL_MIN (20), the connections kept open"
    )
    monkeypatch.setenv("ENERGYHUB_DB_POOL_MAX", "20")
    assert load_settings().db_pool_max == 20


def test_bad_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERGYHUB_TIMESCALEDB", "maybe")
    with pytest.raises(ConfigError, match=r"ENERGYHUB_TIMESCALEDB='maybe'.*'auto', 'require'"):
        load_settings()


def test_toml_file_below_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "energyhub.toml"
    toml.write_text('db_url = "postgresql://from-toml/db"\nretention_days = 90\n')
    monkeypatch.setenv("ENERGYHUB_CONFIG", str(toml))
    monkeypatch.setenv("ENERGYHUB_RETENTION_DAYS", "10")
    settings = load_settings()
    assert settings.db_url == "postgresql://from-toml/db"
    assert settings.retention_days == 10


def test_missing_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENERGYHUB_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"absent\.toml: no such file"):
        load_settings()


def test_a_toml_file_that_is_a_device_or_too_large(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ENERGYHUB_CONFIG=/dev/zero said "no such file"; a sparse 100 MB file was read whole."""
    monkeypatch.setenv("ENERGYHUB_CONFIG", "/dev/zero")
    with pytest.raises(ConfigError, match=r"^ENERGYHUB_CONFIG=/dev/zero: not a regular file$"):
        load_settings()
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as out:
        out.truncate(100 * 1024**2)
    monkeypatch.setenv("ENERGYHUB_CONFIG", str(huge))
    with pytest.raises(
        ConfigError, match=r"huge\.toml: larger than 64 MiB, the most a settings file may be"
    ):
        load_settings()


def test_unknown_toml_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "energyhub.toml"
    toml.write_text("db_ulr = 'x'\n")
    monkeypatch.setenv("ENERGYHUB_CONFIG", str(toml))
    with pytest.raises(ConfigError, match="ENERGYHUB_DB_ULR"):
        load_settings()


def test_the_readme_points_to_the_settings_reference() -> None:
    """Every setting is documented in docs/configuration.md, generated from Settings; its rows
    are checked in tests/docs/test_docs.py. The README links it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "(docs/configuration.md)" in readme


def test_the_intraday_correction_is_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from energyhub.scheduler.replan import PlanningConfig

    assert PlanningConfig.of(load_settings()).intraday_correction is True
    monkeypatch.setenv("ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION", "false")
    assert PlanningConfig.of(load_settings()).intraday_correction is False
    monkeypatch.setenv("ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION", "sometimes")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "ENERGYHUB_SCHEDULER_INTRADAY_CORRECTION='sometimes'" in str(caught.value)
    assert "boolean" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        # were "ENERGYHUB_DB_POOL_MIN='x': ..." though no such variable was set
        (b"db_pool_min = 'x'\n", "energyhub.toml: db_pool_min='x' (ENERGYHUB_DB_POOL_MIN): "),
        (b"db_ulr = 'x'\n", "energyhub.toml: db_ulr='x' (ENERGYHUB_DB_ULR): not a setting"),
        (
            b"[api]\nport = 1\n",
            "energyhub.toml: api=\"{'port': 1}\" (ENERGYHUB_API): not a setting",
        ),
        # were "Invalid statement (at line 1, column 1)" and a codec's "position 16"
        (b"\xef\xbb\xbfapi_port = 8001\n", "energyhub.toml: starts with a byte-order mark"),
        (b"log_level = 'caf\xe9'\n", "energyhub.toml: not UTF-8 text (byte 0xe9 at offset 16)"),
        # one setting twice in different case: pydantic-settings kept one of them silently
        (
            b"api_port = 8001\nAPI_PORT = 8002\n",
            "energyhub.toml: api_port and API_PORT are the same setting",
        ),
    ],
)
def test_a_bad_toml_file_names_the_file_and_its_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: bytes, named: str
) -> None:
    toml = tmp_path / "energyhub.toml"
    toml.write_bytes(text)
    monkeypatch.setenv("ENERGYHUB_CONFIG", str(toml))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert named in str(caught.value)
    assert str(caught.value).startswith(f"ENERGYHUB_CONFIG={toml}")


def test_a_variable_that_overrides_the_toml_file_is_named_as_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "energyhub.toml"
    toml.write_text("db_pool_min = 2\n")
    monkeypatch.setenv("ENERGYHUB_CONFIG", str(toml))
    monkeypatch.setenv("ENERGYHUB_DB_POOL_MIN", "y")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("ENERGYHUB_DB_POOL_MIN='y': ")
