"""The `energyhub` command as a user runs it: exit codes, one-line errors, never a traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

from energyhub.sites import load_site

ENERGYHUB = [sys.executable, "-m", "energyhub"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENERGYHUB_")}
    environment.update(env or {})
    environment["COLUMNS"] = "200"
    return subprocess.run(
        [*ENERGYHUB, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_sites_check_prints_the_tree(example_site_path: Path) -> None:
    done = run("sites", "check", str(example_site_path))
    assert done.returncode == 0, done.stderr
    assert "park expo" in done.stdout and "enterprise acme-bio" in done.stdout
    assert "valid — 2 parks, 12 buildings, 6 enterprises" in done.stdout


def test_sites_check_bad_file_exit_2_without_traceback(
    tmp_path: Path, example_site_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        example_site_path.read_text().replace(
            "energy_kwh: 1000, power_kw: 500", "energy_kwh: -5, power_kw: 500"
        )
    )
    done = run("sites", "check", str(bad))
    assert done.returncode == 2
    assert "city.parks[0].buildings[0].assets[1].energy_kwh: must be > 0, got -5" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    missing = run("sites", "check", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2 and "cannot read the file" in missing.stderr


def test_sites_schema_is_json() -> None:
    done = run("sites", "schema")
    assert done.returncode == 0
    assert json.loads(done.stdout)["title"] == "energyhub site file"


def test_unreachable_database_is_one_line_with_the_password_masked(example_site_path: Path) -> None:
    url = "postgresql://energy:s3cret@127.0.0.1:1/nowhere"
    done = run(
        "db", "migrate", env={"ENERGYHUB_DB_URL": url, "ENERGYHUB_DB_CONNECT_TIMEOUT_S": "2"}
    )
    assert done.returncode == 2
    assert "postgresql://energy:***@127.0.0.1:1/nowhere" in done.stderr
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
    assert "check that PostgreSQL is running" in done.stderr
    assert (
        len(done.stderr.strip().splitlines()) <= 3
    )  # one message, wrapped at most by the terminal


def test_missing_database_url(example_site_path: Path) -> None:
    done = run("sites", "load", str(example_site_path))
    assert done.returncode == 2
    assert "ENERGYHUB_DB_URL is not set" in done.stderr


def test_bad_setting_names_the_variable() -> None:
    done = run("db", "migrate", env={"ENERGYHUB_DB_POOL_MAX": "lots"})
    assert done.returncode == 2
    assert "ENERGYHUB_DB_POOL_MAX='lots'" in done.stderr


def test_migrate_load_and_maintain(pg_url: str, example_site_path: Path) -> None:
    env = {"ENERGYHUB_DB_URL": pg_url}
    schema_missing = run("sites", "load", str(example_site_path), env=env)
    assert schema_missing.returncode == 2 and "run `energyhub db migrate`" in schema_missing.stderr
    migrated = run("db", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "(postgres), " in migrated.stdout and "migration(s) applied" in migrated.stdout
    meters = sum(len(owner.meters) for _, owner in load_site(example_site_path).metered_sites())
    loaded = run("sites", "load", str(example_site_path), env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert "sites: 21 loaded" in loaded.stdout and f"{meters} added" in loaded.stdout
    again = run("sites", "load", str(example_site_path), env=env)
    assert "0 added" in again.stdout and f"{meters} unchanged" in again.stdout
    maintained = run("db", "maintain", env=env)
    assert maintained.returncode == 0 and "partitions created" in maintained.stdout
