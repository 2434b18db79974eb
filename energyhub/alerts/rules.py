"""Alert rules as declared under `alerts:` of a park or building, and defaults per building class.

A declared rule overrides only the fields it sets; everything else comes from the class default.
`enabled: false` switches a rule off. Durations are minutes (`for_min`, `clear_min`), fractions are
of the limit or the usual level; every field says its unit.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from energyhub.bounds import Name, NonNegativeMeasure, PositiveMeasure, Whole

Severity = Literal["info", "warning", "critical"]
RuleName = Literal["silence", "limit", "night_base", "forecast", "soc", "ingest"]
RULE_NAMES: tuple[RuleName, ...] = ("silence", "limit", "night_base", "forecast", "soc", "ingest")
Minutes = Annotated[float, Field(ge=0, le=7 * 24 * 60)]
MeterName = Annotated[Name, Field(max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # `false` is no number, `1` no switch


class RuleBase(_Strict):
    """What every rule has: a switch, a severity, how long the condition must hold and clear."""

    enabled: bool = True
    severity: Severity = "warning"
    for_min: Minutes = Field(default=0, description="The condition holds this long to open.")
    clear_min: Minutes = Field(
        default=1, description="Minimum hold: the condition is gone this long to close."
    )


class SilenceRule(RuleBase):
    """A meter's newest reading is older than `intervals` × `interval_s`."""

    intervals: Whole = Field(default=5, ge=1, le=10_000)
    interval_s: float = Field(default=60, gt=0, le=86_400, description="Reporting interval.")
    meters: list[MeterName] | None = Field(
        default=None, description="Meters of this site to watch; unset: all of them."
    )

    @property
    def silent_s(self) -> float:
        return self.intervals * self.interval_s


class LimitRule(RuleBase):
    """Grid-side electric load above `share` of the connection's import_max_kw (or `limit_kw`)."""

    severity: Severity = "critical"
    for_min: Minutes = 5
    share: float = Field(default=0.9, gt=0, le=1, description="Fraction of the limit.")
    hysteresis: float = Field(
        default=0.05, ge=0, lt=0.5, description="An open alert clears below share × (1 − this)."
    )
    limit_kw: PositiveMeasure | None = Field(default=None, description="Default: import_max_kw.")


class NightBaseRule(RuleBase):
    """A night's mean load above its usual level (running mean of past nights) by `margin`."""

    start_h: Whole = Field(default=0, ge=0, le=23, description="Local hour the night starts.")
    end_h: Whole = Field(default=5, ge=1, le=24, description="Local hour the night ends.")
    margin: float = Field(default=0.25, gt=0, le=10, description="Fraction above usual.")
    min_nights: Whole = Field(default=3, ge=1, le=365, description="Nights learnt before judging.")
    usual_kw: PositiveMeasure | None = Field(default=None, description="Seed of the usual level.")
    clear_min: Minutes = 0

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.start_h == self.end_h % 24:
            raise ValueError(f"start_h and end_h must differ, both are {self.start_h}")
        return self


class ForecastRule(RuleBase):
    """15-minute electric load outside the active plan's forecast ± `band` (and ± `min_band_kw`)."""

    for_min: Minutes = 30
    clear_min: Minutes = 15
    band: float = Field(default=0.3, gt=0, le=10, description="Fraction of the forecast.")
    min_band_kw: NonNegativeMeasure = Field(default=10, description="The band is never narrower.")


class SocRule(RuleBase):
    """A battery's SOC outside its site-file window [soc_min, soc_max] widened by `margin_pct`."""

    for_min: Minutes = 5
    margin_pct: float = Field(default=0, ge=0, le=50, description="Percent points of slack.")
    hysteresis_pct: float = Field(default=1, ge=0, le=20, description="Back inside by this.")
    assets: list[MeterName] | None = Field(
        default=None, description="Batteries to watch; unset: every battery with a soc meter."
    )


class IngestRule(RuleBase):
    """Ingest lag (now − the park's newest reading) or the reject rate above a threshold."""

    severity: Severity = "critical"
    for_min: Minutes = 1
    max_lag_s: float = Field(default=300, gt=0, le=86_400)
    max_rejects_per_min: NonNegativeMeasure = 60


class AlertRules(_Strict):
    """The `alerts:` block of a park or building: each rule optional, unset fields by default."""

    silence: SilenceRule | None = None
    limit: LimitRule | None = None
    night_base: NightBaseRule | None = None
    forecast: ForecastRule | None = None
    soc: SocRule | None = None
    ingest: IngestRule | None = None


Rule = SilenceRule | LimitRule | NightBaseRule | ForecastRule | SocRule | IngestRule
RULE_TYPES: dict[RuleName, type[Rule]] = {
    "silence": SilenceRule,
    "limit": LimitRule,
    "night_base": NightBaseRule,
    "forecast": ForecastRule,
    "soc": SocRule,
    "ingest": IngestRule,
}

CLASS_DEFAULTS: dict[str, AlertRules] = {
    "office-A": AlertRules(),
    "office-B": AlertRules(),
    "retail": AlertRules(night_base=NightBaseRule(margin=0.3)),
    "lab": AlertRules(night_base=NightBaseRule(margin=0.4), forecast=ForecastRule(band=0.4)),
    # Round-the-clock loads: no night dip to watch; tighter silence and forecast bands.
    "data-center": AlertRules(
        silence=SilenceRule(intervals=3, severity="critical"),
        night_base=NightBaseRule(enabled=False),
        forecast=ForecastRule(band=0.15),
        limit=LimitRule(share=0.85),
    ),
    "hotel": AlertRules(night_base=NightBaseRule(enabled=False)),
    "park": AlertRules(
        night_base=NightBaseRule(enabled=False), forecast=ForecastRule(enabled=False)
    ),
}
"""Per building class (and `park`): rules differing from each rule's own defaults."""

PARK_ONLY: frozenset[RuleName] = frozenset({"ingest"})


def effective(kind: str, declared: AlertRules | None, name: RuleName) -> Rule | None:
    """The rule as it applies: class default, overridden by the declared fields; None if off."""
    if name in PARK_ONLY and kind != "park":
        return None
    base: Rule = getattr(CLASS_DEFAULTS.get(kind, AlertRules()), name) or RULE_TYPES[name]()
    own: Rule | None = getattr(declared, name) if declared is not None else None
    if own is not None:  # validated again: a window or threshold may be wrong only merged
        merged = base.model_dump() | own.model_dump(include=own.model_fields_set)
        base = RULE_TYPES[name].model_validate(merged)
    return base if base.enabled else None
