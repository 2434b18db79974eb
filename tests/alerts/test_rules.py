"""Rules: class defaults, declared overrides, and clear errors for bad rules on site-file load."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from energyhub.alerts.checks import LimitCheck, NightBaseCheck, Snapshot, SocCheck
from energyhub.alerts.debounce import Change, Debounce
from energyhub.alerts.rules import LimitRule, effective
from energyhub.errors import SiteFileError
from energyhub.sites import parse_site

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def site_with(
    example_site_path: Path,
    building: dict[str, Any] | None = None,
    park: dict[str, Any] | None = None,
) -> Any:
    data = yaml.safe_load(example_site_path.read_text())
    if building is not None:
        data["city"]["parks"][0]["buildings"][0]["alerts"] = building
    if park is not None:
        data["city"]["parks"][0]["alerts"] = park
    return data


def problems(data: Any) -> list[str]:
    with pytest.raises(SiteFileError) as info:
        parse_site(data, "site.yaml")
    return info.value.problems


def test_class_defaults_and_overrides(example_site_path: Path) -> None:
    site = parse_site(
        site_with(
            example_site_path,
            {"limit": {"share": 0.8, "limit_kw": 5000}, "silence": {"intervals": 2}},
        )
    )
    b01 = site.city.parks[0].buildings[0]
    limit = effective("office-A", b01.alerts, "limit")
    assert isinstance(limit, LimitRule) and limit.share == 0.8 and limit.for_min == 5
    assert effective("data-center", None, "night_base") is None  # round-the-clock load
    assert effective("data-center", None, "limit").share == 0.85  # type: ignore[union-attr]
    assert effective("office-A", None, "ingest") is None  # parks only
    assert effective("park", None, "ingest") is not None


@pytest.mark.parametrize(
    ("building", "park", "expected"),
    [
        ({"silence": {"meters": ["main", "nope"]}}, None,
         "city.parks[0].buildings[0].alerts.silence.meters[1]: no meter 'nope' in b01"),
        ({"soc": {"assets": ["b01-pv"]}}, None,
         "city.parks[0].buildings[0].alerts.soc.assets[0]: no battery 'b01-pv' in b01"),
        ({"limit": {"share": 1.5}}, None, "city.parks[0].buildings[0].alerts.limit.share: must be ≤ 1, got 1.5"),
        ({"limit": {"for_min": -1}}, None, "alerts.limit.for_min: must be ≥ 0, got -1"),
        ({"night_base": {"start_h": 5}}, None, "alerts.night_base: start_h and end_h must differ, both are 5"),
        ({"ingest": {"max_lag_s": 60}}, None, "alerts.ingest: applies to parks only, not building 'b01'"),
        ({"limit": {"share": 0.9}}, None, "b01 has no grid connection of its own: give limit_kw"),
        ({"silense": {}}, None, "alerts.silense: unknown key"),
        (None, {"ingest": {"max_rejects_per_min": -3}}, "city.parks[0].alerts.ingest.max_rejects_per_min"),
    ],
)  # fmt: skip
def test_bad_rules_are_clear_errors(
    example_site_path: Path, building: Any, park: Any, expected: str
) -> None:
    found = problems(site_with(example_site_path, building, park))
    assert any(expected in p for p in found), found


def test_debounce_needs_hold_and_clear() -> None:
    d = Debounce(for_s=60, clear_s=30)
    assert d.step(T0, True) is None
    assert d.step(T0 + timedelta(seconds=59), True) is None
    assert d.step(T0 + timedelta(seconds=60), True) is Change.OPEN
    assert d.step(T0 + timedelta(seconds=61), False) is None
    assert d.step(T0 + timedelta(seconds=70), True) is None  # back: the clearing restarts
    assert d.step(T0 + timedelta(seconds=80), False) is None
    assert d.step(T0 + timedelta(seconds=100), None) is None  # unknown changes nothing
    assert d.step(T0 + timedelta(seconds=110), False) is Change.CLOSE


def snap(now: datetime, **kw: Any) -> Snapshot:
    return Snapshot(now, T0, kw.get("latest", {}), kw.get("power", {}), {}, kw.get("buckets", {}))


def test_limit_hysteresis_and_soc_window() -> None:
    check = LimitCheck((1, 2), limit_kw=1000, share=0.9, hysteresis=0.05)
    assert check.observe(snap(T0, power={1: 500.0, 2: 401.0}), False).active  # type: ignore[union-attr]
    assert check.observe(snap(T0, power={1: 500.0, 2: 360.0}), True).active  # type: ignore[union-attr]
    assert not check.observe(snap(T0, power={1: 500.0, 2: 350.0}), True).active  # type: ignore[union-attr]
    assert check.observe(snap(T0), False) is None
    soc = SocCheck(7, "b01-bess", 10, 90, 1)
    assert soc.observe(snap(T0, latest={7: (T0, 9.5)}), False).active  # type: ignore[union-attr]
    assert soc.observe(snap(T0, latest={7: (T0, 10.5)}), True).active  # type: ignore[union-attr]
    assert not soc.observe(snap(T0, latest={7: (T0, 11.5)}), True).active  # type: ignore[union-attr]


def test_night_base_learns_usual_and_flags_a_high_night() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    check = NightBaseCheck("b01", tz, 0, 5, margin=0.25, min_nights=2)
    day0 = datetime(2026, 11, 20, tzinfo=tz)
    for night, level in enumerate([100.0, 110.0, 200.0]):
        start = day0 + timedelta(days=night)
        buckets = [(start + timedelta(minutes=15 * i), level) for i in range(24)]  # 00:00-06:00
        seen = check.observe(snap(start, buckets={"b01": buckets}), False)
    assert check.nights == 3
    assert seen is not None and seen.active
    assert seen.values["usual_kw"] == pytest.approx(105.0)
    assert check.state() == {"usual_kw": pytest.approx(105 + 95 / 3), "nights": 3}
