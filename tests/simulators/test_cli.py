"""Bad input to simulate, record and replay: one clear line on stderr, exit status 2."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from energyhub.cli import app
from simulators.record import Record, read_records
from tests.simulators.conftest import SITE_FILE

runner = CliRunner()


@pytest.fixture
def record_file(tmp_path: Path) -> Path:
    path = tmp_path / "ok.jsonl"
    path.write_text('{"t": 1.0, "topic": "a/b", "payload": "{}"}\n')
    return path


def _bad_input(tmp_path: Path, record_file: Path) -> dict[str, list[str]]:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"t": 1.0, "topic": "a/b", "payload": "{}"}\nnot json\n')
    site = str(SITE_FILE)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(SITE_FILE.read_bytes() + b"# caf\xe9\n")
    return {
        "no such site file": ["simulate", "--site", str(tmp_path / "none.yaml")],
        "unknown building": ["simulate", "--site", site, "--only", "b99"],
        "bad duration": ["simulate", "--site", site, "--duration", "forever"],
        "bad speed": ["simulate", "--site", site, "--speed", "fast"],
        "bad start": ["simulate", "--site", site, "--start", "yesterday"],
        "bad broker url": ["simulate", "--site", site, "--mqtt-url", "http://x"],
        "broker down": ["simulate", "--site", site, "--mqtt-url", "mqtt://127.0.0.1:9"],
        "malformed faults": ["replay", str(record_file), "--faults", "drop=lots"],
        "unknown fault": ["replay", str(record_file), "--faults", "melt=0.1"],
        # 1e-300 overflowed the start ("Python int too large"); inf is 'max'
        "a speed beyond the clock": ["simulate", "--site", site, "--speed", "1e-300"],
        "an infinite replay speed": ["replay", str(record_file), "--speed", "inf"],
        "a fault given twice": ["replay", str(record_file), "--faults", "drop=0.1,drop=0.5"],
        "missing record file": ["replay", str(tmp_path / "none.jsonl")],
        "broken record file": ["replay", str(broken)],
        "unknown feed meter": ["replay", "--site", site, "--feed", "office/nope=bdew:g25"],
        "unknown feed site": ["replay", "--site", site, "--feed", "b99/main=bdew:g25"],
        "unknown feed source": ["replay", "--site", site, "--feed", "office/main=csv:x"],
        "feed without site": ["replay", "--feed", "office/main=bdew:g25"],
        "record to a folder": ["record", "--out", str(tmp_path), "--count", "1"],
        # were tracebacks: an OverflowError, a year the calendar cannot hold, a UnicodeDecodeError
        "a duration past the calendar": ["simulate", "--site", site, "--duration", "99999999999d"],
        "a start in year 1": ["simulate", "--site", site, "--start", "0001-01-01T00:00:00+14:00"],
        "a non-UTF-8 site file": ["simulate", "--site", str(latin1)],
        # was a ValueError traceback from urlsplit
        "a broker url with an unclosed bracket": [
            "simulate",
            "--site",
            site,
            "--mqtt-url",
            "mqtt://[::1",
        ],
        "record from an unclosed bracket": [
            "record",
            "--out",
            str(tmp_path / "r.jsonl"),
            "--mqtt-url",
            "mqtt://u:pw@[::1",
        ],
    }


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, record_file: Path) -> None:
    for name, args in _bad_input(tmp_path, record_file).items():
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output, name
        assert "error" in result.output.lower(), (name, result.output)
        message = result.output.strip().splitlines()
        assert len(message) <= 3, (name, result.output)  # one line; wrapped by width at most


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("2026-03-29T02:30:00", "does not exist in Europe/Berlin (the clocks skip it)"),
        ("2026-10-25T02:30:00", "occurs twice in Europe/Berlin (the clocks go back)"),
    ],
)
def test_a_local_start_the_clocks_skip_or_repeat_is_named(
    tmp_path: Path, start: str, message: str
) -> None:
    """It was read silently: a skipped 02:30 as 02:30+01:00 (03:30 on the clocks), a repeated
    one as its first pass."""
    berlin = tmp_path / "berlin.yaml"
    berlin.write_text(
        SITE_FILE.read_text().replace("timezone: Asia/Shanghai", "timezone: Europe/Berlin")
    )
    assert "Europe/Berlin" in berlin.read_text()
    result = runner.invoke(app, ["simulate", "--site", str(berlin), "--start", start])
    assert result.exit_code == 2, result.output
    assert f"--start: {start} {message}: give its UTC offset" in " ".join(result.output.split())


REFUSED_AHEAD = (
    "--start: the run's readings would be stamped more than 300 s after they are published, "
    "which the ingest refuses (ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S); the latest start for this "
    "--duration, --step and --speed is "
)


@pytest.mark.parametrize(
    ("start", "args"),
    [
        # took any start before 2200, and a run from it crossed 2200: all refused as `future`
        ("2199-12-31T23:00:00+00:00", ["--duration", "2h", "--speed", "max"]),
        # 24 simulated hours at 3600 s/s from an hour ago end 23 hours ahead of the wall clock
        ("an hour ago", ["--duration", "24h"]),
    ],
)
def test_a_start_whose_readings_the_ingest_refuses_is_named(
    prefix: str, start: str, args: list[str]
) -> None:
    if start == "an hour ago":  # made here: every xdist worker must collect the same ids
        start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    site = str(SITE_FILE)
    command = ["simulate", "--site", site, "--only", "lab", "--prefix", prefix, "--start", start]
    result = runner.invoke(app, [*command, *args])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert REFUSED_AHEAD in message and message.endswith(f"got '{start}'"), message


@pytest.mark.parametrize(
    ("line", "named"),
    [
        # the broker closed the connection on publishing these: "closed the connection"
        ('{"t": 1.0, "topic": "a/#", "payload": "x"}', "topic must hold no '+', '#'"),
        ('{"t": 1.0, "topic": "a/+/b", "payload": "x"}', "got 'a/+/b'"),
        # Mosquitto closed the connection on these too ("Connection reset by peer"), naming
        # neither record nor topic, and the good records after them were never sent
        ('{"t": 1.0, "topic": "a/\\u0001b", "payload": "x"}', "or a control character"),
        ('{"t": 1.0, "topic": "a/\\u001bb", "payload": "x"}', "got 'a/\\x1bb'"),
        ('{"t": 1.0, "topic": "a/\\u0085b", "payload": "x"}', "got 'a/\\x85b'"),
        # struct.error traceback at the publish: MQTT gives a topic two bytes of length
        (
            '{"t": 1.0, "topic": "' + "é" * 32_768 + '", "payload": "x"}',
            "topic must be at most 65,535 bytes of UTF-8 (MQTT's limit), got 65,536",
        ),
        # replay waited 3 million years for this record at --speed 1
        ('{"t": 99999999999999, "topic": "a/b", "payload": "x"}', "t must be epoch"),
        (
            '{"t": -1e14, "topic": "a/b", "payload": "x"}',
            "from 1970 to 2200, got -100000000000000.0",
        ),
        # the first instant of 2200: past the years stored times take (energyhub.bounds)
        ('{"t": 7258118400, "topic": "a/b", "payload": "x"}', "from 1970 to 2200, got 7258118400"),
    ],
)
def test_a_record_the_broker_or_the_clock_cannot_take_is_named(
    tmp_path: Path, line: str, named: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t": 1.0, "topic": "a/b", "payload": "{}"}\n' + line + "\n")
    result = runner.invoke(app, ["replay", str(path), "--speed", "1", "--mqtt-url", "mqtt://x:9"])
    assert result.exit_code == 2, result.output
    assert f"{path} record 2: " in result.output
    assert named in result.output.replace("\n", "")


@pytest.mark.parametrize(
    ("line", "named"),
    [
        # replayed at the last t given, as every parser keeps it, unseen
        (
            '{"t": 1.0, "topic": "a/b", "payload": "x", "t": 9e9}',
            "line 2: key 't' is given twice in one JSON object",
        ),
        ('{"t": 1.0, "topic": "a/b", "topic": "a/c", "payload": "x"}', "line 2: key 'topic'"),
        # sent at 1970-01-01T00:00:01
        ('{"t": true, "topic": "a/b", "payload": "x"}', "record 2: expected t (epoch seconds)"),
    ],
)
def test_a_record_that_says_two_things_is_named(tmp_path: Path, line: str, named: str) -> None:
    path = tmp_path / "twice.jsonl"
    path.write_text('{"t": 1.0, "topic": "a/b", "payload": "{\\"a\\": 1}"}\n' + line + "\n")
    result = runner.invoke(app, ["replay", str(path), "--speed", "1", "--mqtt-url", "mqtt://x:9"])
    assert result.exit_code == 2, result.output
    assert f"{path} {named}" in " ".join(result.output.split())


def test_a_record_file_with_a_byte_order_mark_reads_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"t": 1.0, "topic": "a/b", "payload": "x"}\r\n')
    assert read_records(path) == [Record(1.0, "a/b", b"x")]


def test_a_broker_url_that_does_not_parse_is_named_with_its_password_masked(tmp_path: Path) -> None:
    out = str(tmp_path / "r.jsonl")
    result = runner.invoke(app, ["record", "--out", out, "--mqtt-url", "mqtt://u:pw@[::1"])
    assert result.exit_code == 2, result.output
    assert "--mqtt-url: expected mqtt://" in result.output
    assert "got 'mqtt://u:***@[::1' (Invalid IPv6 URL)" in result.output


def test_simulate_command_prints_a_summary(prefix: str) -> None:
    result = runner.invoke(
        app,
        ["simulate", "--site", str(SITE_FILE), "--duration", "10min", "--speed", "max",
         "--prefix", prefix, "--start", "2025-07-01T00:00:00+08:00"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "published 96 messages" in result.output.replace("\n", " ")


def test_an_enterprise_or_the_city_to_simulate_is_named_as_one(example_site_path: Path) -> None:
    """`--only acme-bio` said "no park or building 'acme-bio' in the site file", which names it;
    `--feed acme-bio/f3=...` said so too."""
    example = str(example_site_path)
    only = ["simulate", "--site", example, "--only", "acme-bio", "--only", "shanghai"]
    result = runner.invoke(app, only)
    assert result.exit_code == 2, result.output
    assert (
        "--only: 'acme-bio' is an enterprise (a tenant of building 'b01'); 'shanghai' is the city"
    ) in " ".join(result.output.split())
    feed = ["replay", "--site", example, "--feed", "acme-bio/f3=citylearn:Building_5"]
    result = runner.invoke(app, [*feed, "--mqtt-url", "mqtt://x:9"])
    assert result.exit_code == 2, result.output
    assert "--feed acme-bio/f3: 'acme-bio' is an enterprise (a tenant of building 'b01')" in (
        " ".join(result.output.split())
    )
