"""Real measured feeds, shipped inside PyPI packages, turned into records for a replay.

A feed is mapped onto a meter with `SITE/METER=SOURCE[*FACTOR]`:

- `pvanalytics:serf_east_15min_ac_power`, `pvanalytics:system_50_ac_power_2_full_DST` (Parquet,
  needs pyarrow) or another AC power file of `pvanalytics/data/`: NREL's measured PV AC power in
  W; scaled to the metered PV asset's `peak_kw` when no factor is given;
- `citylearn:Building_5[:cooling|heating|dhw|solar]`: CityLearn 2.1.2's measured 2022 hourly
  building loads (`citylearn_challenge_2022_phase_all`, equipment electricity by default), kW;
- `bdew:g25[:ANNUAL_KWH]`: a BDEW standard load profile from demandlib (h25, g25, l25, p25, s25),
  15-min, scaled to the annual energy (default 1,000,000 kWh).

These packages form the optional `feeds` extra (CityLearn is installed with `--no-deps`: only its
data files are read). Readings go out as single readings `{"ts": <epoch ms>, "value": ...}`,
a power in kW for power_kw meters and a running counter for energy_kwh meters.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
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


def _pvanalytics(name: str) -> tuple[Array, float]:
    """A measured AC power file of pvanalytics/data (CSV, or Parquet with pyarrow), in kW."""
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
        stamps = pd.to_datetime(frame.iloc[:2, 0], utc=True)
        step_s = float((stamps.iloc[1] - stamps.iloc[0]).total_seconds())
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
    return np.maximum(watts, 0.0) / 1000.0, step_s


def _citylearn(spec: str) -> tuple[Array, float]:
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
    frame = pd.read_csv(path)
    return frame[CITYLEARN_COLUMNS[column or "electricity"]].to_numpy(dtype=float), 3600.0


def _bdew(spec: str, start: datetime, duration_s: float) -> tuple[Array, float]:
    name, _, annual = spec.partition(":")
    if name.lower() not in BDEW_PROFILES:
        raise SimulatorInputError(f"feed bdew:{spec}: expected one of {', '.join(BDEW_PROFILES)}")
    _package_dir("demandlib")
    bdew = importlib.import_module("demandlib.bdew")  # optional: imported when a feed uses it

    annual_kwh = _positive(annual, f"feed bdew:{spec}: annual energy") if annual else 1_000_000.0
    year = pd.date_range(f"{start.year}-01-01", periods=365 * 96, freq="15min")
    profile = getattr(bdew, name.upper())(year)
    mean_w = float(profile.mean())
    steps = int(duration_s // 900)
    offset = int((start.timetuple().tm_yday - 1) * 96 + start.hour * 4 + start.minute // 15)
    values = np.resize(profile.to_numpy(dtype=float), offset + steps)[offset:]
    return values / mean_w * annual_kwh / 8760.0, 900.0


def _series(source: str, start: datetime, duration_s: float) -> tuple[Array, float]:
    kind, _, rest = source.partition(":")
    if kind == "pvanalytics":
        return _pvanalytics(rest)
    if kind == "citylearn":
        return _citylearn(rest)
    if kind == "bdew":
        return _bdew(rest, start, duration_s)
    raise SimulatorInputError(
        f"--feed: unknown source {source!r} (pvanalytics:, citylearn:, bdew:)"
    )


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
    """Records of every mapped feed from `start` (default: so that the feeds end now)."""
    end = datetime.now(site.tz)
    first = start or end - timedelta(seconds=duration_s)
    records = []
    for mapping in mappings:
        ref, sep, source = mapping.partition("=")
        if not sep:
            raise SimulatorInputError(f"--feed: expected SITE/METER=SOURCE, got {mapping!r}")
        park, site_id, meter = _meter(site, ref.strip())
        source, _, factor = source.strip().partition("*")
        values, step_s = _series(source, first, duration_s)
        values = values[: int(duration_s // step_s)]
        if not len(values):
            raise SimulatorInputError(
                f"--feed {ref}: {source} has no value in --duration ({duration_s:g} s; its "
                f"step is {step_s:g} s)"
            )
        values = _scale(site, meter, values, factor or None, ref)
        if meter.quantity == "energy_kwh":
            values = np.cumsum(values * step_s / 3600.0)
        topic = f"{prefix.rstrip('/')}/{park.id}/{site_id}/{meter.id}"
        epoch = first.timestamp() + np.arange(len(values)) * step_s
        for t, value in zip(epoch.tolist(), np.round(values, 3).tolist(), strict=True):
            payload = orjson.dumps({"ts": round(t * 1000), "value": value})
            records.append(Record(t, topic, payload))
    records.sort(key=lambda r: r.t)
    return records
