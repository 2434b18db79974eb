"""`energyhub demo` as a user runs it on a bare machine: no URLs configured, private PostgreSQL and
Mosquitto, the whole story in the summary, then the API until Ctrl-C, and nothing left running."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from energyhub.demo.services import CATCH_UP_TIMEOUT_S
from energyhub.store.embedded import free_port
from tests.support.broker import Broker

DEMO = [sys.executable, "-m", "energyhub", "demo"]
RUN_TIMEOUT_S = 300
SHARED_BROKER = os.environ.get("ENERGYHUB_MQTT_URL", "mqtt://127.0.0.1:1883")
PG_URL = re.compile(r"private PostgreSQL at postgresql://postgres@127\.0\.0\.1:(\d+)/")
MQTT_URL = re.compile(r"private Mosquitto at mqtt://127\.0\.0\.1:(\d+)")

pytestmark = pytest.mark.timed  # the demo must make a scheduler step per simulated quarter hour


def bare_env() -> dict[str, str]:
    """The environment without any ENERGYHUB_ setting: the demo must start its own services."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    env["COLUMNS"] = "220"
    return env


def run_demo(site_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`energyhub demo --no-serve` on `site_path`, to its end; its exit code is not checked."""
    return subprocess.run(
        [*DEMO, "--site", str(site_path), "--no-serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def private_ports(stdout: str) -> tuple[int, int]:
    pg, mqtt = PG_URL.search(stdout), MQTT_URL.search(stdout)
    assert pg and mqtt, stdout
    return int(pg.group(1)), int(mqtt.group(1))


def rows(stdout: str, title: str) -> dict[str, list[str]]:
    """The body rows of the table titled `title` (columns two or more spaces apart), by first cell."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if title in line) + 1
    while not lines[at].strip():
        at += 1
    if lines[at + 1].strip().startswith("───"):  # a header, then its rule
        at += 2
    found: dict[str, list[str]] = {}
    for line in lines[at:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        found[cells[0]] = cells[1:]
    return found


def number(cell: str) -> float:
    """A figure as the summary prints it (a true minus sign, thousands separated)."""
    return float(cell.replace(",", "").replace("\N{MINUS SIGN}", "-").rstrip("%"))


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def assert_nothing_left(pg_port: int, mqtt_port: int) -> None:
    """Neither private server runs or listens any more."""
    assert processes_mentioning(f" -p {pg_port} ") == []
    assert not listening(pg_port), (
        f"something still listens on the demo's PostgreSQL port {pg_port}"
    )
    assert not listening(mqtt_port), (
        f"something still listens on the demo's broker port {mqtt_port}"
    )


@pytest.mark.slow
def test_the_demo_tells_the_whole_story_and_leaves_nothing_running(
    example_site_path: Path,
) -> None:
    began = time.monotonic()
    done = run_demo(example_site_path, bare_env())
    seconds = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    out = done.stdout
    pg_port, mqtt_port = private_ports(out)
    assert_nothing_left(pg_port, mqtt_port)
    assert "b06 data-center" in out  # the site tree
    assert "history: 20,160 1-min steps" in out  # 14 days: what the forecasts learn from

    loads = rows(out, "load per park")
    assert set(loads) == {"expo", "lingang"}
    assert all(number(cells[0]) > 0 for cells in loads.values())  # electricity MWh
    assert "peak kW (1 h): the highest hour's mean; the billed peak is per 15 minutes" in out

    plans = rows(out, "vs the rule-based baseline")
    assert set(plans) == {"building", "park", "city"}
    assert [plans[level][:2] for level in ("building", "park", "city")] == [
        ["b01", "approved"],  # the demo's parks approve on solve; the city has no such policy
        ["expo", "approved"],
        ["shanghai", "draft"],
    ]
    for level, cells in plans.items():
        assert number(cells[2]) > 0, (level, cells)
        assert number(cells[3]) < 0, (level, cells)  # cheaper than the rule-based baseline
    assert "city central" in out

    actual = rows(out, "plan vs actual under the scheduler")
    assert set(actual) == {"expo", "lingang"}
    for site_id, cells in actual.items():
        assert int(cells[0]) == 96, (site_id, cells)  # every quarter hour of the day steered
        assert all(number(c) > 0 for c in cells[1:3]), (site_id, cells)  # metered, counterfactual
        assert re.fullmatch(r"\N{MINUS SIGN}?[\d,]+", cells[3]), (
            site_id,
            cells,
        )  # realized saved CNY, signed
    assert "counterfactual: the rule-based baseline re-run on the metered demand" in out
    sent = re.search(r"setpoints sent: expo ([\d,]+) \((\d+) plans\), lingang ([\d,]+)", out)
    assert sent and number(sent.group(1)) > 0 and int(sent.group(2)) >= 2, out
    assert number(sent.group(3)) > 0
    assert "the simulated devices took" in out

    ingest = rows(out, "ingest (MQTT")
    assert number(ingest["rejected"][0]) == 0
    assert number(ingest["duplicates (already stored)"][0]) == 0
    assert number(ingest["readings stored"][0]) > 169_920  # the history's, then the live day's
    assert "--no-serve: the API was not started" in out and "admin key" not in out
    print(f"energyhub demo --no-serve: {seconds:.0f} s")


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)


@pytest.mark.slow
def test_serving_answers_until_ctrl_c_then_stops_everything(example_site_path: Path) -> None:
    port = free_port()
    args = ["--live-hours", "2", "--history-days", "2", "--port", str(port)]
    demo = subprocess.Popen(
        [*DEMO, "--site", str(example_site_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=bare_env(),
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    assert demo.stdout is not None and demo.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
    out: list[str] = []
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not any("Ctrl-C stops" in line for line in out):
            assert demo.poll() is None, "".join(out) + demo.stderr.read()
            assert time.monotonic() < deadline, "".join(out)
            try:
                out.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        text = "".join(out)
        key = re.search(r"admin key (ehk_\S+)", text)
        assert key and f"http://127.0.0.1:{port}/docs" in text
        assert f"http://127.0.0.1:{port}/ui" in text  # the plan review page
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["database_reachable"] and health.json()["broker_reachable"]
        sites = httpx.get(
            f"http://127.0.0.1:{port}/sites",
            headers={"Authorization": f"Bearer {key.group(1)}"},
            timeout=10,
        )
        assert sites.status_code == 200 and sites.json()["id"] == "shanghai"
        pg_port, mqtt_port = private_ports(text)
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    time.sleep(0.5)  # the reader thread drains the last lines
    while not lines.empty():
        out.append(lines.get())
    stderr = demo.stderr.read()
    assert "Traceback" not in stderr, stderr
    assert "stopped: the API, and the broker and database" in "".join(out)
    assert not listening(port)
    assert_nothing_left(pg_port, mqtt_port)


@pytest.mark.slow
def test_configured_urls_are_used_instead_of_private_services(
    example_site_path: Path, pg_url: str
) -> None:
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    env = bare_env() | {
        "ENERGYHUB_DB_URL": pg_url,
        "ENERGYHUB_MQTT_URL": SHARED_BROKER,
        "ENERGYHUB_MQTT_TOPIC_PREFIX": prefix,
        "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": prefix,
    }
    done = run_demo(example_site_path, env, "--live-hours", "2", "--history-days", "2")
    assert done.returncode == 0, done.stderr
    assert "private" not in done.stdout
    assert "PostgreSQL: ENERGYHUB_DB_URL" in done.stdout
    assert "MQTT broker: ENERGYHUB_MQTT_URL" in done.stdout
    with psycopg.connect(pg_url) as conn:
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()
        sent = conn.execute("SELECT count(*) FROM setpoints").fetchone()
    ingest = rows(done.stdout, "ingest (MQTT")
    assert readings and readings[0] == number(ingest["readings stored"][0])
    # the machine's Mosquitto has the stock queue (1,000 messages a client): the history is held
    # back to what the ingest keeps up with, so it loses nothing there either
    assert number(ingest["messages received"][0]) == number(
        ingest["messages published (park, scheduler)"][0]
    )
    assert "dropped" not in done.stdout
    assert sent and sent[0] > 0


@pytest.mark.slow
def test_messages_a_broker_drops_are_reported_not_waited_for(
    example_site_path: Path, pg_url: str, tmp_path: Path
) -> None:
    """A broker that queues 10 messages for a subscriber drops part of the history burst: the
    demo says how many, and does not wait out its catch-up timeout for them."""
    broker = Broker(tmp_path / "mosquitto")
    config = broker.config.read_text().replace(
        "max_queued_messages 1000000", "max_queued_messages 10"
    )
    assert "max_queued_messages 10\n" in config  # the production config's line was found
    broker.config.write_text(config)
    broker.start()
    env = bare_env() | {
        "ENERGYHUB_DB_URL": pg_url,
        "ENERGYHUB_MQTT_URL": broker.url,
        "ENERGYHUB_INGEST_RECEIVE_MAXIMUM": "20",
    }
    started = time.monotonic()
    try:
        done = run_demo(example_site_path, env, "--live-hours", "1", "--history-days", "2")
    finally:
        broker.stop()
    assert done.returncode == 0, done.stderr
    ingest = rows(done.stdout, "ingest (MQTT")
    published = number(ingest["messages published (park, scheduler)"][0])
    received = number(ingest["messages received"][0])
    assert received < published
    assert f"the broker dropped {published - received:,.0f} of {published:,.0f} messages" in (
        " ".join(done.stdout.split())
    )
    assert time.monotonic() - started < CATCH_UP_TIMEOUT_S
