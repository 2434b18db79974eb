"""bench/closed_loop.py's own arguments: a bad one is refused by name before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "closed_loop.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120
    )


def test_a_start_without_a_zone_is_refused() -> None:
    done = _run("--start", "2026-11-30T10:30", "--days", "1")
    assert done.returncode == 2
    assert "--start: give a time zone (e.g. +00:00), got '2026-11-30T10:30'" in done.stderr


def test_a_policy_the_site_file_refuses_is_named() -> None:
    done = _run("--co2-policy-pct", "-500", "--report-only")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "max_co2_vs_baseline_pct: must be ≥ -100, got -500.0" in done.stderr
