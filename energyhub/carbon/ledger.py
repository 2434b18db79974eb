"""The ledger: every meter's interval energy turned into energy, emissions and cost columns.

One row per meter and bucket from `meter_series`, whose `energy_kwh` is the store's one answer
(each reading's step from the one before: counters with rollover and reset handling, power
readings over at most their nominal interval — docs/meter-data.md), so the report's energy is
the load route's and every step's. Buckets without data are absent and stay absent: nothing
is interpolated, coverage says what is missing. Every column is additive, so any sum of rows
(a day, a month, a tenant) is itself a ledger, and tenant shares add up to their building: once
every step is netted, the ledger keeps one row per account, meter and local day (`KEYS`). Each
account nets on its own connection: a park's report reads its buildings' lines from their own
accounts (their own meters, as their own reports do), so they need not add up to the park.

Electricity bought is import only (GHG Protocol Scope 2 Guidance: purchased electricity; an
export is not netted against it). Meters on one connection net within a step (a park's PV supplies
its buildings), but a step in which a connection's meters sum to a net export bought nothing:
`_exports` adds rows that bring that step's electricity, its Scope 2 and its import cost to 0,
record the export in `exported_kwh`, and credit it at the connection's
`export_price_cny_per_kwh` in `export_credit_cny` (≤ 0), never at the import price.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from energyhub.carbon.factors import SiteFactors
from energyhub.carbon.tree import MeterInfo, MeterRole, SiteTree
from energyhub.optimize.tariffs import import_prices

SITE = "site"
"""The account of a park's or city's own ledger (every meter of it); other accounts are a
building's (`building|b`) or a tenant's (`tenant|b|e`)."""

ENERGY = ("electricity_kwh", "heat_kwh", "cooling_kwh", "gas_kwh", "pv_kwh", "generation_kwh")
EMISSIONS = (
    "scope1_kg",
    "scope2_electricity_kg",
    "scope2_heat_kg",
    "scope2_cooling_kg",
    "avoided_kg",
)
COSTS = ("electricity_cny", "export_credit_cny", "gas_cny", "heat_cny", "cooling_cny", "carbon_cny")
COLUMNS = (
    *ENERGY,
    "exported_kwh",
    *EMISSIONS,
    "grid_series_kwh",
    "electricity_moved_kwh",
    "heat_purchased_kwh",
    "cooling_purchased_kwh",
    *COSTS,
)
"""The ledger's additive columns; `grid_series_kwh` is electricity priced by an hourly series,
`electricity_moved_kwh` each step's |electricity_kwh| (the share the series priced is of it: a
day's sum nets its steps), `exported_kwh` what a connection sent to the grid (never part of
`electricity_kwh`)."""

KEYS = ["account", "site_id", "meter_id", "day"]
"""A ledger row's: every column is additive, so the steps' rows, once each step is netted, are
summed to one row per account, meter and local day, all that reports read."""

HOUR = "datetime64[ns, UTC]"
PURCHASED = ("heat_purchased", "cooling_purchased")
WINDOW = ("since", "until")
ROLE_FIELDS = tuple(f.name for f in fields(MeterRole) if f.name not in (*PURCHASED, *WINDOW))


def roles_frame(tree: SiteTree, entries: list[tuple[str, MeterInfo, MeterRole]]) -> pd.DataFrame:
    """One row per (account, meter): the account it adds to, its site and its role weights."""
    rows = [
        {
            "account": account,
            "meter_id": meter.id,
            "site_id": meter.site_id,
            **{f"w_{name}": getattr(role, name) for name in ROLE_FIELDS},
            "heat_purchased": float(role.heat_purchased),
            "cooling_purchased": float(role.cooling_purchased),
            "since": role.since,
            "until": role.until,
        }
        for account, meter, role in entries
    ]
    columns = [
        "account", "meter_id", "site_id", *(f"w_{n}" for n in ROLE_FIELDS), *PURCHASED, *WINDOW,
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for name in WINDOW:
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def _site_values(factors: dict[str, SiteFactors], tree: SiteTree) -> pd.DataFrame:
    """Per site: yearly factors, carbon price, grid series name, gas price per kWh."""
    rows = []
    for site_id, f in factors.items():
        park = tree.park_of(site_id)
        gas = park.gas if park is not None else None
        rows.append(
            {
                "site_id": site_id,
                "grid_f": f.grid_kg_per_kwh,
                "gas_f": f.gas_kg_per_kwh,
                "heat_f": f.heat_kg_per_kwh,
                "cooling_f": f.cooling_kg_per_kwh,
                "heat_cny_per_kwh": f.heat_price_cny_per_kwh,
                "cooling_cny_per_kwh": f.cooling_price_cny_per_kwh,
                "price_t": f.price_cny_per_t,
                "series": f.grid_series,
                "gas_cny_per_kwh": gas.price_cny_per_nm3 / gas.lhv_kwh_per_nm3 if gas else 0.0,
            }
        )
    return pd.DataFrame(rows).set_index("site_id")


SERIES_HOUR = pd.Timedelta(hours=1)
"""A series value holds for the hour from its `ts`: a UTC hour, or a local one where the zone is
off the UTC hour (India's start at :30 UTC), whichever the series was written in."""


def _grid_factor(rows: pd.DataFrame, intensity: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each row's grid factor (the series value whose hour holds the row's step, where there is
    one) and whether it had one."""
    keys = pd.DataFrame(
        {
            "series": rows["series"].fillna("").astype(str),
            "hour": rows["bucket"].dt.tz_convert("UTC").astype(HOUR),
            "row": np.arange(len(rows)),
        }
    ).sort_values("hour", kind="stable")
    values = intensity.astype({"series": str, "hour": HOUR, "kg_per_kwh": "float64"})
    matched = pd.merge_asof(
        keys,
        values.sort_values("hour", kind="stable"),
        on="hour",
        by="series",
        direction="backward",
        tolerance=SERIES_HOUR - pd.Timedelta(1, "ns"),
    )
    hourly = pd.Series(
        matched["kg_per_kwh"].to_numpy(), index=matched["row"].to_numpy()
    ).sort_index()
    hourly.index = rows.index
    return hourly.fillna(rows["grid_f"]), hourly.notna()


def _prices(rows: pd.DataFrame, tree: SiteTree, timezone: str) -> pd.Series:
    """Each row's electricity import price from its site's tariff, by local month and hour."""
    prices = np.zeros(len(rows))
    where, buckets = pd.factorize(rows["bucket"])
    local = pd.DatetimeIndex(buckets).tz_convert(timezone)
    by_grid: dict[int, np.ndarray] = {}  # a park's buildings share its connection's tariff
    for site_id, index in rows.groupby("site_id").indices.items():
        grid = tree.grid_connection(str(site_id))
        if grid is not None:
            if id(grid) not in by_grid:
                by_grid[id(grid)] = import_prices(grid, local)
            prices[index] = by_grid[id(grid)][where[index]]
    return pd.Series(prices, index=rows.index)


def _connections(rows: pd.DataFrame, tree: SiteTree) -> tuple[np.ndarray, list[str]]:
    """Per row, the connection its electricity passes (an index), and per connection the site
    whose grid it is: a building's or tenant's own account (its building), and in a park's or
    city's ledger the park of the row's site (a park is one network behind its connection),
    else the site itself."""
    accounts, account_names = pd.factorize(rows["account"])
    sites, site_names = pd.factorize(rows["site_id"])
    pair_index, pairs = pd.factorize(accounts * len(site_names) + sites)  # hashed, not sorted
    labels: dict[tuple[str, str], int] = {}
    grid_sites: list[str] = []
    of_pair = np.empty(len(pairs), dtype=np.int64)
    for i, pair in enumerate(pairs.tolist()):
        account, site = (
            str(account_names[pair // len(site_names)]),
            str(site_names[pair % len(site_names)]),
        )
        if account == SITE:
            park = tree.park_of(site)
            site = park.id if park is not None else site
        of_pair[i] = labels.setdefault((account, site), len(labels))
        if of_pair[i] == len(grid_sites):
            grid_sites.append(site)
    return of_pair[pair_index], grid_sites


def _export_price(tree: SiteTree, site_id: str) -> float:
    """What the connection of `site_id` is paid per kWh exported (0 without a grid)."""
    grid = tree.grid_connection(site_id)
    return grid.export_price_cny_per_kwh if grid is not None else 0.0


def _exports(rows: pd.DataFrame, tree: SiteTree) -> pd.DataFrame:
    """Rows that take each net export step of a connection back to 0 bought, 0 kg and 0 import
    cost, on the rows that supplied the step (those with negative electricity, in proportion to
    it): the export in `exported_kwh`, credited at the export price."""
    connection, grid_sites = _connections(rows, tree)
    buckets, bucket_names = pd.factorize(rows["bucket"])
    step = connection * max(len(bucket_names), 1) + buckets  # one key per connection and step
    where, _ = pd.factorize(step)

    def step_sum(values: np.ndarray) -> np.ndarray:
        """Each row's connection-and-step total of `values`."""
        return np.bincount(where, weights=values)[where]

    electricity = rows["electricity_kwh"].to_numpy(dtype=np.float64)
    net = step_sum(electricity)
    supply = np.minimum(electricity, 0.0)
    supplied = step_sum(supply)
    taken = (net < 0) & (supply < 0)
    share = supply[taken] / supplied[taken]
    fix: pd.DataFrame = rows.loc[
        taken, ["account", "site_id", "meter_id", "bucket", "price_t"]
    ].copy()
    for column in (*ENERGY, *EMISSIONS, "grid_series_kwh", "heat_purchased_kwh",
                   "cooling_purchased_kwh", *COSTS):  # fmt: skip
        fix[column] = 0.0
    exported = -net[taken] * share
    fix["electricity_kwh"] = exported
    fix["exported_kwh"] = exported
    priced = rows.loc[taken, "grid_series_kwh"].to_numpy() > 0  # the supplying row's hour had one
    fix["grid_series_kwh"] = np.where(priced, exported, 0.0)
    for column in ("scope2_electricity_kg", "electricity_cny"):
        fix[column] = -step_sum(rows[column].to_numpy(dtype=np.float64))[taken] * share
    prices = np.array([_export_price(tree, site) for site in grid_sites])
    fix["export_credit_cny"] = -exported * prices[connection[taken]]
    return fix


def build_ledger(
    series: pd.DataFrame,
    roles: pd.DataFrame,
    factors: dict[str, SiteFactors],
    intensity: pd.DataFrame,
    tree: SiteTree,
) -> pd.DataFrame:
    """Ledger rows (KEYS + COLUMNS) from per-meter series: netted on their steps, then summed
    per day (a park's year is 1.5 million 15-min rows, 15,000 days)."""
    timezone = tree.timezone(next(iter(factors))) if factors else "UTC"
    rows = series.dropna(subset=["energy_kwh"]).merge(roles, on="meter_id")
    inside = (rows["since"].isna() | (rows["bucket"] >= rows["since"])) & (
        rows["until"].isna() | (rows["bucket"] < rows["until"])
    )
    rows = rows[inside].drop(columns=list(WINDOW))
    rows = rows.join(_site_values(factors, tree), on="site_id").reset_index(drop=True)
    kwh = rows["energy_kwh"]
    for name in ROLE_FIELDS:
        rows[f"{name}_kwh"] = kwh * rows[f"w_{name}"]
    grid_f, priced = _grid_factor(rows, intensity)
    rows["grid_series_kwh"] = rows["electricity_kwh"].abs().where(priced, 0.0)
    rows["heat_purchased_kwh"] = rows["heat_kwh"] * rows["heat_purchased"]
    rows["scope1_kg"] = rows["gas_kwh"] * rows["gas_f"]
    rows["scope2_electricity_kg"] = rows["electricity_kwh"] * grid_f
    rows["scope2_heat_kg"] = rows["heat_purchased_kwh"] * rows["heat_f"]
    rows["cooling_purchased_kwh"] = rows["cooling_kwh"] * rows["cooling_purchased"]
    rows["scope2_cooling_kg"] = rows["cooling_purchased_kwh"] * rows["cooling_f"]
    rows["heat_cny"] = rows["heat_purchased_kwh"] * rows["heat_cny_per_kwh"]
    rows["cooling_cny"] = rows["cooling_purchased_kwh"] * rows["cooling_cny_per_kwh"]
    rows["avoided_kg"] = rows["pv_kwh"] * grid_f
    rows["electricity_cny"] = rows["electricity_kwh"] * _prices(rows, tree, timezone)
    rows["gas_cny"] = rows["gas_kwh"] * rows["gas_cny_per_kwh"]
    rows["exported_kwh"] = 0.0
    rows["export_credit_cny"] = 0.0
    fix = _exports(rows, tree)
    days = pd.concat([_by_day(rows, timezone), _by_day(fix, timezone)], ignore_index=True)
    return days.groupby(KEYS, sort=False, as_index=False)[list(COLUMNS)].sum()


def _by_day(rows: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Ledger rows of one step each summed per KEYS, once they have their carbon cost."""
    emitted = (
        rows["scope1_kg"]
        + rows["scope2_electricity_kg"]
        + rows["scope2_heat_kg"]
        + rows["scope2_cooling_kg"]
    )
    rows["carbon_cny"] = emitted * rows["price_t"] / 1000.0
    rows["electricity_moved_kwh"] = rows["electricity_kwh"].abs()
    steps, buckets = pd.factorize(rows["bucket"])  # 35,040 steps a year, 1.5M rows a park
    rows["day"] = pd.DatetimeIndex(buckets).tz_convert(timezone).date[steps]
    return rows.groupby(KEYS, sort=False, as_index=False)[list(COLUMNS)].sum()


def daily(ledger: pd.DataFrame) -> pd.DataFrame:
    """Column sums per local day (index: day)."""
    return ledger.groupby("day")[list(COLUMNS)].sum()


def by_site(ledger: pd.DataFrame, site_of: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Daily ledgers per group of sites: `site_of` maps a meter's site to the group it adds to."""
    groups = ledger["site_id"].map(site_of)
    return {str(group): daily(part) for group, part in ledger.groupby(groups, sort=False)}


def empty_daily() -> pd.DataFrame:
    return pd.DataFrame(columns=list(COLUMNS), dtype=np.float64)
