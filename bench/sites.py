"""Site-file benchmark: reading, checking and loading a large city's site file.

    .venv/bin/python bench/sites.py [--parks 10] [--buildings 50] [--meters 10]

Generates a city of `--parks` parks × `--buildings` buildings, each with a main electricity meter,
`--meters` − 1 sub-meters and one enterprise on the first, writes it as YAML and times, in one
process: reading the YAML through the site-file checks (`read_yaml`) against PyYAML's own C safe
loader on the same text (the ratio: what the checks cost), validating it (`load_site` whole), and
`sites load` into a fresh database twice (the first load adds every meter; the second finds
everything unchanged). Not a test: it prints figures. Needs the PostgreSQL of
ENERGYHUB_BENCH_PG_URL (default local); the database it creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import yaml

from energyhub.sites import load_site
from energyhub.sites.load import read_yaml
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site

ADMIN_URL = os.environ.get(
    "ENERGYHUB_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def city(parks: int, buildings: int, meters: int) -> dict[str, Any]:
    def building(p: int, b: int) -> dict[str, Any]:
        own = [{"id": "main", "carrier": "electricity", "quantity": "power_kw"}]
        own += [
            {"id": f"f{m}", "carrier": "electricity", "quantity": "energy_kwh",
             "submeter_of": "main"}
            for m in range(meters - 1)
        ]  # fmt: skip
        tenants = (
            [{"id": f"e{p}-{b}", "floor_area_m2": 100, "meters": ["f0"]}] if meters > 1 else []
        )
        return {"id": f"p{p}b{b}", "class": "office-A", "floor_area_m2": 1000, "meters": own,
                "enterprises": tenants}  # fmt: skip

    return {
        "version": 1,
        "timezone": "Asia/Shanghai",
        "city": {"id": "c", "parks": [
            {"id": f"p{p}", "grid": {"import_max_kw": 50000},
             "buildings": [building(p, b) for b in range(buildings)]}
            for p in range(parks)
        ]},
    }  # fmt: skip


def positive(text: str) -> int:
    """An argument that must be a whole number ≥ 1, refused by name otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}")
    return value


def timed(label: str, work: Any) -> float:
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    print(f"  {label:52s} {seconds:8.2f} s")
    return seconds


async def load_twice(path: Path) -> None:
    name = f"bench_sites_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        site = load_site(path)
        async with connect(url) as conn:
            await migrate(conn)
            for label in ("sites load, first (every meter added)", "sites load, again (unchanged)"):
                started = time.perf_counter()
                report = await sync_site(conn, site)
                seconds = time.perf_counter() - started
                print(f"  {label:52s} {seconds:8.2f} s  ({len(report.added)} added, "
                      f"{report.unchanged} unchanged)")  # fmt: skip
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parks", type=positive, default=10)
    parser.add_argument("--buildings", type=positive, default=50, help="Per park.")
    parser.add_argument("--meters", type=positive, default=10, help="Per building.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "city.yaml"
        path.write_text(yaml.safe_dump(city(args.parks, args.buildings, args.meters)))
        text = path.read_text()
        total = args.parks * args.buildings * args.meters
        print(f"{args.parks} parks × {args.buildings} buildings × {args.meters} meters "
              f"= {total:,} meters, {len(text) / 1e6:.1f} MB of YAML")  # fmt: skip
        plain = timed(
            "PyYAML CSafeLoader alone (baseline)", lambda: yaml.load(text, Loader=yaml.CSafeLoader)
        )
        checked = timed("read_yaml (the site-file checks)", lambda: read_yaml(text))
        print(f"  {'ratio read_yaml ÷ CSafeLoader':52s} {checked / plain:8.2f}")
        timed("load_site (read, validate, references)", lambda: load_site(path))
        asyncio.run(load_twice(path))


if __name__ == "__main__":
    main()
