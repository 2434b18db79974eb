"""Real measured feeds, shipped inside PyPI packages, turned into records for a replay.

A feed is mapped onto a meter with `SITE/METER=SOURCE[*FACTOR]`:

- `pvanalytics:serf_east_15min_ac_power`, `pvanalytics:system_50_ac_power_2_full_DST` (Parquet,
  needs pyarrow) or another AC power file of `pvanalytics/data/`: NREL's measured PV AC power in
  W; scaled to the metered PV asset's `peak_kw` when no factor is given;
- `citylearn:Building_5[:cooling|heating|dhw|solar]`: CityLearn 2.1.2's measured 2022 hourly
  building loads (`citylearn_challenge_2022_phase_all`, equipment electricity by default), kW;
- `bdew:g25[:ANNUAL_KWH]`: a BDEW standard load profile from demandlib (h25, g25, l25, p25, s25),
  15-min, scaled to the annual energy (default 1,000,000 kWh).

A feed keeps its own clock: each reading is the source's value at the same local clock time on
the same weekday, a whole number of weeks earlier, at the time of year nearest the replayed days
that the source covers (`on_site_clock`): its sun and its working week land where the site's are.
A source shorter than the replayed window keeps its clock only.

These packages form the optional `feeds` extra (CityLearn is installed with `--no-deps`: only its
data files are read). Readings go out as single readings `{"ts": <epoch ms>, "value": ...}`,
a power in kW for power_kw meters and a running counter for energy_kwh meters.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from energyhub.sites import PV, Meter, Park, SiteFile
from simulators.errors import SimulatorInputError
from simulators.record import Record
from simulators.weather import Array

CITYLEARN_COLUMNS = {
    "electricity": "Equipment Electric Power [kWh]",
    "cooling": "Cooling Load [kWh]",
    "heating": "Heating Load [kWh]",
    "dhw": "DHW Heating [kWh]",
    "solar": "Solar Generation [W/kW]",
}
BDEW_PROFILES = ("h25", "g25", "l25", "p25", "s25")
PV_FEED_PEAK_SHARE = 0.9
"""A PV feed scaled onto an asset peaks at this share of the asset's `peak_kw`."""
DATA_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A source names a file of its package's data folder; a path (absolute, or up into a parent
folder) would read any file on the machine, unchecked."""


def _positive(text: str, what: str) -> float:
    """A factor or an annual energy: a finite number above 0 (NaN and inf were published as
    null readings the ingest refused, a negative one as a negative load)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SimulatorInputError(f"{what} must be a finite number above 0, got {text!r}")
    return value


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SimulatorInputError(
            f"feed source needs the Python package {package!r} (the optional `feeds` extra); "
            "it is not installed"
        )
    return Path(spec.origin).parent


@dataclass(frozen=True, slots=True)
class Measured:
    """A measured series on its own local clock: kW from each wall-clock time (naive, the
    source's local time), one step apart."""

    wall: pd.DatetimeIndex
    kw: Array
    step_s: float


CITYLEARN_FIRST_WALL = pd.Timestamp("2022-07-31 23:00")
"""CityLearn 2022's first row is hour 24 (23:00–24:00, local standard time) of Sunday 31 July
2022; its `Day Type` column (1 = Monday) agrees with that calendar."""


def _pvanalytics(name: str) -> Measured:
    """A measured AC power file of pvanalytics/data (CSV, or Parquet with pyarrow), in kW, on
    the clock of its first timestamp's UTC offset (a file without offsets: its own times)."""
    if not DATA_FILE_NAME.fullmatch(name):
        raise SimulatorInputError(
            f"feed pvanalytics:{name}: expected the name of one of its data files (letters, "
            f"digits, '_', '-', '.'), not a path, got {name!r}"
        )
    folder = _package_dir("pvanalytics") / "data"
    csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
    if csv.is_file():
        frame = pd.read_csv(csv).dropna()
    elif parquet.is_file():
        try:
            frame = pd.read_parquet(parquet).dropna()
        except ImportError:
            raise SimulatorInputError(
                f"feed pvanalytics:{name}: reading Parquet needs pyarrow, which is not installed"
            ) from None
    else:
        raise SimulatorInputError(f"feed pvanalytics:{name}: no {name}.csv or .parquet there")
    try:
        stamps = pd.DatetimeIndex(pd.to_datetime(frame.iloc[:, 0], utc=True))
        first = pd.DatetimeIndex(pd.to_datetime(frame.iloc[:1, 0]))[0]
        offset = first.utcoffset() or pd.Timedelta(0)
        step_s = float((stamps[1] - stamps[0]).total_seconds())
        watts = frame.iloc[:, 1].to_numpy(dtype=float)
    except (IndexError, ValueError, TypeError) as exc:
        raise SimulatorInputError(
            f"feed pvanalytics:{name}: not a measured power series (times, then watts): {exc}"
        ) from None
    if not step_s > 0 or not np.isfinite(watts).all():
        raise SimulatorInputError(
            f"feed pvanalytics:{name}: not a measured power series (times, then watts): its "
            f"step is {step_s:g} s or a value is not finite"
        )
    wall = stamps.tz_localize(None) + offset
    return Measured(wall, np.maximum(watts, 0.0) / 1000.0, step_s)


def _citylearn(spec: str) -> Measured:
    building, _, column = spec.partition(":")
    folder = _package_dir("citylearn") / "data" / "citylearn_challenge_2022_phase_all"
    path = folder / f"{building}.csv"
    if (
        not DATA_FILE_NAME.fullmatch(building)
        or not path.is_file()
        or (column or "electricity") not in CITYLEARN_COLUMNS
    ):
        raise SimulatorInputError(
            f"feed citylearn:{spec}: expected Building_1 … Building_17, optionally with :"
            f"{'|'.join(CITYLEARN_COLUMNS)}"
        )
    kw = pd.read_csv(path)[CITYLEARN_COLUMNS[column or "electricity"]].to_numpy(dtype=float)
    wall = pd.date_range(CITYLEARN_FIRST_WALL, periods=len(kw), freq="1h")
    return Measured(wall, kw, 3600.0)


def _bdew(spec: str, first: pd.Timestamp, duration_s: float) -> Measured:
    """The profile over the local years the replayed window touches, on the site's clock."""
    name, _, annual = spec.partition(":")
    if name.lower() not in BDEW_PROFILES:
        raise SimulatorInputError(f"feed bdew:{spec}: expected one of {', '.join(BDEW_PROFILES)}")
    _package_dir("demandlib")
    bdew = importlib.import_module("demandlib.bdew")  # optional: imported when a feed uses it

    annual_kwh = _positive(annual, f"feed bdew:{spec}: annual energy") if annual else 1_000_000.0
    last = first + pd.Timedelta(seconds=duration_s)
    walls, values = [], []
    for year in range(first.year, last.year + 1):
        days = 366 if pd.Timestamp(year=year, month=1, day=1).is_leap_year else 365
        wall = pd.date_range(f"{year}-01-01", periods=days * 96, freq="15min")
        profile = getattr(bdew, name.upper())(wall).to_numpy(dtype=float)
        walls.append(wall)
        values.append(profile / float(profile.mean()) * annual_kwh / 8760.0)
    return Measured(pd.DatetimeIndex(walls[0].append(walls[1:])), np.concatenate(values), 900.0)


def _series(source: str, first: pd.Timestamp, duration_s: float) -> Measured:
    kind, _, rest = source.partition(":")
    if kind == "pvanalytics":
        return _pvanalytics(rest)
    if kind == "citylearn":
        return _citylearn(rest)
    if kind == "bdew":
        return _bdew(rest, first, duration_s)
    raise SimulatorInputError(
        f"--feed: unknown source {source!r} (pvanalytics:, citylearn:, bdew:)"
    )


def _back(series: Measured, first: pd.Timestamp, duration_s: float) -> pd.Timedelta:
    """How far back on the source's local clock the replayed window is read: whole weeks that put
    the window as a whole inside what the source covers, at the time of year nearest the
    window's (the latest such year on a tie); for a source too short for that, the whole days
    that put most of it inside the window (its clock kept, its weekdays not)."""
    day, week = pd.Timedelta(days=1), pd.Timedelta(days=7)
    span = pd.Timedelta(seconds=duration_s - series.step_s)
    w0 = first.tz_localize(None)
    latest = (w0 - series.wall[0]) // week  # the window starting in the source's first week
    earliest = -((series.wall[-1] - (w0 + span)) // week)
    if earliest <= latest:

        def season_gap(k: int) -> int:
            gap = abs((w0 - k * week).day_of_year - w0.day_of_year)
            return min(gap, 365 - gap)

        return min(range(earliest, latest + 1), key=lambda k: (season_gap(k), k)) * week

    def inside(back: pd.Timedelta) -> int:
        return int(((series.wall >= w0 - back) & (series.wall <= w0 + span - back)).sum())

    days = (w0 - series.wall[0]) // day
    return max((days * day, (days + 1) * day), key=inside)


def on_site_clock(series: Measured, first: pd.Timestamp, duration_s: float) -> tuple[Array, Array]:
    """(epoch s, kW) of the readings from `first` (aware, the site's zone): as many source steps
    as `duration_s` holds, on the site's local clock from the first at or after `first`, each
    the source's value at the same local clock time a whole number of weeks (days) earlier
    (`_back`); a time the source has no value for is no reading."""
    freq = pd.Timedelta(seconds=series.step_s)
    t0 = first.ceil(freq, ambiguous=True, nonexistent="shift_forward")
    instants = pd.date_range(t0, periods=int(duration_s // series.step_s), freq=freq)
    back = _back(series, first, duration_s)
    source = pd.Series(series.kw, index=series.wall)
    source = source[~source.index.duplicated()]  # a repeated fall-back hour: its first
    kw = source.reindex(instants.tz_localize(None) - back).to_numpy(dtype=np.float64)
    found = np.isfinite(kw)
    epoch = instants.as_unit("ms").asi8[found] / 1000.0
    return epoch.astype(np.float64), np.asarray(kw[found], dtype=np.float64)


def _meter(site: SiteFile, ref: str) -> tuple[Park, str, Meter]:
    site_id, _, meter_id = ref.partition("/")
    for park, owner in site.metered_sites():
        if owner.id == site_id:
            meter = next((m for m in owner.meters if m.id == meter_id), None)
            if meter is None:
                raise SimulatorInputError(f"--feed {ref}: no meter {meter_id!r} in {site_id}")
            if meter.quantity not in ("power_kw", "energy_kwh"):
                raise SimulatorInputError(
                    f"--feed {ref}: a feed of power fits power_kw or energy_kwh meters, "
                    f"not {meter.quantity}"
                )
            return park, site_id, meter
    raise SimulatorInputError(f"--feed {ref}: {site.not_park_or_building(site_id)}")


def _scale(site: SiteFile, meter: Meter, values: Array, factor: str | None, ref: str) -> Array:
    if factor is not None:
        return values * _positive(factor, f"--feed {ref}: factor")
    assets = [a for _, owner in site.metered_sites() for a in owner.assets]
    pv = next((a for a in assets if a.id == meter.asset and isinstance(a, PV)), None)
    if pv is not None and values.max() > 0:
        scaled: Array = values / values.max() * pv.peak_kw * PV_FEED_PEAK_SHARE
        return scaled
    return values


def feed_records(
    site: SiteFile, mappings: list[str], start: datetime | None, duration_s: float, prefix: str
) -> list[Record]:
    """Records of every mapped feed from `start` (default: so that the feeds end now), each on
    the site's local clock (`on_site_clock`)."""
    end = datetime.now(site.tz)
    first = pd.Timestamp(start or end - timedelta(seconds=duration_s)).tz_convert(site.tz)
    records = []
    for mapping in mappings:
        ref, sep, source = mapping.partition("=")
        if not sep:
            raise SimulatorInputError(f"--feed: expected SITE/METER=SOURCE, got {mapping!r}")
        park, site_id, meter = _meter(site, ref.strip())
        source, _, factor = source.strip().partition("*")
        series = _series(source, first, duration_s)
        epoch, values = on_site_clock(series, first, duration_s)
        if not len(values):
            raise SimulatorInputError(
                f"--feed {ref}: {source} has no value in --duration ({duration_s:g} s; its "
                f"step is {series.step_s:g} s)"
            )
        values = _scale(site, meter, values, factor or None, ref)
        if meter.quantity == "energy_kwh":
            values = np.cumsum(values * series.step_s / 3600.0)
        topic = f"{prefix.rstrip('/')}/{park.id}/{site_id}/{meter.id}"
        for t, value in zip(epoch.tolist(), np.round(values, 3).tolist(), strict=True):
            payload = orjson.dumps({"ts": round(t * 1000), "value": value})
            records.append(Record(t, topic, payload))
    records.sort(key=lambda r: r.t)
    return records
