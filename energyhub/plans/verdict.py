"""A plan against its baseline: Δcost and ΔCO₂ with sign and percentage, and why a plan that is
worse than its baseline on either is so.

Δ is plan − baseline: negative saves. A plan may cost more than its baseline when the baseline
leaves demand unserved (it serves it) or the solver stopped short of the optimum; it may emit more
when the carbon price is too low to outweigh cheaper energy: storage losses, energy shifted to
cheaper hours of a dirtier grid mix, or gas burnt in place of grid electricity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from energyhub.numbers import figure
from energyhub.plans.store import PlanRecord

TOLERANCE = 1e-6
"""Relative difference below which a plan is taken as equal to its baseline (solver noise)."""


@dataclass(frozen=True, slots=True)
class Delta:
    """Plan − baseline of one figure; `worse` says why when it is above the baseline."""

    plan: float
    baseline: float
    worse: str | None

    @property
    def delta(self) -> float:
        return self.plan - self.baseline

    @property
    def pct(self) -> float | None:
        return None if self.baseline == 0 else self.delta / abs(self.baseline) * 100

    @property
    def is_worse(self) -> bool:
        return self.delta > TOLERANCE * max(abs(self.baseline), 1.0)

    def shown(self, unit: str) -> str:
        """`−1,234.5 CNY (−3.2 %)`, signed."""
        pct = "" if self.pct is None else f" ({figure(self.pct, signed=True)} %)"
        return f"{figure(self.delta, signed=True)} {unit}{pct}"


@dataclass(frozen=True, slots=True)
class Verdict:
    cost: Delta
    co2: Delta


def _cost_reason(record: PlanRecord) -> str:
    unserved = sum(float(v) for v in record.baseline.get("unserved_kwh", {}).values())
    if unserved > 0:
        return f"the baseline leaves {unserved:,.0f} kWh of demand unserved; the plan serves it"
    status = record.solver.get("status")
    if status != "optimal":
        gap = record.solver.get("gap")
        return f"the solver stopped before the optimum (status {status}, gap {gap})"
    return (
        "the plan's constraints (storage end state, flexible-load windows) cost more than the "
        "rules: its stores end where soc_final says and make up their standing loss, the "
        "baseline's idle stores lose nothing"
    )


def _co2_reason(record: PlanRecord, carbon_cny_per_t: float) -> str:
    planned = record.solver.get("co2_kg_by_carrier", {})
    baseline = record.baseline.get("co2_kg_by_carrier", {})
    rises = {
        c: float(planned.get(c, 0.0)) - float(baseline.get(c, 0.0))
        for c in set(planned) | set(baseline)
    }
    price = f"a carbon price of {carbon_cny_per_t:g} CNY/t"
    if baseline and rises.get("gas", 0.0) > max(rises.get("electricity", 0.0), 0.0):
        if rises.get("electricity", 0.0) < 0.0:
            return f"it burns more gas than the baseline (cheaper than grid power at {price})"
        return (
            "it burns more gas than the baseline, in place of no grid power: heat for its "
            "stores' standing loss and end state (the baseline's idle stores lose nothing)"
        )
    return (
        "it imports more grid electricity than the baseline: storage losses and energy moved to "
        f"cheaper hours, which {price} does not outweigh"
    )


def carbon_price_cny_per_t(record: PlanRecord) -> float:
    """The carbon price the plan was solved with: its carbon term over its CO₂."""
    carbon = float(record.cost_terms_cny.get("carbon", 0.0))
    return carbon / record.co2_kg * 1000 if record.co2_kg else 0.0


def verdict(record: PlanRecord) -> Verdict | None:
    """The plan's Δcost and ΔCO₂ against its baseline; None before it is solved."""
    carbon_cny_per_t = carbon_price_cny_per_t(record)
    baseline_cost = record.baseline.get("cost_cny")
    baseline_co2 = record.baseline.get("co2_kg")
    if record.objective_cny is None or baseline_cost is None or baseline_co2 is None:
        return None
    cost = Delta(record.objective_cny, float(baseline_cost), None)
    co2 = Delta(record.co2_kg or 0.0, float(baseline_co2), None)
    return Verdict(
        Delta(cost.plan, cost.baseline, _cost_reason(record) if cost.is_worse else None),
        Delta(
            co2.plan, co2.baseline, _co2_reason(record, carbon_cny_per_t) if co2.is_worse else None
        ),
    )


@dataclass(frozen=True, slots=True)
class WarningGroup:
    """Warnings of one kind: the kind (subjects and figures blanked), who, and each full text."""

    kind: str
    subjects: list[str]
    texts: list[str]


_FIGURE = re.compile(r"\d+(?:[.,]\d+)*")


def _split(text: str) -> tuple[str, str]:
    """(subject, kind) of `[prefix: ]subject: message`, figures in the message blanked, and the
    subject's site (its id before any `:` or `/`) where the message names it again."""
    prefix, subject, rest = "", "", text
    head, sep, tail = text.partition(": ")
    if sep and head == "forecast":
        prefix, (head, sep, tail) = "forecast: ", tail.partition(": ")
    if sep and " " not in head:
        subject, rest = head, tail
        site = re.split(r"[:/]", subject, maxsplit=1)[0]
        rest = re.sub(rf"(?<![\w-]){re.escape(site)}(?![\w-])", "…", rest)
    return subject, prefix + _FIGURE.sub("…", rest)


def grouped_warnings(warnings: list[str]) -> list[WarningGroup]:
    """One group per kind of warning, in order of first appearance; a repeated text once."""
    groups: dict[str, WarningGroup] = {}
    for text in dict.fromkeys(warnings):
        subject, kind = _split(text)
        group = groups.setdefault(kind, WarningGroup(kind, [], []))
        if subject and subject not in group.subjects:
            group.subjects.append(subject)
        group.texts.append(text)
    return list(groups.values())
