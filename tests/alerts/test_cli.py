"""`energyhub alerts` as an operator runs it: a process that opens alerts, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site

from .conftest import BROKER_HOST, BROKER_PORT, SITE, parse_site, wait_rows
from .test_live import collect

OFF = {"enabled": False}


def site_file(tmp_path: Path, b1_alerts: dict[str, Any]) -> Path:
    data = copy.deepcopy(SITE)
    data["city"]["parks"][0]["alerts"] = {"silence": OFF, "ingest": OFF}
    data["city"]["parks"][0]["buildings"][0]["alerts"] = b1_alerts
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def alerts_process(site: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    return subprocess.Popen(
        [sys.executable, "-m", "energyhub", "alerts", "--site", str(site)],
        env=environment | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # two processes of a few seconds each
async def test_alerts_command_opens_an_alert_and_stops_on_sigterm(
    pg_url: str, prefix: str, tmp_path: Path
) -> None:
    site = site_file(
        tmp_path,
        {"silence": {"meters": ["main"], "intervals": 4, "interval_s": 0.25}, "soc": OFF},
    )
    env = {
        "ENERGYHUB_DB_URL": pg_url,
        "ENERGYHUB_MQTT_URL": f"mqtt://{BROKER_HOST}:{BROKER_PORT}",
        "ENERGYHUB_MQTT_TOPIC_PREFIX": prefix,
        "ENERGYHUB_MQTT_CLIENT_ID_PREFIX": prefix,
        "ENERGYHUB_ALERTS_TICK_S": "0.1",
    }
    # A database without the schema: a one-line error, no traceback.
    unmigrated = alerts_process(site, env)
    _, err = unmigrated.communicate(timeout=60)
    assert unmigrated.returncode == 2, err
    assert "run `energyhub db migrate`" in err and "Traceback" not in err

    async with connect(pg_url) as conn:
        await migrate(conn)
        await sync_site(conn, parse_site(yaml.safe_load(site.read_text()), str(site)))
    heard: list[dict[str, Any]] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(f"{prefix}/p1/b1/alert", heard, ready))
    await asyncio.wait_for(ready.wait(), 10)
    process = alerts_process(site, env)
    try:
        rows = await wait_rows(pg_url, "silence", lambda r: len(r) == 1, timeout_s=30)
        for _ in range(100):
            if heard:
                break
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        listener.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Traceback" not in err and "alerts: 5 watches over 2 sites" in err
    assert rows[0][1:3] == ("b1", "main") and rows[0][4] is None
    assert [(m["event"], m["id"]) for m in heard] == [("opened", rows[0][0])]
    still = await wait_rows(pg_url, "silence", lambda r: len(r) == 1, timeout_s=1)
    assert still[0][4] is None  # the episode goes on: a restarted role resumes it, not closes it


def test_alerts_command_refuses_a_site_file_with_a_bad_rule(pg_url: str, tmp_path: Path) -> None:
    site = site_file(tmp_path, {"silence": {"meters": ["main", "ghost"]}})
    process = alerts_process(site, {"ENERGYHUB_DB_URL": pg_url})
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2 and "Traceback" not in err
    expected = "city.parks[0].buildings[0].alerts.silence.meters[1]: no meter 'ghost' in b1"
    assert expected in " ".join(err.split())
