"""The inputs of a plan: a table indexed by `ts` (regular steps) with `<id>:<quantity>` columns.

Rows are counted from 1 (the first data row) in every message; each also names the step's ts.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from energyhub.bounds import EARLIEST, KG_CO2_PER_KWH_MAX, LATEST, MAGNITUDE_MAX, step_seconds
from energyhub.csv_columns import first_long_row
from energyhub.errors import not_utf8
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.scope import Scope
from energyhub.sites import (
    PV,
    CopFromOutdoor,
    FlexibleLoad,
    GridConnection,
    SiteFile,
    Wind,
    load_taken_as_0,
)
from energyhub.userfiles import read_text

Array = NDArray[np.float64]

NODE_QUANTITIES = (
    "electricity_kw", "heat_kw", "cooling_kw", "hydrogen_kw", "month_peak_kw", "peak_margin_kw",
    "peak_reserve_kw", "demand_target_kw", "unserved_heat_kw", "unserved_cooling_kw",
)  # fmt: skip
RENEWABLE_QUANTITIES = ("available_kw",)
SITE_COLUMNS = {
    "outdoor_c": (-60.0, 60.0),
    "import_price_cny_per_kwh": (-10.0, 10.0),
    "export_price_cny_per_kwh": (-10.0, 10.0),
    "grid_kg_per_kwh": (0.0, KG_CO2_PER_KWH_MAX),  # as the site file's and an hourly series'
}
"""Site-wide columns and their plausible range: a value outside is taken for a unit mistake."""

# A demand is bounded only by the bound on every value a client sends (MAGNITUDE_MAX, 10⁹ kW):
# what the site can supply of a carrier (import, generation, storage, conversion) is the plan's
# to find out; one it cannot meet is infeasible (exit 3) and the diagnosis names the balance, the
# step and the shortfall, asking "is the column in W?" when the shortfall is about 1,000 × what
# could be supplied (energyhub/optimize/diagnose.py).

MONTH_PEAK_LIMIT_FACTOR = 10.0
"""A metered peak import above this many times the connection's import limit is taken for W
instead of kW (demand is judged by the infeasibility diagnosis instead, which sees the supply)."""

RENEWABLE_LIMIT_FACTOR = 1.2
"""Available renewable power above this many times peak_kw is taken for a unit mistake."""

DELIVERED_LIMIT_FACTOR = 10.0
"""A flexible load served more than this many times its energy_kwh in one window is taken for a
unit mistake (a little more than energy_kwh is real: its window then asks for nothing more)."""

_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """Validated inputs: the steps (local time), their length in hours and float columns by name."""

    index: pd.DatetimeIndex
    dt_h: float
    columns: dict[str, Array]

    @property
    def n(self) -> int:
        return len(self.index)

    def get(self, name: str, default: float | None = None) -> Array | None:
        """A column, or `default` repeated, or None."""
        if name in self.columns:
            return self.columns[name]
        return None if default is None else np.full(self.n, default)

    def where(self, row: int) -> str:
        return f"row {row + 1} (ts {self.index[row].isoformat()})"


def _timestamps(raw: pd.Series, tz: ZoneInfo) -> pd.DatetimeIndex:
    """Parse RFC 3339 strings (offsets kept) or naive local times into the site's time zone."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        index = pd.DatetimeIndex(raw)
    else:
        text = raw.astype(str).str.strip()
        blank = np.flatnonzero(raw.isna().to_numpy() | (text == "").to_numpy())
        if blank.size:  # read as NaN, it was named "(nan) has no UTC offset"
            row = int(blank[0])
            raise PlanInputError(f"ts: row {row + 1} is empty", column="ts", row=row + 1)
        has_offset = text.str.contains(_OFFSET)
        if has_offset.any() and not has_offset.all():
            row = int(np.argmin(has_offset.to_numpy()))
            raise PlanInputError(
                f"ts: row {row + 1} ({text.iloc[row]!r}) has no UTC offset while others do",
                column="ts",
                row=row + 1,
            )
        parsed = pd.to_datetime(text, format="ISO8601", utc=bool(has_offset.all()), errors="coerce")
        bad = np.flatnonzero(pd.isna(parsed))
        if bad.size:
            row = int(bad[0])
            raise PlanInputError(
                f"ts: row {row + 1}: not an RFC 3339 time: {text.iloc[row]!r}",
                column="ts",
                row=row + 1,
            )
        index = pd.DatetimeIndex(parsed)
    return _localized(index, tz) if index.tz is None else index.tz_convert(tz)


def _localized(index: pd.DatetimeIndex, tz: ZoneInfo) -> pd.DatetimeIndex:
    """Naive local times in `tz`. Across a daylight-saving change the repeated hour is told apart
    by the order of the rows; a time the clocks skip, or a repeat the order cannot place, is
    bad input naming the row."""
    try:
        return index.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except ValueError as exc:
        reason = str(exc)
    either = np.ones(len(index), dtype=bool)  # a repeated time taken as either: not skipped
    skipped = pd.isna(index.tz_localize(tz, ambiguous=either, nonexistent="NaT"))
    repeated = pd.isna(index.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward"))
    found = [
        (int(np.argmax(rows)), why)
        for rows, why in (
            (skipped, f"does not exist in {tz.key} (the clocks skip it)"),
            (repeated, f"occurs twice in {tz.key} (the clocks go back) and the rows do not "
             "tell which"),
        )
        if rows.any()
    ]  # fmt: skip
    if not found:
        raise PlanInputError(f"ts: the local times cannot be placed in {tz.key}: {reason}")
    row, why = min(found)
    raise PlanInputError(
        f"ts: row {row + 1} ({index[row].isoformat(sep=' ')}) {why}: give every time its UTC "
        "offset (RFC 3339)",
        column="ts",
        row=row + 1,
    )


def _within_years(index: pd.DatetimeIndex) -> None:
    """Every time between EARLIEST and LATEST, checked before any message names a time: a time
    late in year 9999 is in year 10000 in the site's zone, which Timestamp.isoformat (through
    Python's datetime) cannot write; such a one is named in UTC."""
    outside = np.flatnonzero((index < pd.Timestamp(EARLIEST)) | (index >= pd.Timestamp(LATEST)))
    if outside.size:
        row = int(outside[0])
        try:
            shown = index[row].isoformat()
        except (NotImplementedError, ValueError, OverflowError):
            shown = index.tz_convert("UTC")[row].isoformat()
        raise PlanInputError(
            f"ts: row {row + 1} ({shown}): must lie between {EARLIEST:%Y} and {LATEST:%Y}",
            column="ts",
            row=row + 1,
        )


def _step_hours(index: pd.DatetimeIndex) -> float:
    if len(index) < 2:
        raise PlanInputError(
            "ts: at least two rows are needed to tell the step length", column="ts"
        )
    deltas = np.diff(index.as_unit("ns").asi8)
    if deltas[0] <= 0:
        raise PlanInputError("ts: row 2 is not after row 1", column="ts", row=2)
    irregular = np.flatnonzero(deltas != deltas[0])
    if irregular.size:
        row = int(irregular[0]) + 1
        raise PlanInputError(
            f"ts: irregular steps: row {row + 1} ({index[row].isoformat()}) comes "
            f"{pd.Timedelta(int(deltas[row - 1]), 'ns')} after row {row}, the step is "
            f"{pd.Timedelta(int(deltas[0]), 'ns')}",
            column="ts",
            row=row + 1,
        )
    seconds = pd.Timedelta(int(deltas[0]), "ns").total_seconds()
    try:
        step_seconds(seconds)
    except ValueError as exc:
        raise PlanInputError(f"ts: {exc}", column="ts", row=2) from None
    return float(seconds / 3600.0)


def _numbers(frame: pd.DataFrame, index: pd.DatetimeIndex) -> dict[str, Array]:
    columns: dict[str, Array] = {}
    for name in frame.columns:
        raw = frame[name]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            row = int(bad[0])
            shown = raw.iloc[row]
            what = "missing (NaN)" if pd.isna(shown) else f"not a finite number: {shown!r}"
            raise PlanInputError(
                f"{name}: row {row + 1} (ts {index[row].isoformat()}): {what}",
                column=str(name),
                row=row + 1,
            )
        columns[str(name)] = values
    return columns


def _once_each(header: list[object]) -> None:
    """No column twice: pandas would read the second as `<name>.1`, and the error would name a
    column the file does not have."""
    names = [None if name is None or name != name else str(name) for name in header]  # NaN: empty
    twice = next((n for i, n in enumerate(names) if n is not None and n in names[:i]), None)
    if twice is not None:
        raise PlanInputError(
            f"{twice}: the column is given twice in the header (columns "
            f"{names.index(twice) + 1} and {names.index(twice, names.index(twice) + 1) + 1})",
            column=twice,
        )


def _without_unnamed(frame: pd.DataFrame, header: list[object]) -> pd.DataFrame:
    """The frame without header cells left empty (pandas names them `Unnamed: <i>`, a column
    the file does not have): one with nothing under it (a spreadsheet's trailing comma) holds
    no value and is dropped; one holding a value is named by its place in the header."""
    empty = [i for i, name in enumerate(header) if name is None or name != name or name == ""]
    for i in empty:
        cells = frame.iloc[:, i]
        filled = np.flatnonzero(cells.notna().to_numpy())
        if filled.size:
            row = int(filled[0])
            raise PlanInputError(
                f"--inputs: column {i + 1} has no name in the header, but row {row + 1} holds "
                f"{cells.iloc[row]!r} under it: name the column, or remove it",
                row=row + 1,
            )
    return frame.drop(columns=frame.columns[empty])


def read_inputs(source: pd.DataFrame | Path | str, tz: ZoneInfo) -> PlanInputs:
    """Read a CSV (or take a frame) indexed by `ts`; check times, regular steps and numbers."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        if "ts" not in frame.columns:
            frame = frame.rename_axis("ts").reset_index()
    else:
        try:  # decoded here: pandas names a non-UTF-8 byte at its offset in a chunk
            text = read_text(source, encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PlanInputError(f"--inputs: cannot read {source}: {not_utf8(exc)}") from None
        except OSError as exc:  # its strerror says what (str() was "[Errno 22] ...: 'path'")
            why = exc.strerror or str(exc)
            raise PlanInputError(f"--inputs: cannot read {source}: {why}") from None
        if not text.strip():  # pandas said "No columns to parse from file"
            raise PlanInputError(f"--inputs: {source} is empty: give a header with ts and rows")
        long_row = first_long_row(text)
        if long_row is not None:
            row, problem = long_row
            if row == 0:
                raise PlanInputError(f"--inputs: the header is {problem}")
            raise PlanInputError(f"--inputs: row {row}: {problem}", row=row)
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
            first = pd.read_csv(io.StringIO(text), dtype=str, header=None, nrows=1)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise PlanInputError(f"--inputs: cannot read {source}: {exc}") from None
        written = first.iloc[0].tolist()
        _once_each(written)
        frame = _without_unnamed(frame, written)
    if "ts" not in frame.columns:
        header = ",".join(map(str, frame.columns))
        separator = next((c for c in (";", "\t", "|") if c in header), None)
        hint = (
            f": the header {header[:80]!r} is separated by {separator!r}, use commas"
            if (separator)
            else ""
        )
        raise PlanInputError(
            f"the inputs have no ts column (RFC 3339 step start times){hint}", column="ts"
        )
    index = _timestamps(frame["ts"], tz)
    _within_years(index)
    if index.has_duplicates:
        row = int(np.flatnonzero(index.duplicated())[0])
        raise PlanInputError(
            f"ts: row {row + 1} repeats {index[row].isoformat()}", column="ts", row=row + 1
        )
    dt_h = _step_hours(index)
    columns = _numbers(frame.drop(columns="ts"), index)
    return PlanInputs(pd.DatetimeIndex(index, name="ts"), dt_h, columns)


def _required(scope: Scope, site: SiteFile) -> list[str]:
    required: list[str] = []
    for node in scope.nodes:
        if not node.is_building:
            continue
        if not site.unmetered_electricity(node.id):  # else its load is taken as 0, and said so
            required.append(f"{node.id}:electricity_kw")
        required += [f"{node.id}:{c}_kw" for c in ("heat", "cooling") if node.produces(c)]
    for _, asset in scope.assets():
        if isinstance(asset, PV | Wind):
            required.append(f"{asset.id}:available_kw")
        if isinstance(getattr(asset, "cop_from_outdoor", None), CopFromOutdoor):
            required.append("outdoor_c")
    return list(dict.fromkeys(required))


def _check_range(inputs: PlanInputs, name: str, low: float, high: float, why: str) -> None:
    values = inputs.columns[name]
    bad = np.flatnonzero((values < low) | (values > high))
    if bad.size:
        row = int(bad[0])
        raise PlanInputError(
            f"{name}: {inputs.where(row)}: {values[row]:g} is outside [{low:g}, {high:g}] ({why})",
            column=name,
            row=row + 1,
        )


@dataclass(frozen=True, slots=True)
class _Owners:
    """Who a column may belong to: the scope's nodes and renewables, or any id of the site."""

    nodes: frozenset[str]
    renewables: dict[str, PV | Wind]
    flexible: dict[str, FlexibleLoad]
    site_ids: frozenset[str]

    @staticmethod
    def of(site: SiteFile, scope: Scope) -> _Owners:
        ids = {n.id for n in site.nodes()} | {a.id for p in site.city.parks for a in p.assets}
        ids |= {a.id for p in site.city.parks for b in p.buildings for a in b.assets}
        renewables = {a.id: a for _, a in scope.assets() if isinstance(a, PV | Wind)}
        flexible = {a.id: a for _, a in scope.assets() if isinstance(a, FlexibleLoad)}
        return _Owners(frozenset(n.id for n in scope.nodes), renewables, flexible, frozenset(ids))


def month_peak_limit_kw(connection: GridConnection) -> float:
    """The largest month-to-date peak import taken for a connection (MONTH_PEAK_LIMIT_FACTOR)."""
    return connection.import_max_kw * MONTH_PEAK_LIMIT_FACTOR


def _connection(scope: Scope, node: str) -> GridConnection:
    """The connection a node's peak columns are of: a building's own `grid:`, else the scope's."""
    return dict(scope.connections()).get(node, scope.grid)


def _check_column(inputs: PlanInputs, name: str, owners: _Owners, scope: Scope) -> None:
    if name in SITE_COLUMNS:
        low, high = SITE_COLUMNS[name]
        _check_range(inputs, name, low, high, "wrong units?")
        return
    owner, _, quantity = name.rpartition(":")
    renewables = owners.renewables
    if owner in owners.nodes:
        allowed: tuple[str, ...] = NODE_QUANTITIES
    elif owner in renewables:
        allowed = RENEWABLE_QUANTITIES
    elif quantity == "delivered_kwh" and owner in owners.flexible:
        high = owners.flexible[owner].energy_kwh * DELIVERED_LIMIT_FACTOR
        _check_range(
            inputs, name, 0.0, high, "the energy a flexible load was served so far in its open "
            f"window must be ≥ 0 and within its energy_kwh × {DELIVERED_LIMIT_FACTOR:g}; Wh?",
        )  # fmt: skip
        return
    elif owner in owners.site_ids:
        return  # a column for another part of the site: not this plan's business
    else:
        raise PlanInputError(
            f"{name}: unknown column: {owner or name!r} is not a site or asset id of the site file "
            f"and not one of {', '.join(SITE_COLUMNS)}",
            column=name,
        )
    if quantity not in allowed:
        raise PlanInputError(
            f"{name}: wrong quantity or unit for {owner!r}: expected one of "
            f"{', '.join(f'{owner}:{q}' for q in allowed)}",
            column=name,
        )
    if owner in renewables:
        high = renewables[owner].peak_kw * RENEWABLE_LIMIT_FACTOR
        _check_range(inputs, name, 0.0, high, "must be ≥ 0 and within peak_kw; W instead of kW?")
    elif quantity in ("month_peak_kw", "demand_target_kw"):
        high = month_peak_limit_kw(_connection(scope, owner))
        _check_range(
            inputs, name, 0.0, high, "a peak import must be ≥ 0 and within the connection's "
            f"import limit × {MONTH_PEAK_LIMIT_FACTOR:g}; W instead of kW?",
        )  # fmt: skip
    elif quantity in ("peak_margin_kw", "peak_reserve_kw"):
        high = _connection(scope, owner).import_max_kw
        _check_range(
            inputs, name, 0.0, high, "a margin for forecast error must be ≥ 0 and within the "
            "connection's import limit; W instead of kW?",
        )  # fmt: skip
    else:
        _check_range(
            inputs,
            name,
            0.0,
            MAGNITUDE_MAX,
            f"a demand must be ≥ 0 and at most {MAGNITUDE_MAX:g} kW; wrong units?",
        )


def check_inputs(inputs: PlanInputs, site: SiteFile, scope: Scope) -> None:
    """Every column the scope needs is present, and every column is known, in kW and plausible."""
    missing = [c for c in _required(scope, site) if c not in inputs.columns]
    if missing:
        spaced = [
            name for name in inputs.columns if name != name.strip() and name.strip() in missing
        ]
        hint = (
            f"; the header has {', '.join(map(repr, spaced))}: remove the spaces" if spaced else ""
        )
        raise PlanInputError(
            f"the inputs lack column(s) {', '.join(missing)} needed for the {scope.level} "
            f"{scope.id!r}{hint}",
            column=missing[0],
        )
    owners = _Owners.of(site, scope)
    for name in inputs.columns:
        _check_column(inputs, name, owners, scope)


def unmetered_loads(inputs: PlanInputs, site: SiteFile, scope: Scope) -> list[str]:
    """Why buildings of the scope go without an electricity column: with no electricity meter
    their load is taken as 0 (check_inputs does not ask for one), and the plan says so. A park
    with a main electricity meter of its own whose own load (`<park>:electricity_kw`, as the
    scheduler forecasts it: the connection less its buildings' mains, or with `main_meter:
    own-loads` that meter) the inputs leave out is named too."""
    notes = [
        load_taken_as_0(node.id, column_given=False)
        for node in scope.nodes
        if node.is_building
        and f"{node.id}:electricity_kw" not in inputs.columns
        and site.unmetered_electricity(node.id)
    ]
    park = scope.park
    column = f"{park.id}:electricity_kw"
    own_main = any(m.measures_electricity for m in park.meters)
    if scope.level == "park" and own_main and column not in inputs.columns:
        notes.append(
            f"{park.id}: it has a main electricity meter of its own, but the inputs have no "
            f"{column} column: the park's own load beside its buildings' (shared plant, "
            "lighting, losses, buildings without a main meter) is taken as 0, so the planned "
            "import is short of what its meters will read"
        )
    return notes
