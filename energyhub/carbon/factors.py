"""Emission factors: the published defaults, and the factors a site uses for a given year.

A site's factors come from the site file: the city's `carbon` (flat values, `factors_by_year`,
`grid_series`, `price_cny_per_t`), overridden by its park's and then its building's `carbon`.
For each factor the most specific site wins; within a site a year entry beats the flat value. The
year used is the period's year if some site of the chain lists it, else the latest earlier listed
year (published factors lag the year they describe by about two years), else none (flat values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from energyhub.carbon.errors import UnknownFactorYearError
from energyhub.sites import CarbonFactors, CarbonOverride, YearFactors

KWH_PER_GJ = 1000 / 3.6


@dataclass(frozen=True, slots=True)
class EmissionFactor:
    """A published emission factor with its unit, the year it describes and its source."""

    value: float
    unit: str
    year: int
    source: str


GRID_NATIONAL_2023 = EmissionFactor(
    0.5306,
    "kg CO2/kWh",
    2023,
    "MEE & NBS, 关于发布2023年电力二氧化碳排放因子的公告: national average",
)
"""Grid electricity, national average 2023: 0.5306 kg CO₂/kWh (MEE & NBS); the default."""

GRID_NATIONAL_2022 = EmissionFactor(
    0.5366,
    "kg CO2/kWh",
    2022,
    "MEE & NBS: national average 2022, as quoted in the 2023 announcement",
)
"""Grid electricity, national average 2022: 0.5366 kg CO₂/kWh (MEE & NBS)."""

GRID_EAST_CHINA_2023 = EmissionFactor(
    0.5500,
    "kg CO2/kWh",
    2023,
    "MEE & NBS, 关于发布2023年电力二氧化碳排放因子的公告: East China grid average",
)
"""Grid electricity, East China (Shanghai's region) 2023: 0.5500 kg CO₂/kWh (MEE & NBS)."""

GAS_PER_NM3 = EmissionFactor(
    2.162,
    "kg CO2/Nm3",
    2015,
    "China GHG accounting guidelines default: LHV 38.931 GJ/10³Nm³, 15.3 tC/TJ, oxidation 99 %",
)
"""Natural gas ≈ 2.16 kg CO₂/Nm³ (LHV 389.31 GJ/10⁴Nm³ × 15.3 tC/TJ × 99 % × 44/12)."""

GAS_PER_KWH = EmissionFactor(
    0.202,
    "kg CO2/kWh",
    2006,
    "IPCC 2006 Guidelines vol. 2 table 2.2: natural gas 56,100 kg CO2/TJ (LHV)",
)
"""Natural gas ≈ 0.202 kg CO₂/kWh of LHV energy (IPCC 56.1 t/TJ; 2.162 kg/Nm³ ÷ 10.81 ≈ 0.200)."""

HEAT_PER_GJ = EmissionFactor(
    0.11, "t CO2/GJ", 2015, "China GHG accounting guidelines default for purchased heat"
)
"""Purchased heat 0.11 t CO₂/GJ (China's GHG accounting guidelines default for heat supply)."""

HEAT_PER_KWH = EmissionFactor(
    HEAT_PER_GJ.value * 1000 / KWH_PER_GJ, "kg CO2/kWh", HEAT_PER_GJ.year, HEAT_PER_GJ.source
)
"""Purchased heat 0.11 t/GJ expressed per kWh: 0.396 kg CO₂/kWh."""

PUBLISHED: tuple[tuple[str, EmissionFactor], ...] = (
    ("grid_kg_per_kwh", GRID_NATIONAL_2023),
    ("grid_kg_per_kwh", GRID_NATIONAL_2022),
    ("grid_kg_per_kwh", GRID_EAST_CHINA_2023),
    ("gas_kg_per_kwh", GAS_PER_KWH),
    ("heat_kg_per_kwh", HEAT_PER_KWH),
)
"""Published factors by the site-file key they can stand for; reports cite them by value."""

FACTOR_KEYS = ("grid_kg_per_kwh", "gas_kg_per_kwh", "heat_kg_per_kwh", "cooling_kg_per_kwh")
NOT_DECLARED = "not declared"
"""The source of a factor no site of the chain sets (bought cooling has no published default)."""


@dataclass(frozen=True, slots=True)
class SiteFactors:
    """The factors, carbon price and grid series one site uses for one period."""

    grid_kg_per_kwh: float
    gas_kg_per_kwh: float
    heat_kg_per_kwh: float
    price_cny_per_t: float
    factor_year: int | None
    grid_series: str | None
    sources: dict[str, str] = field(default_factory=dict)
    cooling_kg_per_kwh: float = 0.0
    heat_price_cny_per_kwh: float = 0.0
    cooling_price_cny_per_kwh: float = 0.0
    """Per factor key, the site-file entry it came from (or the published default it is)."""

    def value(self, key: str) -> float:
        """A factor by its site-file key."""
        return float(getattr(self, key))


def source_of(key: str, value: float) -> str:
    """The published factor a configured value matches, else `site file`."""
    for published_key, factor in PUBLISHED:
        if published_key == key and abs(factor.value - value) < 5e-5:
            return f"{factor.value:g} {factor.unit}, {factor.year}: {factor.source}"
    return "site file"


def known_years(chain: Sequence[CarbonFactors | CarbonOverride]) -> list[int]:
    """Every year some site of the chain lists in `factors_by_year`."""
    return sorted({year for node in chain for year in node.factors_by_year})


def choose_year(
    chain: Sequence[CarbonFactors | CarbonOverride], year: int, explicit: bool
) -> int | None:
    """The factor year for a period of `year`, or the explicitly requested year if it is known."""
    years = known_years(chain)
    if explicit:
        if year not in years:
            raise UnknownFactorYearError(year, years)
        return year
    earlier = [y for y in years if y <= year]
    return earlier[-1] if earlier else None


def _pick(
    chain: Sequence[CarbonFactors | CarbonOverride],
    labels: Sequence[str],
    key: str,
    year: int | None,
) -> tuple[float, str]:
    """The most specific site's year entry, else its flat value, for `key` (0 if none has one),
    and where it came from: a year entry is cited as itself (its value may match a published
    factor of another year); a flat value as the published factor it equals, else its entry."""
    for node, label in zip(reversed(chain), reversed(labels), strict=True):
        entry: YearFactors | None = node.factors_by_year.get(year) if year is not None else None
        if entry is not None and getattr(entry, key) is not None:
            return float(getattr(entry, key)), (
                f"site file: {label} carbon.factors_by_year.{year}.{key}"
            )
        value = getattr(node, key)
        if value is not None:  # a flat value: the published factor it is, else the entry
            published = source_of(key, float(value))
            entry_name = f"site file: {label} carbon.{key}"
            return float(value), entry_name if published == "site file" else published
    return 0.0, NOT_DECLARED  # only cooling_kg_per_kwh has no default


def resolve(
    city: CarbonFactors,
    overrides: Sequence[CarbonOverride],
    year: int | None,
    labels: Sequence[str] | None = None,
) -> SiteFactors:
    """The factors of a site whose chain is the city then its park's and building's overrides
    (`labels` name them, city first, for each factor's source)."""
    chain: list[CarbonFactors | CarbonOverride] = [city, *overrides]
    names = list(labels) if labels is not None else ["city", *(["override"] * len(overrides))]
    picked = {key: _pick(chain, names, key, year) for key in FACTOR_KEYS}
    price = next(
        (o.price_cny_per_t for o in reversed(overrides) if o.price_cny_per_t is not None),
        city.price_cny_per_t,
    )
    series = next(
        (o.grid_series for o in reversed(overrides) if o.grid_series is not None),
        city.grid_series,
    )
    prices = {
        key: next(
            (float(getattr(o, key)) for o in reversed(overrides) if getattr(o, key) is not None),
            float(getattr(city, key)),
        )
        for key in ("heat_price_cny_per_kwh", "cooling_price_cny_per_kwh")
    }
    return SiteFactors(
        grid_kg_per_kwh=picked["grid_kg_per_kwh"][0],
        gas_kg_per_kwh=picked["gas_kg_per_kwh"][0],
        heat_kg_per_kwh=picked["heat_kg_per_kwh"][0],
        price_cny_per_t=price,
        factor_year=year,
        grid_series=series,
        sources={key: source for key, (_, source) in picked.items()},
        cooling_kg_per_kwh=picked["cooling_kg_per_kwh"][0],
        **prices,
    )
