import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from energyhub.errors import SiteFileError
from energyhub.render import site_tree
from energyhub.sites import Battery, load_site, parse_site, site_json_schema
from energyhub.sites.load import _LOADERS, read_yaml


@pytest.fixture(scope="module")
def example(request: pytest.FixtureRequest) -> dict[str, Any]:
    path = Path(__file__).resolve().parent.parent / "examples" / "expo-park.yaml"
    return yaml.safe_load(path.read_text())


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SiteFileError) as caught:
        parse_site(data, "site.yaml")
    return caught.value.problems


def test_example_is_a_realistic_park(example_site_path: Path) -> None:
    site = load_site(example_site_path)
    buildings = [b for p in site.city.parks for b in p.buildings]
    assert len(site.city.parks) == 2
    assert 10 <= len(buildings) <= 14
    assert {b.building_class for b in buildings} >= {
        "office-A",
        "office-B",
        "lab",
        "data-center",
        "hotel",
    }
    assert sum(len(b.enterprises) for b in buildings) >= 6
    types = {
        a.type
        for p in site.city.parks
        for a in [*p.assets, *[x for b in p.buildings for x in b.assets]]
    }
    assert {"pv", "battery", "heat_pump", "electric_chiller", "thermal_storage", "chp"} <= types
    carriers = {m.carrier for _, owner in site.metered_sites() for m in owner.meters}
    assert {"electricity", "heat", "cooling", "gas", "pv", "none"} <= carriers
    assert site.tz.key == "Asia/Shanghai"


def test_error_names_path_and_value(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][3]["assets"][1]["heat_max_kw"] = -5
    data["city"]["parks"][0]["buildings"][0]["assets"][1]["energy_kwh"] = -5
    assert problems(data) == [
        "city.parks[0].buildings[0].assets[1].energy_kwh: must be > 0, got -5",
        "city.parks[0].buildings[3].assets[1].heat_max_kw: must be > 0, got -5",
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("eta_charge", 1.2, "assets[1].eta_charge: must be ≤ 1, got 1.2"),
        ("eta_discharge", 0, "assets[1].eta_discharge: must be > 0, got 0"),
        (
            "soc_initial",
            0.95,
            "assets[1]: soc_initial must lie in [soc_min, soc_max] = [0.1, 0.9], got 0.95",
        ),
        ("soc_min", 0.95, "assets[1]: soc_min (0.95) must be ≤ soc_max (0.9)"),
        ("power_kw", "lots", "assets[1].power_kw: Input should be a valid number"),
        # a boolean was a capacity of 1 kW, a quoted number a number
        ("power_kw", True, "assets[1].power_kw: Input should be a valid number, got True"),
        ("eta_charge", "0.9", "assets[1].eta_charge: Input should be a valid number, got '0.9'"),
        ("capacity", 3, "assets[1].capacity: unknown key, got 3"),
    ],
)
def test_battery_parameters_checked(
    example: dict[str, Any], field: str, value: object, expected: str
) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][0]["assets"][1][field] = value
    (problem,) = problems(data)
    assert problem.startswith("city.parks[0].buildings[0]." + expected)


@pytest.mark.parametrize(
    ("where", "key", "value", "expected"),
    [
        # a heat pump of COP 1, a Shelly's second channel, a window from 1:00: all unsaid
        (("parks", 0, "buildings", 1, "assets", 1), "cop", True, "a valid number, got True"),
        (("parks", 0, "buildings", 1, "assets", 1), "cop", "3.5", "a valid number, got '3.5'"),
        (("parks", 0, "assets", 3), "cop", True, "a valid number, got True"),
        (("parks", 0, "buildings", 0, "assets", 2, "cop_from_outdoor"), "a", "2.8",
         "a valid number, got '2.8'"),
        (("parks", 0, "buildings", 1, "meters", 3, "device"), "channel", True,
         "a valid integer, got True"),
        (("parks", 1, "buildings", 3, "assets", 3), "window_start_h", True,
         "a valid integer, got True"),
        (("parks", 1, "buildings", 3, "assets", 3), "window_end_h", "18",
         "a valid integer, got '18'"),
    ],
)  # fmt: skip
def test_every_number_is_a_number_not_a_boolean_or_a_quoted_one(
    example: dict[str, Any], where: tuple[Any, ...], key: str, value: Any, expected: str
) -> None:
    """site-files.md: `true` or a quoted "500" is refused. Capacities were; these were taken."""
    data = copy.deepcopy(example)
    node: Any = data["city"]
    for step in where:
        node = node[step]
    node[key] = value
    path = "city" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in where)
    assert problems(data) == [f"{path}.{key}: Input should be {expected}"]
    node[key] = {"window_start_h": 9.0, "window_end_h": 18.0, "channel": 0.0}.get(key, 1.0)
    assert parse_site(data, "site.yaml")
    data["city"]["carbon"]["plan_policy"] = {"frontier_points": "5"}
    assert "city.carbon.plan_policy.frontier_points: Input should be a valid integer, got '5'" in (
        problems(data)
    )


@pytest.mark.parametrize(
    ("where", "key"),
    [
        (("carbon",), "grid_kg_per_kwh"),
        (("carbon",), "residual_mix_kg_per_kwh"),
        (("carbon", "factors_by_year", 2024), "heat_kg_per_kwh"),
        (("parks", 0, "buildings", 0, "carbon"), "gas_kg_per_kwh"),
    ],
)
def test_an_emission_factor_in_grams_is_named(
    example: dict[str, Any], where: tuple[Any, ...], key: str
) -> None:
    """581 (China's grid in g/kWh) was taken as 581 kg/kWh: every report 1000 times over."""
    data = copy.deepcopy(example)
    node: Any = data["city"]
    for step in where:
        node = node[step] if isinstance(node, list) else node.setdefault(step, {})
    node[key] = 581
    path = "city" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in where)
    assert problems(data) == [
        f"{path}.{key}: must be at most 2 kg of CO₂ per kWh: a factor in g/kWh? divide by 1000, "
        "got 581"
    ]
    node[key] = 1.2  # lignite
    assert parse_site(data, "site.yaml")


@pytest.mark.parametrize(
    ("protocol", "mapping"),
    [
        ("sparkplug", {"group": "g", "node": "n", "metric": "Active Power"}),
        ("modbus", {"gateway": "gw", "unit": 1, "address": 0}),
    ],
)
@pytest.mark.parametrize(
    ("scale", "expected"),
    [(0, "must not be 0: every reading would be stored as 0"), (1.0e300, "must be ≤ 1e+09")],
)
def test_a_field_bus_scale_that_loses_every_reading_is_named(
    example: dict[str, Any], protocol: str, mapping: dict[str, Any], scale: float, expected: str
) -> None:
    """A scale of 0 stored every reading of the meter as 0, and one of 1e300 made each reading
    infinite (refused one by one at the ingest): the site file was valid."""
    data = copy.deepcopy(example)
    park = data["city"]["parks"][0]
    park["modbus_gateways"] = [{"id": "gw", "host": "127.0.0.1", "units": [1]}]
    park["buildings"][0]["meters"][0][protocol] = {**mapping, "scale": scale}
    (problem,) = problems(data)
    assert problem.startswith(f"city.parks[0].buildings[0].meters[0].{protocol}.scale: {expected}")
    park["buildings"][0]["meters"][0][protocol]["scale"] = -0.001  # a sign flip is a scale
    assert parse_site(data, "site.yaml")


@pytest.mark.parametrize(
    ("written", "hint"),
    [("1e9", "1.0e+9"), ("2.5E3", "2.5e+3"), ("-4e+2", "-4.0e+2")],
)
def test_a_number_yaml_reads_as_text_says_how_to_write_it(
    tmp_path: Path, example: dict[str, Any], written: str, hint: str
) -> None:
    """PyYAML (YAML 1.1) reads `1e9` as text; it was refused as 'Input should be a valid
    number, got '1e9'', which is a number to its writer (and to JSON and YAML 1.2)."""
    text = yaml.safe_dump(example, sort_keys=False).replace(
        "energy_kwh: 1000", f"energy_kwh: {written}", 1
    )
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(SiteFileError) as caught:
        load_site(path)
    assert caught.value.problems == [
        f"city.parks[0].buildings[0].assets[1].energy_kwh: YAML reads {written} as text, not a "
        f"number: write it with a dot and a signed exponent ({hint}) or in full, got {written!r}"
    ]
    path.write_text(text.replace(f"energy_kwh: {written}", f"energy_kwh: {hint}"))
    if float(hint) > 0:
        assert load_site(path).city.parks[0].buildings[0].assets[1].energy_kwh == float(hint)


def test_unknown_asset_type_and_class(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][0]["assets"][0]["type"] = "nuclear"
    data["city"]["parks"][0]["buildings"][1]["class"] = "castle"
    found = problems(data)
    assert any(
        p.startswith("city.parks[0].buildings[0].assets[0]") and "'nuclear'" in p for p in found
    )
    assert any(p.startswith("city.parks[0].buildings[1].class: must be 'office-A'") for p in found)


def test_heat_pump_needs_exactly_one_cop(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][1]["assets"][1]["cop_from_outdoor"] = {"a": 3, "b": 0.1}
    (problem,) = problems(data)
    assert (
        problem
        == "city.parks[0].buildings[1].assets[1]: give exactly one of cop or cop_from_outdoor"
    )


def test_ids_unique_per_kind(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][1]["id"] = "b01"
    data["city"]["parks"][1]["assets"][0]["id"] = "b01-pv"
    data["city"]["parks"][0]["buildings"][0]["meters"][1]["id"] = "main"
    found = problems(data)
    assert any("id 'b01' is used by more than one site" in p for p in found)
    assert "asset id 'b01-pv' is used more than once" in found


def test_an_asset_may_not_take_a_sites_id(example: dict[str, Any]) -> None:
    """`b02:electricity_kw` in a plan's inputs would name the building or the asset: it was
    accepted, and the column then failed as the wrong quantity of one of them."""
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][0]["assets"][0]["id"] = "b02"
    assert (
        "asset id 'b02' is also a site's id (a plan's inputs column such as 'b02:electricity_kw' "
        "would name either)"
    ) in problems(data)


def test_meter_ids_unique_per_site(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][0]["meters"][2]["id"] = "main"
    assert "city.parks[0].buildings[0].meters: id 'main' is used more than once" in problems(data)


def test_enterprise_meters_must_exist(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["parks"][0]["buildings"][0]["enterprises"][0]["meters"] = ["f3", "b04/none", "f99"]
    assert problems(data) == [
        "city.parks[0].buildings[0].enterprises[0].meters[1]: no meter 'none' in site 'b04', got 'b04/none'",
        "city.parks[0].buildings[0].enterprises[0].meters[2]: no meter 'f99' in site 'b01', got 'f99'",
    ]


def test_meter_references(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    meters = data["city"]["parks"][0]["buildings"][0]["meters"]
    meters[4]["submeter_of"] = "nope"
    meters[6]["asset"] = "b02-pv"
    meters[0]["rollover_kwh"] = 100
    found = problems(data)
    assert any(
        p.startswith("city.parks[0].buildings[0].meters[0]: rollover_kwh applies") for p in found
    )
    data["city"]["parks"][0]["buildings"][0]["meters"][0].pop("rollover_kwh")
    assert problems(data) == [
        "city.parks[0].buildings[0].meters[4].submeter_of: no meter 'nope' in b01",
        "city.parks[0].buildings[0].meters[6].asset: no asset 'b02-pv' in b01 or expo",
    ]


def test_time_zone_and_version(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["timezone"] = "Mars/Olympus"
    data["version"] = 2
    found = problems(data)
    assert "version: must be 1, got 2" in found
    assert (
        "timezone: unknown time zone 'Mars/Olympus' (use an IANA name), got 'Mars/Olympus'" in found
    )


@pytest.mark.parametrize("zone", ["localtime", "posixrules"])
def test_a_zone_that_is_the_host_s_own_setting_is_refused(
    example: dict[str, Any], zone: str
) -> None:
    """ZoneInfo loads these from the zoneinfo folder, so `localtime` was taken: a site in the
    API's container's UTC and the scheduler's server's Asia/Shanghai at once."""
    data = copy.deepcopy(example)
    data["timezone"] = zone
    assert problems(data) == [
        f"timezone: {zone!r} is the host's own zone, not a place: each machine (the API, the "
        "scheduler, PostgreSQL) reads it its own way; give the site's IANA name, e.g. "
        f"Europe/Berlin, got {zone!r}"
    ]


def test_missing_key(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    del data["city"]["parks"][0]["grid"]["import_max_kw"]
    assert problems(data) == [
        "city.parks[0].grid.import_max_kw: is required (in kW; a connection with no contractual "
        "limit states its physical one, the transformer's rating)"
    ]
    del data["city"]["parks"][0]["grid"]
    assert problems(data) == [
        "city.parks[0].grid: is required (every park has its grid connection, as plans and bills "
        "are per connection: grid: {import_max_kw, tariff})"
    ]


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(SiteFileError, match="cannot read the file"):
        load_site(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ncity: {id: [unclosed\n")
    with pytest.raises(SiteFileError, match=r"line \d+, column \d+: not valid YAML"):
        load_site(bad)
    bad.write_text("- just a list\n")
    with pytest.raises(SiteFileError, match="must be a mapping, got list"):
        load_site(bad)
    for empty in ("", "# only a comment\n", "---\n"):  # said "got NoneType"
        bad.write_text(empty)
        with pytest.raises(SiteFileError, match="the document is empty: a site file starts with"):
            load_site(bad)


def test_a_location_places_the_site_and_is_checked(example: dict[str, Any]) -> None:
    doc = copy.deepcopy(example)
    doc["location"] = {"latitude_deg": 39.742, "longitude_deg": -105.173}
    site = parse_site(doc, "site.yaml")
    assert site.location is not None and site.location.longitude_deg == -105.173
    doc["location"] = {"latitude_deg": 95, "longitude_deg": 121.5}
    assert any(p.startswith("location.latitude_deg:") and "95" in p for p in problems(doc))
    doc["location"] = {"lat": 31.2, "lon": 121.5}
    found = problems(doc)
    assert any(p.startswith("location.lat:") for p in found), found
    assert parse_site(example, "site.yaml").location is None  # the settings' Shanghai


def test_json_schema_describes_assets() -> None:
    schema = json.loads(site_json_schema())
    assert schema["title"] == "energyhub site file"
    assert {"Battery", "CHP", "ThermalStorage", "FuelCell"} <= set(schema["$defs"])
    battery = schema["$defs"]["Battery"]["properties"]
    assert battery["eta_charge"]["exclusiveMinimum"] == 0
    assert battery["eta_charge"]["maximum"] == 1
    assert "class" in schema["$defs"]["Building"]["properties"]


def test_storage_defaults() -> None:
    battery = Battery(id="x", type="battery", energy_kwh=10, power_kw=5)
    assert battery.soc_min <= battery.soc_initial <= battery.soc_max


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.text(max_size=5),
    st.none(),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_value_anywhere_is_valid_or_a_named_error(
    example: dict[str, Any], data: st.DataObject
) -> None:
    """Replacing any scalar of the example by an arbitrary value never escapes as another error."""
    document = copy.deepcopy(example)
    node: Any = document
    path = []
    while isinstance(node, dict | list) and node:
        key = data.draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        if not isinstance(node[key], dict | list):
            node[key] = data.draw(NUMBERS)
            break
        node = node[key]
    try:
        parse_site(document)
    except SiteFileError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def test_hostile_yaml_is_a_named_problem_not_a_crash(tmp_path: Path) -> None:
    """Non-UTF-8 bytes, a key given twice, nesting that would exhaust the recursion, and an
    alias bomb (which took minutes and all the memory before) are each one named problem."""
    cases = {
        b"version: 1\ncity: \xff\xfe\n": "not UTF-8 text (byte 0xff at offset 17)",
        b"version: 1\nversion: 2\n": "line 2, column 1: not valid YAML: key 'version' is given twice",
        b"a: " + b"[" * 100 + b"]" * 100 + b"\n": "nested deeper than 64 levels",
        b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n": "line 1, column 1003: not valid YAML: "
        "exceeded maximum nesting depth",  # libyaml's own limit, met before the 65th level
        b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + b"".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n".encode()
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ): "aliases expand to more than 1,000,000 values",
    }
    for i, (raw, expected) in enumerate(cases.items()):
        path = tmp_path / f"s{i}.yaml"
        path.write_bytes(raw)
        with pytest.raises(SiteFileError) as caught:
            load_site(path)
        assert len(caught.value.problems) == 1
        assert expected in caught.value.problems[0], caught.value.problems


@pytest.mark.parametrize("loader", _LOADERS, ids=lambda c: c.__name__)
def test_each_loader_refuses_the_same_hostile_yaml(loader: type) -> None:
    """libyaml's events where PyYAML has it, else its Python parser's: the checks are the same
    (only the deepest flow nesting meets libyaml's own limit first)."""
    deepest = "exceeded maximum nesting depth" if "Libyaml" in loader.__name__ else "nested deeper"
    cases = {
        "version: 1\nversion: 2\n": "key 'version' is given twice",
        "a: " + "[" * 100 + "]" * 100 + "\n": "nested deeper than 64 levels",
        "a: " + "[" * 5000 + "]" * 5000 + "\n": deepest,
        "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "v\n": "nested deeper",
        'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ): "aliases expand to more than 1,000,000 values",
    }
    for text, expected in cases.items():
        with pytest.raises(yaml.YAMLError) as caught:
            read_yaml(text, loader)
        assert expected in str(caught.value)
    assert read_yaml("a: [1, {b: c}]\n", loader) == {"a": [1, {"b": "c"}]}


def test_merge_keys_and_shared_anchors_still_load(tmp_path: Path, example: dict[str, Any]) -> None:
    text = yaml.safe_dump(example, sort_keys=False).replace(
        "version: 1", "x-grid: &grid {import_max_kw: 20000}\nversion: 1", 1
    )
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(SiteFileError, match="x-grid: unknown key"):
        load_site(path)  # the anchor parses; only the extra key is refused


def test_submeter_loops_are_refused(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    meters = data["city"]["parks"][0]["buildings"][0]["meters"]
    meters[3]["submeter_of"] = meters[4]["id"]
    meters[4]["submeter_of"] = meters[3]["id"]
    found = problems(data)
    assert found == [
        f"city.parks[0].buildings[0].meters[3].submeter_of: a loop of sub-meters, got "
        f"{meters[3]['id']} → {meters[4]['id']} → {meters[3]['id']}"
    ], found


def test_tariff_names_and_periods_are_checked_with_the_site(example: dict[str, Any]) -> None:
    """A misspelt tariff or period was valid to `sites check` and `sites load`, and failed
    every plan of the park later."""
    data = copy.deepcopy(example)
    data["city"]["parks"][1]["grid"]["tariff"] = "shanghai-2-part"
    data["city"]["parks"][0]["grid"].update(
        tariff="flat", tariff_prices_cny_per_kwh={"flat": 0.5, "peak": 1.0}
    )
    assert problems(data) == [
        "city.parks[0].grid.tariff_prices_cny_per_kwh: unknown period 'peak' for tariff 'flat' "
        "(periods: flat)",
        "city.parks[1].grid.tariff: must be 'shanghai-two-part' or 'flat', got 'shanghai-2-part'",
    ]


def test_the_site_files_tariffs_are_the_planners() -> None:
    from energyhub.optimize.tariffs import TARIFFS
    from energyhub.sites.models import TARIFF_PERIODS

    assert {name: tuple(t.prices_cny_per_kwh) for name, t in TARIFFS.items()} == {
        name: tuple(sorted(periods, key=list(TARIFFS[name].prices_cny_per_kwh).index))
        for name, periods in TARIFF_PERIODS.items()
    }


def test_a_flexible_load_window_may_cross_midnight(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    ev = {"id": "b0-ev", "type": "flexible_load", "power_max_kw": 50, "energy_kwh": 400,
          "window_start_h": 22, "window_end_h": 6}  # fmt: skip
    data["city"]["parks"][0]["buildings"][0]["assets"].append(ev)
    site = parse_site(data, "site.yaml")
    loaded = site.city.parks[0].buildings[0].assets[-1]
    assert loaded.type == "flexible_load" and loaded.overnight and loaded.window_h == 8
    data["city"]["parks"][0]["buildings"][0]["assets"][-1] |= {"energy_kwh": 401}
    data["city"]["parks"][0]["buildings"][0]["assets"].append(
        ev | {"id": "b0-ev2", "window_end_h": 22}
    )
    n = len(data["city"]["parks"][0]["buildings"][0]["assets"])
    assert problems(data) == [
        f"city.parks[0].buildings[0].assets[{n - 2}]: energy_kwh 401 cannot be served at 50 kW "
        "within 8 h",
        f"city.parks[0].buildings[0].assets[{n - 1}]: window_end_h (22) equals window_start_h "
        "(22): a window lasts 1 to 24 hours (a whole day: 0 to 24; an end before the start "
        "crosses midnight)",
    ]


def test_a_flexible_load_window_may_end_at_midnight_written_0(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    ev = {"id": "b0-ev", "type": "flexible_load", "power_max_kw": 50, "energy_kwh": 300,
          "window_start_h": 18, "window_end_h": 0}  # fmt: skip
    data["city"]["parks"][0]["buildings"][0]["assets"].append(ev)
    loaded = parse_site(data, "site.yaml").city.parks[0].buildings[0].assets[-1]
    assert loaded.type == "flexible_load"
    assert (loaded.window_end_h, loaded.window_h, loaded.overnight) == (24, 6, False)
    hours = np.array([0.0, 17.75, 18.0, 23.75])
    assert loaded.inside(hours).tolist() == [False, False, True, True]
    data["city"]["parks"][0]["buildings"][0]["assets"][-1] |= {"window_end_h": -1}
    n = len(data["city"]["parks"][0]["buildings"][0]["assets"])
    assert problems(data) == [
        f"city.parks[0].buildings[0].assets[{n - 1}].window_end_h: must be ≥ 0, got -1"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-150, "must be ≥ -100, got -150"),
        (101.5, "must be ≤ 100, got 101.5"),
        ("zero", "valid number, got 'zero'"),
    ],
)
def test_a_plan_policys_co2_limit_is_checked(
    example: dict[str, Any], value: Any, expected: str
) -> None:
    data = copy.deepcopy(example)
    data["city"]["carbon"]["plan_policy"] = {"max_co2_vs_baseline_pct": value}
    found = problems(data)
    assert len(found) == 1
    assert found[0].startswith("city.carbon.plan_policy.max_co2_vs_baseline_pct: ")
    assert expected in found[0]


def test_a_plan_policy_with_a_co2_limit_alone_loads(example: dict[str, Any]) -> None:
    data = copy.deepcopy(example)
    data["city"]["carbon"]["plan_policy"] = {"max_co2_vs_baseline_pct": -2}
    policy = parse_site(data, "site.yaml").city.carbon.plan_policy
    assert policy is not None
    assert policy.max_co2_vs_baseline_pct == -2.0
    assert policy.max_abatement_cost_cny_per_t is None  # no frontier: one capped solve at most
    data["city"]["carbon"]["plan_policy"] = {}  # no more than the baseline
    policy = parse_site(data, "site.yaml").city.carbon.plan_policy
    assert policy is not None and policy.max_co2_vs_baseline_pct == 0.0


def test_control_characters_in_any_text_are_named(example: dict[str, Any]) -> None:
    """A NUL in a name passed the check, then `sites load` died on PostgreSQL's refusal of NUL in
    text; an escape sequence was stored and printed raw by `sites check`. Both are named now,
    with every other problem of the file."""
    doc = copy.deepcopy(example)
    building = doc["city"]["parks"][0]["buildings"][0]
    building["name"] = "Tower\x00A"
    building["assets"][0]["name"] = "PV \x1b[31mred"
    doc["city"]["parks"][0]["buildings"][1]["floor_area_m2"] = -1
    with pytest.raises(SiteFileError) as caught:
        parse_site(doc)
    assert caught.value.problems == [
        "city.parks[0].buildings[1].floor_area_m2: must be > 0, got -1",
        "city.parks[0].buildings[0].name: must not contain control characters: U+0000 at "
        "position 5, got 'Tower\\x00A'",
        "city.parks[0].buildings[0].assets[0].name: must not contain control characters: "
        "U+001B at position 3, got 'PV \\x1b[31mred'",
    ]
    doc["city"]["parks"][0]["buildings"][1]["floor_area_m2"] = 100
    with pytest.raises(SiteFileError) as caught:
        parse_site(doc)
    assert len(caught.value.problems) == 2
    building["na\x1b[31mme"] = 1  # an unknown key is echoed in its problem: escaped, not raw
    with pytest.raises(SiteFileError) as caught:
        parse_site(doc)
    echoed = "city.parks[0].buildings[0].na\\x1b[31mme: "
    assert any(p.startswith(echoed) for p in caught.value.problems)
    assert not any("\x1b" in p or "\x00" in p for p in caught.value.problems)
    del building["na\x1b[31mme"]
    building["name"] = "Tower A — 楼一 🏢"  # unicode is text, not control
    building["assets"][0]["name"] = None
    assert parse_site(doc).city.parks[0].buildings[0].name == "Tower A — 楼一 🏢"


def test_a_park_main_meter_says_what_it_measures(example: dict[str, Any]) -> None:
    """A park's main electricity meter is its connection (the park whole, its buildings' mains
    parts of it) unless `main_meter: own-loads`; `main_meter` without such a meter is refused."""
    data = copy.deepcopy(example)
    park = data["city"]["parks"][0]
    data["city"]["parks"][0]["main_meter"] = "own-loads"
    assert problems(data) == [
        "city.parks[0].main_meter: own-loads, but expo has no main electricity meter (carrier "
        "electricity, quantity power_kw or energy_kwh, without asset: or submeter_of:); add one "
        "or drop main_meter"
    ]
    park["meters"].append({"id": "main", "carrier": "electricity", "quantity": "power_kw"})
    park["main_meter"] = "whole"
    assert any("main_meter" in p and "'connection' or 'own-loads'" in p for p in problems(data))
    b01 = park["buildings"][0]
    next(m for m in b01["meters"] if m["id"] == "main")["carrier"] = "heat"  # no electricity main
    for declared, connection, unmetered in [
        (None, True, []),
        ("connection", True, []),
        ("own-loads", False, [b01["id"]]),
    ]:
        park.pop("main_meter", None)
        if declared is not None:
            park["main_meter"] = declared
        site = parse_site(data)
        assert site.city.parks[0].measured_at_connection is connection
        assert site.unmetered_electricity("expo") == unmetered
        assert site.unmetered_electricity(site.city.id) == unmetered
        console = Console(width=300, record=True)
        console.print(site_tree(site))  # `sites check` says which it is
        said = "measured at the connection (main)" if connection else "main (own loads) +"
        assert said in console.export_text()
