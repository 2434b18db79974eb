"""`energyhub simulate`, `energyhub record` and `energyhub replay`."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from energyhub.cli_support import console, fail, run_async, settings_or_exit
from energyhub.clock import SPEED_MAX, SPEED_MIN
from energyhub.csv_columns import rows_refused
from energyhub.errors import EnergyhubError
from energyhub.mqtt import check_topic_filter, check_topic_prefix
from energyhub.sites import SiteFile, load_site
from simulators.counters import CounterLocator
from simulators.durations import (
    default_start,
    latest_first_us,
    latest_start_us,
    parse_duration_s,
    parse_timestamp,
)
from simulators.errors import SimulatorInputError
from simulators.faults import FaultSpec
from simulators.feeds import feed_records
from simulators.mqtt import MqttUrl
from simulators.readings_csv import read_csv
from simulators.record import Record, RecordLimits, read_records, record
from simulators.replay import ReplayOptions, replay
from simulators.simulate import SimulationOptions, SimulationSummary, simulate
from simulators.sites import select_sites

MqttUrlOption = Annotated[
    str,
    typer.Option(
        "--mqtt-url",
        envvar="ENERGYHUB_MQTT_URL",
        help="Broker URL, e.g. mqtt://user:password@host:1883.",
    ),
]
SeedOption = Annotated[
    int, typer.Option(min=0, help="Seed (≥ 0): the same seed gives the same output.")
]


def parse_speed(text: str) -> float | None:
    """`max` (None: as fast as the broker takes it) or simulated seconds per wall second."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not SPEED_MIN <= speed <= SPEED_MAX:  # 1e-300 overflowed the start; inf is 'max'
        raise SimulatorInputError(
            f"--speed: expected a number from {SPEED_MIN:g} to {SPEED_MAX:g} or 'max', got {text!r}"
        )
    return speed


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on the console (hidden when it is not a terminal); yields `update`."""
    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def exits_on_bad_input() -> Iterator[None]:
    """energyhub's own errors become a one-line message and exit status 2, never a traceback."""
    try:
        yield
    except EnergyhubError as exc:
        raise fail(str(exc)) from None


def _topic_prefix(prefix: str) -> str:
    try:
        return check_topic_prefix(prefix)
    except ValueError as exc:
        raise SimulatorInputError(f"--prefix: {exc}, got {prefix!r:.120}") from None


def _ingest_takes(start: str, options: SimulationOptions) -> None:
    """SimulatorInputError naming `--start` when a reading of the run would be further ahead of
    when it is published than the ingest takes (a start near 2200, or a fast run into the
    future): the ingest would refuse it as `future`."""
    skew_s = settings_or_exit().ingest_max_future_skew_s
    latest_us = latest_start_us(
        time.time_ns() // 1000, options.steps, options.step_s, options.speed, skew_s
    )
    if round(options.start.timestamp() * 1e6) > latest_us:
        latest = datetime.fromtimestamp(latest_us // 1_000_000, options.site.tz)
        raise SimulatorInputError(
            f"--start: the run's readings would be stamped more than {skew_s:g} s after they are "
            f"published, which the ingest refuses (ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S); the "
            f"latest start for this --duration, --step and --speed is {latest.isoformat()}, "
            f"got {start!r}"
        )


def _replay_ingest_takes(
    start: str, records: list[Record], speed: float | None, site: SiteFile
) -> None:
    """SimulatorInputError naming `--start` when a feed reading would be further ahead of when
    the replay publishes it than the ingest takes (a start in the future, or a fast replay into
    it): the ingest would refuse it as `future`. A replay publishes each reading (its stamp − the
    first's)/speed after it begins."""
    skew_s = settings_or_exit().ingest_max_future_skew_s
    first, last = records[0].t, records[-1].t
    latest_us = latest_first_us(time.time_ns() // 1000, last - first, speed, skew_s)
    if round(first * 1e6) > latest_us:
        latest = datetime.fromtimestamp(latest_us // 1_000_000, site.tz)
        raise SimulatorInputError(
            f"--start: the replay's readings would be stamped more than {skew_s:g} s after they "
            f"are published, which the ingest refuses (ENERGYHUB_INGEST_MAX_FUTURE_SKEW_S); for "
            f"this --duration and --speed its first reading can be stamped {latest.isoformat()} "
            f"at the latest, got {start!r}"
        )


def _print_simulation(summary: SimulationSummary, options: SimulationOptions) -> None:
    rate = summary.published / summary.wall_s if summary.wall_s else 0.0
    console.print(
        f"published {summary.published:,} messages ({_counts(summary.messages)}) for "
        f"{summary.steps:,} steps of {options.step_s:g} s from {options.start.isoformat()} "
        f"in {summary.wall_s:.1f} s ({rate:,.0f} msg/s)",
        highlight=False,
    )
    console.print(
        f"setpoints: {_counts(summary.setpoints)}; events: {_counts(summary.events)}",
        highlight=False,
    )
    if summary.curtailed_kwh > 0 or summary.throttled_kwh > 0:
        console.print(
            f"export limits held: {summary.curtailed_kwh:,.0f} kWh of PV and wind curtailed, "
            f"{summary.throttled_kwh:,.0f} kWh of CHP and fuel cell output turned down",
            highlight=False,
        )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n:,} {name}" for name, n in sorted(counter.items()) if n) or "none"


def simulate_command(
    site: Annotated[Path, typer.Option("--site", help="Site file (YAML).")],
    start: Annotated[
        str | None, typer.Option(help="First step (RFC 3339); default: the run ends about now.")
    ] = None,
    duration: Annotated[str, typer.Option(help="Simulated time, e.g. 24h, 7d.")] = "24h",
    step: Annotated[str, typer.Option(help="Step between readings, e.g. 1min, 15min.")] = "1min",
    speed: Annotated[str, typer.Option(help="Simulated seconds per second, or 'max'.")] = "3600",
    seed: SeedOption = 0,
    mqtt_url: MqttUrlOption = "mqtt://127.0.0.1:1883",
    prefix: Annotated[str, typer.Option(help="Root of the energyhub topics.")] = "energyhub",
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Simulate only these park/building ids.")
    ] = None,
    setpoint_hold: Annotated[
        str, typer.Option(help="How long a setpoint holds without a newer one.")
    ] = "1h",
    reset_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Chance per step that a counter resets.")
    ] = 1e-5,
    modbus: Annotated[
        bool,
        typer.Option(
            "--modbus/--no-modbus",
            help="Serve meters with `modbus:` from the site's Modbus TCP gateways (host, port).",
        ),
    ] = False,
) -> None:
    """Publish a virtual park's meters, sensors and devices; follow setpoints it receives."""
    with exits_on_bad_input():
        site_file = select_sites(load_site(site), only or [])
        step_s = parse_duration_s(step, "--step")
        duration_s = parse_duration_s(duration, "--duration")
        pace = parse_speed(speed)
        first = (
            parse_timestamp(start, site_file.tz)
            if start
            else default_start(datetime.now(site_file.tz), duration_s, step_s, pace)
        )
        options = SimulationOptions(
            site_file,
            first.astimezone(site_file.tz),
            duration_s,
            step_s,
            pace,
            seed,
            MqttUrl.parse(mqtt_url),
            _topic_prefix(prefix),
            parse_duration_s(setpoint_hold, "--setpoint-hold"),
            reset_rate,
            modbus=modbus,
        )
        if start:  # the default start ends the run about now
            _ingest_takes(start, options)
        with progress_bar("simulating", options.steps) as update:
            summary = run_async(simulate(options, update))
        _print_simulation(summary, options)


def record_command(
    out: Annotated[Path, typer.Option("--out", help="JSON Lines file to write.")],
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="Topic filter (repeatable).")
    ] = None,
    mqtt_url: MqttUrlOption = "mqtt://127.0.0.1:1883",
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many.")] = None,
    duration: Annotated[str | None, typer.Option(help="Stop after this long, e.g. 10min.")] = None,
    idle: Annotated[
        str | None, typer.Option(help="Stop after this long without a message, once one came.")
    ] = None,
) -> None:
    """Record MQTT traffic (topic, payload, receive time) to JSON Lines; Ctrl-C stops."""
    with exits_on_bad_input():
        limits = RecordLimits(
            count,
            parse_duration_s(duration, "--duration") if duration else None,
            parse_duration_s(idle, "--idle") if idle else None,
        )
        filters = topic or ["energyhub/#"]
        for topic_filter in filters:
            try:
                check_topic_filter(topic_filter)
            except ValueError as exc:
                raise SimulatorInputError(f"--topic: {exc}, got {topic_filter!r:.120}") from None
        with progress_bar("recording", count) as update:
            written = run_async(record(MqttUrl.parse(mqtt_url), filters, out, limits, update))
        console.print(
            f"recorded {written:,} messages from {', '.join(filters)} to {out}", highlight=False
        )


def replay_command(
    file: Annotated[Path | None, typer.Argument(help="Record file (JSON Lines).")] = None,
    speed: Annotated[str, typer.Option(help="Recorded seconds per second, or 'max'.")] = "1",
    faults: Annotated[
        str, typer.Option(help="e.g. drop=0.01,duplicate=0.01,reorder=0.05,delay=2s,garbage=0.001")
    ] = "",
    fault_log: Annotated[
        Path | None, typer.Option(help="Write what was injected here (JSON Lines).")
    ] = None,
    seed: SeedOption = 0,
    mqtt_url: MqttUrlOption = "mqtt://127.0.0.1:1883",
    site: Annotated[
        Path | None, typer.Option(help="Site file: its energy meters count as counters; feeds.")
    ] = None,
    feed: Annotated[
        list[str] | None,
        typer.Option(help="Replay a measured feed onto a meter: SITE/METER=SOURCE (repeatable)."),
    ] = None,
    readings: Annotated[
        Path | None,
        typer.Option(help="Replay meter readings from a CSV file (site,meter,ts,value); --site."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Feeds: first timestamp (default: the feeds end now).")
    ] = None,
    duration: Annotated[str, typer.Option(help="Feeds: how much of each to replay.")] = "7d",
    prefix: Annotated[
        str, typer.Option(help="Feeds and --readings: root of the energyhub topics.")
    ] = "energyhub",
) -> None:
    """Republish a recording (or measured feeds) with faults injected and logged."""
    with exits_on_bad_input():
        site_file = load_site(site) if site else None
        given = {
            "a record FILE": file is not None,
            "--feed": bool(feed),
            "--readings": readings is not None,
        }
        sources = [name for name, present in given.items() if present]
        if len(sources) > 1:
            raise SimulatorInputError(f"give only one of {', '.join(sources)}")
        refused: list[str] = []
        if file is not None:
            records = read_records(file)
        elif readings is not None and site_file is not None:
            if start is not None:
                raise SimulatorInputError(
                    "--start places --feed mappings; --readings go out at their own ts"
                )
            parsed = read_csv(site_file, readings, _topic_prefix(prefix))
            records, refused = parsed.records, parsed.errors
            if not records:
                raise SimulatorInputError(
                    rows_refused(refused, "no reading to replay") if refused
                    else f"{readings}: no reading in it (the header is site,meter,ts,value)"
                )  # fmt: skip
        elif feed and site_file is not None:
            first = parse_timestamp(start, site_file.tz) if start else None
            duration_s = parse_duration_s(duration, "--duration")
            records = feed_records(site_file, feed, first, duration_s, _topic_prefix(prefix))
            if start is not None:
                _replay_ingest_takes(start, records, parse_speed(speed), site_file)
        else:
            raise SimulatorInputError(
                "give a record FILE, or --feed mappings or --readings with --site"
            )
        options = ReplayOptions(
            MqttUrl.parse(mqtt_url),
            parse_speed(speed),
            FaultSpec.parse(faults),
            seed,
            fault_log,
            CounterLocator(site_file),
        )
        with progress_bar("replaying", len(records)) as update:
            summary = run_async(replay(records, options, update))
        console.print(
            f"sent {summary.sent:,} messages for {summary.records:,} records "
            f"in {summary.wall_s:.1f} s; "
            f"faults: {_counts(summary.faults)}; reconnects: {summary.reconnects}"
            + (f"; fault log: {fault_log}" if fault_log else ""),
            highlight=False,
        )
        if refused:
            raise SimulatorInputError(rows_refused(refused, "the other readings replayed"))
