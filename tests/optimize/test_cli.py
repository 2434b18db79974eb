"""`energyhub plan`: exit codes 0 / 2 / 3, the JSON keys, the schedule file; no tracebacks."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from energyhub.cli import app
from tests.optimize.cases import inputs, to_csv

SITE = {
    "version": 1,
    "city": {
        "id": "c",
        "carbon": {"grid_kg_per_kwh": 0.5, "gas_kg_per_kwh": 0.2, "price_cny_per_t": 50},
        "parks": [
            {
                "id": "p",
                "grid": {"import_max_kw": 1000, "demand_charge_cny_per_kw": 40},
                "gas": {"price_cny_per_nm3": 3.8, "lhv_kwh_per_nm3": 9.97},
                "assets": [
                    {"id": "p-chp", "type": "chp", "fuel_max_kw": 400, "eta_el": 0.35,
                     "eta_th": 0.45, "min_load": 0.4, "start_cost_cny": 20},
                ],
                "buildings": [
                    {
                        "id": "b1",
                        "class": "office-A",
                        "floor_area_m2": 5000,
                        "assets": [
                            {"id": "b1-pv", "type": "pv", "peak_kw": 100},
                            {"id": "b1-bess", "type": "battery", "energy_kwh": 200,
                             "power_kw": 100, "soc_final": 0.5},
                            {"id": "b1-hp", "type": "heat_pump", "heat_max_kw": 100,
                             "cop_from_outdoor": {"a": 2.5, "b": 0.05}},
                        ],
                    },
                    {"id": "b2", "class": "lab", "floor_area_m2": 3000},
                ],
            }
        ],
    },
}  # fmt: skip
EXPECTED_KEYS = {
    "status",
    "objective_cny",
    "cost_cny",
    "co2_kg",
    "baseline",
    "solve_seconds",
    "variables",
    "binaries",
}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(SITE))
    frame = inputs(
        96,
        "15min",
        "2025-07-15 00:00",
        b1__electricity_kw=200.0,
        b1__heat_kw=[40.0] * 48 + [60.0] * 48,
        b2__electricity_kw=[100.0] * 40 + [300.0] * 56,
        b1_pv__available_kw=[0.0] * 30 + [80.0] * 36 + [0.0] * 30,
        outdoor_c=31.0,
    )
    frame.columns = [c.replace("b1_pv", "b1-pv") for c in frame.columns]
    csv = tmp_path / "inputs.csv"
    to_csv(frame, csv)
    return site, csv


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["plan", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.stdout, result.stderr


def test_park_plan_prints_json_and_writes_the_schedule(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    site, csv = files
    out = tmp_path / "schedule.csv"
    code, stdout, _ = _run(
        "--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert code == 0
    payload = json.loads(stdout)
    assert EXPECTED_KEYS <= payload.keys()
    assert payload["status"] == "optimal"
    assert set(payload["cost_cny"]) >= {"energy", "demand", "gas", "carbon", "start"}
    assert payload["objective_cny"] == pytest.approx(sum(payload["cost_cny"].values()))
    assert payload["objective_cny"] <= payload["baseline"]["cost_cny"] + 1e-6
    schedule = pd.read_csv(out, index_col="ts")
    assert len(schedule) == 96
    assert {"b1-bess:charge_kw", "b1-bess:soc_kwh", "p:import_kw", "p-chp:electricity_kw"} <= set(
        schedule.columns
    )
    assert schedule.index[0] == "2025-07-15T00:00:00+08:00"
    assert schedule["p:import_kw"].max() <= 1000 + 1e-6


def test_building_plan_without_json_prints_a_summary(files: tuple[Path, Path]) -> None:
    site, csv = files
    code, stdout, _ = _run(
        "--site", str(site), "--inputs", str(csv), "--level", "building", "--id", "b1"
    )
    assert code == 0
    assert "total CNY" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--level", "park", "--id", "nowhere"], "no park 'nowhere'"),
        (["--level", "city", "--id", "nowhere"], "city is 'c'"),
        (["--level", "building", "--id", "b1", "--drop", "outdoor_c"], "outdoor_c"),
        # a NaN cap reached the solver ("Model error", exit 3); an infinite one a traceback
        # when the plan was printed as JSON
        (["--level", "park", "--id", "p", "--carbon-cap-kg", "nan"], "--carbon-cap-kg: must be"),
        (["--level", "park", "--id", "p", "--carbon-cap-kg", "1e309", "--json"], "got inf"),
        # 100,000 worker processes ran out of file descriptors (OSError, a traceback)
        (
            ["--level", "park", "--id", "p", "--method", "decomposed", "--workers", "100000"],
            "'--workers': Input should be less than or equal to 64",
        ),
        (["--level", "park", "--id", "p", "--semicolons"], "is separated by ';', use commas"),
        # a gap of 2 or inf was taken; NaN was refused as "greater than or equal to 0"
        (["--level", "park", "--id", "p", "--mip-gap", "2"], "--mip-gap: must be a fraction"),
        (
            ["--level", "park", "--id", "p", "--mip-gap", "nan"],
            "from 0 to 1 (0.001 = 0.1 %), got nan",
        ),
        (["--level", "park", "--id", "p", "--time-limit-s", "nan"], "seconds ≥ 0, got nan"),
        (["--level", "park", "--id", "p", "--time-limit-s", "-3"], "seconds ≥ 0, got -3"),
        (
            ["--level", "park", "--id", "p", "--out", "/nonexistent/dir/x.csv"],
            "--out /nonexistent/dir/x.csv: cannot save file into a non-existent directory",
        ),
        (
            ["--level", "park", "--id", "p", "--out", "/dev/full"],
            "--out /dev/full: no space left on device",
        ),
    ],
)
def test_bad_input_exits_2_naming_it(
    files: tuple[Path, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    site, csv = files
    if "--drop" in args:
        frame = pd.read_csv(csv).drop(columns=args[-1])
        csv = tmp_path / "dropped.csv"
        frame.to_csv(csv, index=False)
        args = args[:-2]
    if "--semicolons" in args:  # as a spreadsheet in a European locale saves it
        csv = tmp_path / "semicolons.csv"
        csv.write_text(files[1].read_text().replace(",", ";"))
        args = args[:-1]
    code, _, stderr = _run("--site", str(site), "--inputs", str(csv), *args)
    assert code == 2
    assert message in stderr and "Traceback" not in stderr


def test_a_header_with_spaces_after_the_commas_is_named(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """It said only that the columns were missing, though the header had them, spaced."""
    site, csv = files
    spaced = tmp_path / "spaced.csv"
    header, rest = csv.read_text().split("\n", 1)
    spaced.write_text(header.replace(",", ", ") + "\n" + rest)
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(spaced), "--level", "park", "--id", "p"
    )
    assert code == 2
    message = " ".join(stderr.split())
    assert "the inputs lack column(s) b1:heat_kw, b1-pv:available_kw, outdoor_c" in message
    assert (
        "the header has ' b1:heat_kw', ' b1-pv:available_kw', ' outdoor_c': remove the spaces"
    ) in message


def test_inputs_not_in_utf8_name_the_byte_where_it_is(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """pandas named the byte at its offset in a chunk ("position 5: unexpected end of data")."""
    site, csv = files
    text = csv.read_bytes()
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(text + b"# caf\xe9\n")
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(latin1), "--level", "park", "--id", "p"
    )
    assert code == 2
    offset = len(text) + len(b"# caf")
    assert f"--inputs: cannot read {latin1}: not UTF-8 text (byte 0xe9 at offset {offset})" in (
        " ".join(stderr.split())
    )


def test_infeasible_exits_3_naming_balance_node_and_step(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    site, csv = files
    frame = pd.read_csv(csv)
    frame.loc[10:, "b1:heat_kw"] = 5000.0
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    args = ["--site", str(site), "--inputs", str(bad), "--level", "building", "--id", "b1"]
    code, stdout, stderr = _run(*args, "--json")
    assert code == 3
    assert "b1:balance_heat" in stderr and "step 11" in stderr
    payload = json.loads(stdout)
    assert payload["status"] == "infeasible"
    assert (payload["node"], payload["carrier"], payload["step"]) == ("b1", "heat", 11)
    assert payload["assets"] == ["b1-hp"]


def test_console_script_runs_in_a_subprocess(files: tuple[Path, Path]) -> None:
    """The real entry point, as scripts call it: exit 0 and one JSON object on stdout."""
    site, csv = files
    done = subprocess.run(
        [str(Path(sys.executable).with_name("energyhub")), "plan", "--site", str(site), "--inputs", str(csv),
         "--level", "building", "--id", "b1", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "optimal"


def test_unreadable_inputs_message_keeps_its_brackets(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    site, _ = files
    missing = tmp_path / "[missing].csv"
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(missing), "--level", "park", "--id", "p"
    )
    assert code == 2
    message = " ".join(stderr.split())
    assert f"--inputs: cannot read {missing}: No such file or directory" in message
    assert "Errno" not in message  # the OSError's str() was "[Errno 2] ...: '<path>'"


@pytest.mark.parametrize("where", ["row", "header"])
def test_a_cell_past_the_csv_readers_limit_is_named(
    files: tuple[Path, Path], tmp_path: Path, where: str
) -> None:
    """A cell over the csv module's 131,072 characters was a traceback (`_csv.Error: field
    larger than field limit`) from the check for rows longer than the header."""
    site, csv = files
    header, first, rest = csv.read_text().split("\n", 2)
    huge = tmp_path / "huge.csv"
    if where == "row":
        huge.write_text(f"{header}\n{first}\n{'9' * 200_000},{rest}")
        shown = "--inputs: row 2: not readable as CSV: a cell of more than 131,072 characters"
    else:
        huge.write_text(f"{header},{'x' * 200_000}\n{first}\n{rest}")
        shown = "--inputs: the header is not readable as CSV: a cell of more than 131,072"
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(huge), "--level", "park", "--id", "p"
    )
    assert code == 2
    assert shown in " ".join(stderr.split()) and "Traceback" not in stderr


def test_a_header_cell_left_empty_is_named_by_its_place(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """pandas names an empty header cell `Unnamed: 7`, and the error named that column, which
    the file does not have; a trailing comma with nothing under it (a spreadsheet's) holds no
    value and is no problem."""
    site, csv = files
    header, rest = csv.read_text().split("\n", 1)
    rows = [row for row in rest.split("\n") if row]
    width = header.count(",") + 2
    filled = tmp_path / "filled.csv"
    filled.write_text("\n".join([f"{header},", *(f"{row},5" for row in rows)]) + "\n")
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(filled), "--level", "park", "--id", "p"
    )
    assert code == 2
    message = " ".join(stderr.split())
    assert f"--inputs: column {width} has no name in the header, but row 1 holds '5' under it" in (
        message
    ), message
    assert "Unnamed" not in message
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("\n".join([f"{header},", *(f"{row}," for row in rows)]) + "\n")
    code, stdout, stderr = _run(
        "--site", str(site), "--inputs", str(trailing), "--level", "park", "--id", "p"
    )
    assert code == 0, stderr
    assert "total CNY" in stdout


def test_time_limit_without_a_schedule_exits_4(files: tuple[Path, Path]) -> None:
    site, csv = files
    args = ["--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p"]
    code, stdout, stderr = _run(*args, "--time-limit-s", "0", "--json")
    assert code == 4
    assert json.loads(stdout)["status"] == "time_limit"
    assert "time limit" in stderr.lower() or "time_limit" in stderr


def test_decomposed_park_plan_reports_iterations_gap_workers(files: tuple[Path, Path]) -> None:
    site, csv = files
    code, stdout, stderr = _run(
        "--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p",
        "--method", "decomposed", "--workers", "2", "--max-iterations", "40",
        "--compare-central", "--carbon-cap-kg", "1e6", "--json",
    )  # fmt: skip
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert EXPECTED_KEYS <= payload.keys()
    assert payload["method"] == "decomposed"
    assert payload["workers"] == 2
    assert 0 < payload["iterations"] <= 40
    assert payload["gap"] >= 0
    assert payload["lower_bound_cny"] <= payload["central"]["objective_cny"] + 1e-6
    assert payload["gap_to_central"] >= -1e-6
    assert payload["carbon_cap_kg"] == 1e6


def test_month_peak_kw_bills_only_the_rise(files: tuple[Path, Path]) -> None:
    """A month-to-date peak above anything the day can draw: no demand charge in plan or baseline;
    without the option the whole peak is billed (40 CNY/kW)."""
    site, csv = files
    args = ("--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p", "--json")
    code, stdout, _ = _run(*args, "--month-peak-kw", "1000")
    assert code == 0
    payload = json.loads(stdout)
    assert payload["month_peak_kw"] == {"p": 1000.0}
    assert payload["cost_cny"]["demand"] == pytest.approx(0.0, abs=1e-6)
    assert payload["baseline"]["cost_terms_cny"]["demand"] == pytest.approx(0.0)
    code, stdout, _ = _run(*args)
    whole = json.loads(stdout)
    assert whole["month_peak_kw"] == {"p": 0.0}
    peak = whole["scalars"]["p:peak_import_kw"]
    assert whole["cost_cny"]["demand"] == pytest.approx(40 * peak, rel=1e-9)


def test_a_negative_month_peak_exits_2(files: tuple[Path, Path]) -> None:
    site, csv = files
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p",
        "--month-peak-kw", "-5",
    )  # fmt: skip
    assert code == 2
    assert "--month-peak-kw" in stderr


@pytest.mark.parametrize("peak", ["10001", "1e308"])
def test_a_month_peak_beyond_the_connection_names_the_option(
    files: tuple[Path, Path], peak: str
) -> None:
    """It was named as a cell of the inputs (`p:month_peak_kw: row 1 (ts ...)`), a column the
    user's file does not have."""
    site, csv = files
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p",
        "--month-peak-kw", peak,
    )  # fmt: skip
    assert code == 2
    message = " ".join(stderr.split())
    assert f"--month-peak-kw: {float(peak):g} kW is above 10000, p's connection import " in message
    assert "row 1" not in message and "Traceback" not in message


def test_frontier_prints_each_point(files: tuple[Path, Path]) -> None:
    """Three points: CO₂ falls, cost rises, each abatement cost is the cost rise per tonne."""
    site, csv = files
    args = ("--site", str(site), "--inputs", str(csv), "--level", "building", "--id", "b1")
    code, stdout, _ = _run(*args, "--frontier", "3", "--json")
    assert code == 0, stdout
    payload = json.loads(stdout)
    points = payload["frontier"]
    assert [p["index"] for p in points] == [0, 1, 2]
    assert points[0]["co2_kg"] == pytest.approx(payload["co2_kg"])
    co2 = [p["co2_kg"] for p in points]
    cost = [p["cost_cny"] for p in points]
    assert co2[0] >= co2[1] >= co2[2] and cost[0] <= cost[1] + 1e-6 <= cost[2] + 2e-6
    for before, after in itertools.pairwise(points):
        if before["co2_kg"] - after["co2_kg"] > 1e-6:
            expected = (after["cost_cny"] - before["cost_cny"]) / (
                (before["co2_kg"] - after["co2_kg"]) / 1000
            )
            assert after["abatement_cny_per_t"] == pytest.approx(expected)
    code, stdout, _ = _run(*args, "--frontier", "3")
    assert code == 0 and "cost–CO₂ frontier" in stdout
    code, _, stderr = _run(*args, "--frontier", "3", "--carbon-cap-kg", "10")
    assert code == 2 and "--frontier with --carbon-cap-kg" in stderr
    code, _, stderr = _run(*args, "--frontier", "1")
    assert code == 2 and "--frontier: must be 2 to 11 points, got 1" in stderr


def test_a_plan_over_the_size_limit_is_refused_before_it_is_built(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Park p is 7 nodes and assets a step: 200 steps are 1,400 asset-steps, over a limit of
    1,000; its 96 steps (672) are within it. The error names the inputs, level, id and setting."""
    site, csv = files
    frame = inputs(
        200, "15min", "2025-07-15 00:00", b1__electricity_kw=200.0, b1__heat_kw=40.0,
        b2__electricity_kw=100.0, b1_pv__available_kw=0.0, outdoor_c=31.0,
    )  # fmt: skip
    frame.columns = [c.replace("b1_pv", "b1-pv") for c in frame.columns]
    long = tmp_path / "long.csv"
    to_csv(frame, long)
    monkeypatch.setenv("ENERGYHUB_PLAN_MAX_ASSET_STEPS", "1000")
    code, _, stderr = _run(
        "--site", str(site), "--inputs", str(long), "--level", "park", "--id", "p"
    )
    assert code == 2
    assert f"--inputs {long} with --level park --id p: 200 steps × 7 nodes and assets" in stderr
    assert "1,400 asset-steps, more than the limit of 1,000" in stderr
    assert "(ENERGYHUB_PLAN_MAX_ASSET_STEPS): plan at most 142 steps" in stderr
    code, _, _ = _run("--site", str(site), "--inputs", str(csv), "--level", "park", "--id", "p")
    assert code == 0
