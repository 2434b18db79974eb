"""Startup cost of the `energyhub` command: `energyhub --help` wall time (target ≤ 0.3 s) and an idle
ingest worker's resident memory (target ≤ 120 MB), each beside a baseline run in the same process:
`python -c pass` and, for the help, typer's own help renderer (`import typer.rich_utils`), the floor
any typer command pays; for the worker, an idle bare interpreter.

    flock /tmp/energyhub-bench.lock .venv/bin/python bench/startup.py [--rounds 9]

Needs PostgreSQL at ENERGYHUB_BENCH_PG_URL (default the local server) and Mosquitto at
127.0.0.1:1883 for the worker (`make services`); the worker runs in a database of its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("ENERGYHUB_BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
HELP_TARGET_S = 0.3
WORKER_TARGET_MB = 120.0
IDLE_S = 5.0


def run_once(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one process run to its end (the peak counts
    this script's own pages forked before the exec: it imports only the standard library here)."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {child.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def timings(
    commands: dict[str, list[str]], rounds: int
) -> dict[str, list[tuple[float, float, float]]]:
    """Each command `rounds` times, interleaved, so that the machine's load hits all alike."""
    found: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            found[name].append(run_once(argv))
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def idle_rss(argv: list[str], env: dict[str, str], ready: str | None) -> float:
    """Resident memory of a long-running process IDLE_S after it says `ready` (or starts)."""
    log = REPO / "bench" / f".startup-{uuid.uuid4().hex[:8]}.log"
    with log.open("w") as out:
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while ready and ready not in log.read_text():
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(argv)} did not get ready:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        time.sleep(IDLE_S)
        return rss_mb(child.pid)
    finally:
        child.terminate()
        child.wait(30)
        log.unlink()


def worker_rss() -> tuple[float, float]:
    """An idle ingest worker subscribed to the example site, and an idle bare interpreter."""
    import psycopg  # here: imported at the top, it would weigh on every child's peak RSS
    from psycopg import sql

    name = f"eh_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        env = {
            **os.environ,
            "ENERGYHUB_DB_URL": f"{ADMIN_URL.rpartition('/')[0]}/{name}",
            "ENERGYHUB_MQTT_URL": MQTT_URL,
            "ENERGYHUB_MQTT_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}",
            "ENERGYHUB_INGEST_METRICS_PORT": "0",
        }
        energyhub = [sys.executable, "-m", "energyhub"]
        for step in (
            ["db", "migrate"],
            ["sites", "load", str(REPO / "examples" / "expo-park.yaml")],
        ):
            subprocess.run([*energyhub, *step], env=env, check=True, capture_output=True)
        worker = idle_rss([*energyhub, "ingest"], env, ready="subscribed to")
        bare = idle_rss([sys.executable, "-c", "import time; time.sleep(600)"], env, ready=None)
        return worker, bare
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    python = sys.executable
    script = str(Path(python).with_name("energyhub"))
    site = str(REPO / "examples" / "expo-park.yaml")
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "import typer.rich_utils": [python, "-c", "import typer.rich_utils"],
        "energyhub --help": [script, "--help"],
        "energyhub sites check": [script, "sites", "check", site],
    }
    found = timings(commands, args.rounds)
    median = {name: statistics.median(w for w, _, _ in runs) for name, runs in found.items()}
    print(f"{args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'command':<26}{'wall median':>12}{'wall best':>11}{'CPU median':>12}{'peak RSS':>10}")
    for name, runs in found.items():
        print(
            f"{name:<26}{median[name]:>10.3f} s{min(w for w, _, _ in runs):>9.3f} s"
            f"{statistics.median(c for _, c, _ in runs):>10.3f} s"
            f"{max(r for _, _, r in runs):>7.0f} MB"
        )
    help_s = median["energyhub --help"]
    print(
        f"energyhub --help: {help_s:.3f} s median (target ≤ {HELP_TARGET_S} s) = "
        f"{help_s / median['python -c pass']:.1f}× `python -c pass`, "
        f"{help_s / median['import typer.rich_utils']:.2f}× typer's help renderer alone"
    )
    worker, bare = worker_rss()
    print(
        f"idle ingest worker: {worker:.0f} MB resident {IDLE_S:.0f} s after subscribing "
        f"(target ≤ {WORKER_TARGET_MB:.0f} MB) = {worker / bare:.1f}× an idle bare interpreter "
        f"({bare:.0f} MB)"
    )


if __name__ == "__main__":
    main()
