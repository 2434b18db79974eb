"""One check per rule kind: turns the newest data into an observation (active or not, values).

Checks read a Snapshot the evaluator assembled once per tick from `meter_latest`, the reject
cursor and newly completed 15-minute buckets; none reads history. `is_open` lets a check judge an
open alert against a lower bar (hysteresis).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

Values = dict[str, float | str | None]
MIN_NIGHT_BUCKETS = 4
"""Night buckets (15 min each) seen before a night is judged: one hour, not one noisy sample."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one tick knows: the time, newest values, derived power, rejects, new load buckets."""

    now: datetime
    started: datetime
    latest: dict[int, tuple[datetime, float]]
    power_kw: dict[int, float]
    rejects_per_min: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    forecasts: dict[tuple[str, datetime], float] = field(default_factory=dict)
    offline: dict[int, tuple[datetime, str]] = field(default_factory=dict)
    """Meters whose field device announced its death (Sparkplug NDEATH/DDEATH): since, which."""


@dataclass(frozen=True, slots=True)
class Observation:
    active: bool
    values: Values
    message: str


class Check(Protocol):
    def observe(self, snap: Snapshot, is_open: bool) -> Observation | None:
        """The condition now; None when the data says nothing either way."""
        ...


@dataclass(frozen=True, slots=True)
class SilenceCheck:
    """A meter whose newest reading (or, never heard, the evaluator's start) is too old, or whose
    field device has announced its death: silent at once, without waiting for the limit."""

    meter_id: int
    meter: str
    silent_s: float

    def observe(self, snap: Snapshot, is_open: bool) -> Observation:
        seen = snap.latest.get(self.meter_id)
        last = seen[0] if seen else snap.started
        age_s = (snap.now - last).total_seconds()
        values: Values = {"last_reading": seen[0].isoformat() if seen else None, "age_s": age_s}
        dead = snap.offline.get(self.meter_id)
        if dead is not None and (seen is None or seen[0] <= dead[0]):
            values["offline_since"] = dead[0].isoformat()
            return Observation(
                True, values, f"meter {self.meter} silent: {dead[1]} at {dead[0].isoformat()}"
            )
        return Observation(
            age_s > self.silent_s,
            values,
            f"meter {self.meter} silent for {age_s:.0f} s (limit {self.silent_s:.0f} s)",
        )


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """Summed grid-side electric power above share × limit; clears below (1 − hysteresis) of it."""

    meter_ids: tuple[int, ...]
    limit_kw: float
    share: float
    hysteresis: float

    def observe(self, snap: Snapshot, is_open: bool) -> Observation | None:
        known = [snap.power_kw[m] for m in self.meter_ids if m in snap.power_kw]
        if not known:
            return None
        load_kw = sum(known)
        threshold_kw = self.share * self.limit_kw * ((1 - self.hysteresis) if is_open else 1)
        values: Values = {
            "load_kw": load_kw,
            "threshold_kw": threshold_kw,
            "limit_kw": self.limit_kw,
        }
        return Observation(
            load_kw > threshold_kw,
            values,
            f"load {load_kw:.0f} kW above {self.share:.0%} of the {self.limit_kw:.0f} kW limit",
        )


@dataclass(frozen=True, slots=True)
class SocCheck:
    """A battery's SOC (percent) outside [low, high]; an open alert clears `hysteresis` inside."""

    meter_id: int
    asset: str
    low_pct: float
    high_pct: float
    hysteresis_pct: float

    def observe(self, snap: Snapshot, is_open: bool) -> Observation | None:
        seen = snap.latest.get(self.meter_id)
        if seen is None:
            return None
        soc = seen[1]
        slack = self.hysteresis_pct if is_open else 0.0
        inside = self.low_pct + slack <= soc <= self.high_pct - slack
        values: Values = {"soc_pct": soc, "low_pct": self.low_pct, "high_pct": self.high_pct}
        window = f"[{self.low_pct:.0f}, {self.high_pct:.0f}] %"
        return Observation(not inside, values, f"{self.asset} SOC {soc:.1f} % outside {window}")


@dataclass(frozen=True, slots=True)
class IngestCheck:
    """The park's newest reading too old (ingest lag) or too many of its rejects per minute."""

    park_id: str
    meter_ids: tuple[int, ...]
    max_lag_s: float
    max_rejects_per_min: float

    def observe(self, snap: Snapshot, is_open: bool) -> Observation | None:
        stamps = [snap.latest[m][0] for m in self.meter_ids if m in snap.latest]
        newest = max(stamps, default=snap.started)
        lag_s = (snap.now - newest).total_seconds()
        rejects = snap.rejects_per_min.get(self.park_id, 0.0)
        values: Values = {"lag_s": lag_s, "rejects_per_min": rejects}
        return Observation(
            lag_s > self.max_lag_s or rejects > self.max_rejects_per_min,
            values,
            f"ingest lag {lag_s:.0f} s (limit {self.max_lag_s:.0f}), "
            f"{rejects:.0f} rejects/min (limit {self.max_rejects_per_min:.0f})",
        )


@dataclass(slots=True)
class ForecastCheck:
    """The newest 15-minute load outside forecast ± max(band × forecast, min_band_kw)."""

    site_id: str
    band: float
    min_band_kw: float
    last: Observation | None = None

    def observe(self, snap: Snapshot, is_open: bool) -> Observation | None:
        for bucket, load_kw in snap.buckets.get(self.site_id, []):
            forecast_kw = snap.forecasts.get((self.site_id, bucket))
            if forecast_kw is None:
                self.last = None
                continue
            band_kw = max(self.band * abs(forecast_kw), self.min_band_kw)
            values: Values = {
                "bucket": bucket.isoformat(),
                "load_kw": load_kw,
                "forecast_kw": forecast_kw,
                "band_kw": band_kw,
            }
            message = f"load {load_kw:.0f} kW vs forecast {forecast_kw:.0f} ± {band_kw:.0f} kW"
            self.last = Observation(abs(load_kw - forecast_kw) > band_kw, values, message)
        return self.last


@dataclass(slots=True)
class NightBaseCheck:
    """A night's mean load above the usual level (running mean of past nights) by `margin`."""

    site_id: str
    tz: ZoneInfo
    start_h: int
    end_h: int
    margin: float
    min_nights: int
    usual_kw: float | None = None
    nights: int = 0
    tonight_sum_kw: float = 0.0
    tonight_n: int = 0
    last: Observation | None = None
    changed: bool = False

    LEARN_NIGHTS = 14
    """The usual level weighs at most this many recent nights equally (a running mean)."""

    def _in_window(self, bucket: datetime) -> bool:
        hour = bucket.astimezone(self.tz).hour
        if self.start_h < self.end_h:
            return self.start_h <= hour < self.end_h
        return hour >= self.start_h or hour < self.end_h

    def _judge(self) -> None:
        if self.tonight_n < MIN_NIGHT_BUCKETS or self.usual_kw is None:
            return
        if self.nights < self.min_nights:
            return
        mean_kw = self.tonight_sum_kw / self.tonight_n
        bar_kw = self.usual_kw * (1 + self.margin)
        values: Values = {"night_kw": mean_kw, "usual_kw": self.usual_kw, "threshold_kw": bar_kw}
        message = f"night base load {mean_kw:.0f} kW above usual {self.usual_kw:.0f} kW"
        self.last = Observation(mean_kw > bar_kw, values, message)

    def _end_night(self) -> None:
        mean_kw = self.tonight_sum_kw / self.tonight_n
        weight = 1 / min(self.nights + 1, self.LEARN_NIGHTS)
        self.usual_kw = (
            mean_kw
            if self.usual_kw is None
            else (self.usual_kw + (mean_kw - self.usual_kw) * weight)
        )
        self.nights += 1
        self.tonight_sum_kw, self.tonight_n, self.changed = 0.0, 0, True

    def observe(self, snap: Snapshot, is_open: bool) -> Observation | None:
        for bucket, load_kw in snap.buckets.get(self.site_id, []):
            if self._in_window(bucket):
                self.tonight_sum_kw += load_kw
                self.tonight_n += 1
                self._judge()
            elif self.tonight_n:
                self._judge()
                self._end_night()
        return self.last

    def state(self) -> dict[str, Any]:
        """What survives a restart: the usual level and how many nights it has seen."""
        return {"usual_kw": self.usual_kw, "nights": self.nights}

    def restore(self, state: dict[str, Any]) -> None:
        self.usual_kw = state.get("usual_kw", self.usual_kw)
        self.nights = int(state.get("nights", self.nights))
