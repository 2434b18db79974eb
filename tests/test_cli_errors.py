"""Bad arguments and bad settings, drawn by Hypothesis, against every command as a user runs it
(the `energyhub` entry point in this process): exit 2, one line on stderr, never a traceback."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energyhub.cli import app
from energyhub.config import EXAMPLE_SITE_FILE

SITE = str(EXAMPLE_SITE_FILE)
COMMANDS: list[list[str]] = [
    ["api"],
    ["db", "migrate"],
    ["db", "maintain"],
    ["sites", "check", SITE],
    ["sites", "load", SITE],
    ["sites", "schema"],
    ["plans", "list"],
    ["plans", "show", "1"],
    ["keys", "list"],
    ["keys", "revoke", "1"],
    ["ingest"],
    ["scheduler"],
    ["alerts"],
    ["carbon", "report", "--site", "b01", "--period", "2026"],
    ["demo", "--no-serve"],
    ["plan", "--site", SITE],
]
"""Commands with arguments that parse: with a bad setting each must stop before it runs."""

BAD_SETTINGS: dict[str, list[str]] = {
    "ENERGYHUB_DB_URL": [
        "localhost:5432/energyhub",
        "postgresql://u:pw@h:port/db",
        "postgresql://u:pw@h:99999/db",
        "mysql://u@h/db",
        "127.0.0.1",
        "postgresql://u:pw@h/db?bogus=1",
        "postgresql://u:pw@[::1/db",
        "host=h password=pw bogus=1",
    ],
    "ENERGYHUB_MQTT_URL": ["localhost:1883", "http://h:1883", "mqtt://:1883", "mqtt://h:x"],
    "ENERGYHUB_ALERTS_WEBHOOK_URL": ["example.org/hook", "ftp://h/x", "https://"],
    "ENERGYHUB_DB_POOL_MAX": ["0", "many", "1e400", "10001"],
    "ENERGYHUB_DB_CONNECT_TIMEOUT_S": ["inf", "nan", "-1", "1e9"],
    "ENERGYHUB_API_PORT": ["0", "65536", "http"],
    "ENERGYHUB_API_MAX_RANGE_DAYS": ["Infinity", "1e308"],
    "ENERGYHUB_RETENTION_DAYS": ["1e400", "99999999999999999999"],
    "ENERGYHUB_API_CORS_ORIGINS": ["https://a.example", "[1", '["a.example"]', '["https://a/x"]'],
    "ENERGYHUB_SCHEDULER_LATITUDE_DEG": ["91", "NaN"],
    "ENERGYHUB_TIMESCALEDB": ["maybe"],
    # durations past what timedelta and datetime hold: OverflowError in the scheduler's first
    # re-plan and in `forecast backtest`, the moment they were turned into time
    "ENERGYHUB_SCHEDULER_PERIOD_MIN": ["1e23"],
    "ENERGYHUB_SCHEDULER_FORECAST_MAX_SILENCE_H": ["99999999999999999999999"],
    "ENERGYHUB_ALERTS_ROLLUP_GRACE_S": ["1e300"],
    "ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S": ["1e20"],
    # a wildcard or control character in the prefix: the broker dropped every role's connection
    # as a malformed packet, and nothing named the setting
    "ENERGYHUB_MQTT_TOPIC_PREFIX": ["a/#", "site+1", "", "a//b", "a\x01"],
    # the client ids and the ingest's shared-subscription group: 70,000 characters were a
    # traceback (struct.error packing the CONNECT), a control character a connection the broker
    # closed without a word of which setting, '/' or '+' a share name MQTT forbids
    "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": ["a" * 2000, "a\x01b", "", "site/a", "grp+1", "a#"],
}
"""Values of the wrong form for each variable; passwords among them must not be printed."""

BAD_ARGUMENTS: list[list[str]] = [
    ["nope"],
    ["sites", "check"],
    ["sites", "nope"],
    ["api", "--port", "99999"],
    ["api", "--port", "x"],
    ["api", "--workers", "0"],
    ["plans", "list", "--limit", "0"],
    ["plans", "show", "x"],
    ["plans", "show", "0"],
    ["keys", "revoke", "-1"],
    ["keys", "create", "--role", "admin"],
    ["ingest", "--workers", "1000"],
    ["demo", "--live-hours", "inf"],
    ["carbon", "report", "--period", "2026"],
    ["simulate", "--site", SITE, "--seed", "-1"],  # was numpy's ValueError, a traceback
    [
        "plan",
        "--site",
        SITE,
        "--inputs",
        SITE,
        "--level",
        "park",
        "--id",
        "expo",
        "--workers",
        "100000",
    ],
]


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("ENERGYHUB_")}
    for name in saved:
        del os.environ[name]
    os.environ.update(variables)
    try:
        yield
    finally:
        for name in [k for k in os.environ if k.startswith("ENERGYHUB_")]:
            del os.environ[name]
        os.environ.update(saved)


def run(args: list[str], variables: dict[str, str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `energyhub ARGS` with exactly these settings."""
    out, err = io.StringIO(), io.StringIO()
    with environment(variables), redirect_stdout(out), redirect_stderr(err):
        try:
            app(args, prog_name="energyhub")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


@st.composite
def bad_setting(draw: st.DrawFn) -> tuple[str, str]:
    variable = draw(st.sampled_from(sorted(BAD_SETTINGS)))
    return variable, draw(st.sampled_from(BAD_SETTINGS[variable]))


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from(COMMANDS), setting=bad_setting())
def test_a_bad_setting_stops_every_command_in_one_line(
    command: list[str], setting: tuple[str, str]
) -> None:
    variable, value = setting
    line = one_line_error(*run(command, {variable: value}))
    assert f"{variable}=" in line
    assert "expected" in line or "should" in line, line
    assert ":pw@" not in line and "password=pw" not in line  # passwords are masked


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(args=st.sampled_from(BAD_ARGUMENTS), junk=st.text(max_size=8))
def test_a_bad_argument_is_one_line_naming_the_command(args: list[str], junk: str) -> None:
    line = one_line_error(*run([*args, *([junk] if junk and args == ["nope"] else [])], {}))
    assert line.startswith(f"error: energyhub{' ' + args[0] if args[0] != 'nope' else ''}")


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("ENERGYHUB_DB_URL", "localhost:5432/energyhub", "'localhost:5432/energyhub'"),
        ("ENERGYHUB_DB_URL", "postgresql://u:secret@h:x/db", "'postgresql://u:***@h:x/db'"),
        ("ENERGYHUB_MQTT_URL", "mqtt://u:secret@:1883", "'mqtt://u:***@:1883'"),
        ("ENERGYHUB_ALERTS_WEBHOOK_URL", "hooks.example/x", "'hooks.example/x'"),
    ],
)
def test_a_bad_url_names_variable_value_and_form(variable: str, value: str, shown: str) -> None:
    line = one_line_error(*run(["keys", "list"], {variable: value}))
    assert line.startswith(f"error: {variable}={shown}: expected "), line
    assert "secret" not in line


def test_good_settings_still_run_a_command() -> None:
    code, out, err = run(["sites", "check", SITE], {"ENERGYHUB_DB_URL": "postgresql://u@h/db"})
    assert code == 0, err
    assert "valid" in out


def test_every_setting_at_its_bound_still_makes_times() -> None:
    """Each duration setting at the largest value it takes: the scheduler's periods and the
    alerts' grace still add to a time (no OverflowError in a role long after it started)."""
    from datetime import UTC, datetime, timedelta

    from energyhub.config import Settings
    from energyhub.scheduler.replan import PlanningConfig

    largest: dict[str, object] = {}
    for name, field in Settings.model_fields.items():
        bound = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
        if field.annotation in (int, float):
            assert bound is not None, f"ENERGYHUB_{name.upper()} has no upper bound"
            largest[name] = bound
    settings = Settings(**largest)  # type: ignore[arg-type]
    config = PlanningConfig.of(settings)
    now = datetime(2199, 1, 1, tzinfo=UTC)
    durations = [config.period, config.horizon, config.history, config.soc_max_age]
    durations += [config.forecast.max_gap, config.forecast.max_silence]
    durations += [timedelta(seconds=settings.alerts_rollup_grace_s + settings.alerts_reload_s)]
    assert all(now - d < now + d for d in durations)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (
            ["keys", "create", "--role", "viewer", "--site", "expo", "--name", "\x1b[31mred"],
            "--name",
        ),
        (["plans", "approve", "1", "--by", "a\x1bb"], "--by"),
        (["plans", "reject", "1", "--reason", "x" * 201], "--reason"),
        (["carbon", "ledger", "reverse", "1", "--account", "b01", "--reason", "a\x07"], "--reason"),
        (
            [
                "carbon",
                "green",
                "retire",
                "1",
                "--site",
                "b01",
                "--period",
                "2026",
                "--reason",
                "r",
                "--by",
                "\x1b]0;owned\x07",
            ],
            "--by",
        ),
    ],
)
def test_free_text_options_refuse_control_characters(args: list[str], option: str) -> None:
    """`--by`, `--name`, `--reason` were stored as given: an escape sequence rewrote the terminal
    of whoever listed keys, plans or the ledger; the API refused the same text."""
    line = one_line_error(*run(args, {}))
    assert f"Invalid value for '{option}'" in line, line
    assert "must not contain control characters" in line or "at most 200 characters" in line


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["simulate", "--site", SITE, "--prefix", "a/#"], "--prefix: expected one or more topic"),
        (["replay", "--site", SITE, "--feed", "b01/main=bdew:h0", "--prefix", "+"], "--prefix: "),
        (["record", "--out", "r.jsonl", "--topic", "a/#/b"], "--topic: expected a topic filter"),
        (["record", "--out", "r.jsonl", "--topic", "a/b+"], "--topic: expected a topic filter"),
    ],
)
def test_topics_the_broker_would_refuse_are_named(args: list[str], shown: str) -> None:
    """The broker closed the connection ("malformed packet") and the message named no option."""
    line = one_line_error(*run(args, {}))
    assert line.startswith(f"error: {shown}"), line
    assert f"got {args[-1]!r}" in line


@pytest.mark.parametrize("prefix", ["energyhub/#", "a+b", "a\x1bb"])
def test_a_topic_prefix_the_broker_would_refuse_stops_the_ingest(prefix: str) -> None:
    line = one_line_error(*run(["ingest"], {"ENERGYHUB_MQTT_TOPIC_PREFIX": prefix}))
    assert line.startswith(f"error: ENERGYHUB_MQTT_TOPIC_PREFIX={prefix!r}: expected one or more")


@pytest.mark.parametrize("prefix", ["a" * 70_000, "a\x01b"])
def test_a_client_id_prefix_the_broker_would_refuse_stops_the_ingest(
    pg_url: str, prefix: str
) -> None:
    """`ingest` (a real database and Mosquitto) with 70,000 characters ended in `struct.error:
    'H' format requires 0 <= number <= 65535`; with a control character Mosquitto closed the
    connection and the error named no setting."""
    assert run(["db", "migrate"], {"ENERGYHUB_DB_URL": pg_url})[0] == 0
    assert run(["sites", "load", SITE], {"ENERGYHUB_DB_URL": pg_url})[0] == 0
    variables = {
        "ENERGYHUB_DB_URL": pg_url,
        "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": prefix,
        "ENERGYHUB_MQTT_URL": "mqtt://127.0.0.1:1883",
        "ENERGYHUB_MQTT_TOPIC_PREFIX": "hostile-client-id",
        "ENERGYHUB_INGEST_METRICS_PORT": "0",
    }
    line = one_line_error(*run(["ingest"], variables))
    assert line.startswith("error: ENERGYHUB_MQTT_CLIENT_ID_PREFIX="), line[:200]
    assert "expected" in line


@pytest.mark.parametrize("value", [":x:", ":thumbs_up:", "[/x]", "[bold]b"])
def test_an_echoed_value_is_shown_as_given(tmp_path: Path, value: str) -> None:
    """Rich read `:x:` in an echoed value as an emoji code (`no building '❌'`), and `plan`
    escaped its messages once more than `fail` does (`no building '\\[/x]'`): the error named a
    value the user never gave."""
    line = one_line_error(*run(["simulate", "--site", SITE, "--only", value], {}))
    assert line == f"error: --only: no park or building {value!r} in the site file", line
    inputs = tmp_path / "inputs.csv"
    inputs.write_text(
        "ts,b01:electricity_kw\n2026-12-07T00:00:00+08:00,1\n2026-12-07T01:00:00+08:00,1\n"
    )
    args = ["plan", "--site", SITE, "--inputs", str(inputs), "--level", "building", "--id", value]
    line = one_line_error(*run(args, {}))
    assert line == f"error: --id: no building {value!r} in the site file", line
