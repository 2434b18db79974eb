"""`energyhub plans list|show|approve|reject` against a real database."""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from energyhub.cli import app
from energyhub.plans.store import store_plan
from energyhub.sites import load_site, parse_site
from energyhub.store.db import connect
from energyhub.store.migrations import migrate
from energyhub.store.sync import sync_site
from tests.api.conftest import SITE_FILE, solved


async def _stored(url: str) -> list[int]:
    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(SITE_FILE))
        return [(await store_plan(conn, solved("building", s))).id for s in ("b01", "b02")]


def test_plans_commands(pg_url: str) -> None:
    b01, b02 = asyncio.run(_stored(pg_url))
    runner = CliRunner()
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"}
    listed = runner.invoke(app, ["plans", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "2 plan(s)" in listed.output and "b02" in listed.output
    approved = runner.invoke(app, ["plans", "approve", str(b01), "--by", "ops-anna"], env=env)
    assert approved.exit_code == 0 and f"plan {b01} approved by ops-anna" in approved.output
    again = runner.invoke(app, ["plans", "approve", str(b01)], env=env)
    assert again.exit_code == 2
    assert f"plan {b01} is approved: cannot approve it" in again.output
    rejected = runner.invoke(
        app, ["plans", "reject", str(b02), "--reason", "stale forecast"], env=env
    )
    assert rejected.exit_code == 0 and "rejected by cli:" in rejected.output
    shown = runner.invoke(app, ["plans", "show", str(b02), "--json"], env=env)
    data = json.loads(shown.output)
    assert (data["status"], data["rejected_reason"]) == ("rejected", "stale forecast")
    only = runner.invoke(app, ["plans", "list", "--status", "approved"], env=env)
    assert "1 plan(s)" in only.output
    bad = runner.invoke(app, ["plans", "list", "--status", "done"], env=env)
    assert bad.exit_code == 2 and "must be one of pending, draft" in bad.output
    missing = runner.invoke(app, ["plans", "show", "999"], env=env)
    assert missing.exit_code == 2 and "no plan 999" in missing.output
    unknown = runner.invoke(app, ["plans", "list", "--site", "b0l"], env=env)
    assert unknown.exit_code == 2, unknown.output  # listed "0 plan(s)" as if b0l had none
    assert "no site 'b0l' in the database" in unknown.output
    assert "1 plan(s)" in runner.invoke(app, ["plans", "list", "--site", "b02"], env=env).output


def test_plans_show_against_the_meters(pg_url: str) -> None:
    """`plans show --actual`: the metered bill, the counterfactual, realized savings, perfect
    foresight and the capture ratio of three controlled steps (tests/plans/test_realized has
    the figures by hand); without --actual, Δ against the baseline only."""
    from tests.plans.test_realized import BATTERY_KW, DAY_MEAN_CNY_PER_KWH
    from tests.scheduler.conftest import BATTERY_KWH, site_doc
    from tests.scheduler.test_actual import MAIN_KW, VALLEY_CNY_PER_KWH, run_steps

    plan_id = asyncio.run(run_steps(pg_url, "auto", 3))
    site_file = Path(tempfile.mkdtemp()) / "site.yaml"
    site_file.write_text(yaml.safe_dump(site_doc("auto")))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(site_file), "COLUMNS": "200"}
    runner = CliRunner()
    shown = runner.invoke(app, ["plans", "show", str(plan_id), "--actual"], env=env)
    assert shown.exit_code == 0, shown.output
    demand_kwh = sum(m - b for m, b in zip(MAIN_KW[:3], BATTERY_KW, strict=True)) * 0.25
    stored_cny = 0.12 * BATTERY_KWH * 0.95 * DAY_MEAN_CNY_PER_KWH  # the 240 kWh the meters left
    saved = (demand_kwh - sum(MAIN_KW[:3]) * 0.25) * VALLEY_CNY_PER_KWH + stored_cny
    text = " ".join(shown.output.split())  # a console narrower than COLUMNS wraps the lines
    assert "plan vs actual: 3 steps it controlled" in text
    assert f"worth {stored_cny:,.1f} CNY" in text
    found = re.search(r"realized savings \([^)]*a loss\): ([−\d,.]+) CNY, ([−\d,.]+) kg", text)
    assert found is not None, shown.output
    assert float(found[1].replace(",", "")) == pytest.approx(saved, abs=0.051)
    assert found[2].startswith("−")  # a loss prints with a true minus sign (energyhub.numbers)
    assert "counterfactual: energy" in text
    assert "capture ratio (realized ÷ perfect foresight): 0.98" in text
    assert "Δcost vs baseline" in text
    as_json = runner.invoke(app, ["plans", "show", str(plan_id), "--actual", "--json"], env=env)
    data = json.loads(as_json.output)
    assert data["actual"]["realized"]["savings_cny"] == pytest.approx(saved)
    plain = runner.invoke(app, ["plans", "show", str(plan_id)], env=env)
    assert plain.exit_code == 0 and "plan vs actual" not in plain.output
    # figures as a person reads them: 2 decimals at most (it printed 15998.504757946896)
    objective = next(line for line in plain.output.splitlines() if "objective_cny:" in line)
    assert re.fullmatch(r"objective_cny: [\d,]+\.\d\d", objective.strip()), objective


def test_a_retired_site_s_plans_are_not_listed_as_the_api_answers_404(pg_url: str) -> None:
    """`plans list --site b02` listed b02's plans after b02 left the site file, while
    `GET /plans?site_id=b02` answered 404; now the CLI refuses it by name too."""
    _, b02 = asyncio.run(_stored(pg_url))
    document = yaml.safe_load(SITE_FILE.read_text())
    for park in document["city"]["parks"]:
        park["buildings"] = [b for b in park["buildings"] if b["id"] != "b02"]
        for building in park["buildings"]:  # tenants with sub-meters in b02 go too
            building["enterprises"] = [
                e
                for e in building.get("enterprises", [])
                if not any(m.startswith("b02/") for m in e["meters"])
            ]

    async def retire() -> None:
        async with connect(pg_url) as conn:
            await sync_site(conn, parse_site(document))

    asyncio.run(retire())
    runner = CliRunner()
    env = {"ENERGYHUB_DB_URL": pg_url, "COLUMNS": "200"}
    retired = runner.invoke(app, ["plans", "list", "--site", "b02"], env=env)
    assert retired.exit_code == 2, retired.output
    assert "site 'b02' is retired" in " ".join(retired.output.split())
    assert "1 plan(s)" in runner.invoke(app, ["plans", "list", "--site", "b01"], env=env).output
    assert "1 plan(s)" in runner.invoke(app, ["plans", "list"], env=env).output  # b01's alone
    shown = runner.invoke(app, ["plans", "show", str(b02), "--json"], env=env)
    assert json.loads(shown.output)["site_id"] == "b02"  # kept, and shown by id


async def _pending_and_failed(url: str) -> tuple[int, int]:
    from datetime import datetime, timedelta

    from energyhub.plans.store import create_pending, mark_failed

    async with connect(url) as conn:
        await migrate(conn)
        await sync_site(conn, load_site(SITE_FILE))
        start = datetime.fromisoformat("2026-11-20T00:00:00+08:00")
        made = [
            await create_pending(
                conn,
                level="building",
                site_id="b01",
                horizon_start=start,
                horizon_end=start + timedelta(hours=4),
                step_s=3600,
                inputs_ref="test",
                inputs_hash="0" * 64,
                created_by="test",
            )
            for _ in range(2)
        ]
        await mark_failed(conn, made[1].id, "infeasible: test")
        return made[0].id, made[1].id


def test_plans_show_actual_of_a_plan_never_solved_is_refused(pg_url: str) -> None:
    """It printed "planned: 0.0 CNY" for a failed plan, which planned nothing (the API's
    /plans/{id}/actual answered 409)."""
    pending, failed = asyncio.run(_pending_and_failed(pg_url))
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(SITE_FILE), "COLUMNS": "200"}
    for plan_id, status in ((pending, "pending"), (failed, "failed")):
        shown = CliRunner().invoke(app, ["plans", "show", str(plan_id), "--actual"], env=env)
        assert shown.exit_code == 2, shown.output
        assert f"plan {plan_id} is {status}: cannot compare it" in " ".join(shown.output.split())
        assert "planned:" not in shown.output


def test_plans_show_actual_of_a_site_the_site_file_lacks_names_the_plan(
    pg_url: str, tmp_path: Path
) -> None:
    """It said "--id: no building 'b01' in the site file", naming an option of `plan`."""
    b01, _ = asyncio.run(_stored(pg_url))
    other = tmp_path / "other.yaml"
    other.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "timezone": "Asia/Shanghai",
                "city": {
                    "id": "c1",
                    "carbon": {"grid_kg_per_kwh": 0.5, "gas_kg_per_kwh": 0.2},
                    "parks": [
                        {
                            "id": "p1",
                            "grid": {"import_max_kw": 100, "tariff": "shanghai-two-part"},
                        }
                    ],
                },
            }
        )
    )
    env = {"ENERGYHUB_DB_URL": pg_url, "ENERGYHUB_SITE_FILE": str(other), "COLUMNS": "200"}
    shown = CliRunner().invoke(app, ["plans", "show", str(b01), "--actual"], env=env)
    assert shown.exit_code == 2, shown.output
    message = " ".join(shown.output.split())
    assert f"plan {b01} is of the building 'b01', which the site file" in message
    assert "--id" not in message


def test_storage_taken_is_added_and_a_daily_peak_is_not_called_the_month_s() -> None:
    """What the meters took from storage (a negative credit) printed 'stored −-63.7 CNY'; under
    daily billing (no month-to-date peak) the demand read 'on the rise above the month's 0.0
    kW' (a park of that shape: Daily city, and a park whose only storage emptied itself)."""
    from energyhub.plans.bill import Account
    from energyhub.plans.cli import _demand_text, _terms
    from energyhub.plans.realized import Side

    taken = _terms(Side(energy_cny=1.2, carbon_cny=0.1, stored_cny=-63.7))
    assert taken.endswith("less the stored value −63.7 CNY") and "−-" not in taken
    assert _terms(Side(stored_cny=12.5)).endswith("less the stored value 12.5 CNY")
    account = Account(
        import_kwh=100, export_kwh=0, peak_import_kw=382.7, gas_kwh=0, energy_cny=455.7,
        demand_cny=765.4, gas_cny=0, carbon_cny=22.3, total_cny=1243.4, co2_kg=371.6,
    )  # fmt: skip
    assert _demand_text(account) == "demand charge 765.4 CNY on their peak of 382.7 kW"
    month = account.model_copy(update={"month_peak_kw": 300.0})
    assert _demand_text(month) == "demand charge 765.4 CNY on the rise above the month's 300.0 kW"
