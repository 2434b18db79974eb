"""Which solve a plan gets: `central`, `decomposed`, or `auto` (central while it is affordable).

The size of a plan's model is counted in *asset-steps*: (nodes + assets) × steps, summed over its
parks; the centralized solve's variables and time grow with it (bench/scale.py measures both).
`auto` solves centrally up to CENTRAL_MAX_ASSET_STEPS (a single park: up to
PARK_CENTRAL_MAX_ASSET_STEPS), where that solve still takes seconds on two cores, and decomposes
beyond: a decomposed plan is never chosen where the central solve, which is exact, could have
been afforded. A decomposition splits a city at its parks when every
park fits that size (each park then holds its own limit and balances exactly, the city's caps
are priced: `byparks`), and at the buildings otherwise (`decompose`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from energyhub.optimize.byparks import decompose_by_park
from energyhub.optimize.coupling import Caps
from energyhub.optimize.decompose import Decomposed, DecomposeOptions, decompose
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.scope import Scope

METHODS = ("auto", "central", "decomposed")

CENTRAL_MAX_ASSET_STEPS = 100_000
"""The largest model `auto` solves centrally. Measured with bench/scale.py on the shared
two-core machine (2026-12-06, docs/decomposed-plans.md): heterogeneous parks of 100 buildings
(≈ 60,000 asset-steps at 96 steps) solve centrally in 1.0 s, 1.8 s with three CHP buildings
(a MILP closed at its root node, binaries only where they can change the optimum), and
decomposed in 2–3 × that; under other engineers' load the morning's code took 3.6–15.8 s
centrally and 3–5 × that decomposed. A city of 100 buildings took 1–6 s centrally and 5–9 s
decomposed by park, but a city of 300 (≈ 190,000) 119–151 s centrally and 44–82 s decomposed.
Up to this size the centralized solve, which is exact, is affordable; beyond it the
decomposition's time grows with the parks, not with the model's size to a power."""

PARK_CENTRAL_MAX_ASSET_STEPS = 300_000
"""The largest single park `auto` solves centrally. One park has no parks to split at, only its
buildings, and that decomposition stays slower than the centralized solve far beyond
CENTRAL_MAX_ASSET_STEPS: parks of 300 and 500 buildings (≈ 180,000 and 300,000 asset-steps)
took 25.2 s and 37.6 s centrally against 36.1 s and 106.2 s decomposed by building, the 500 at
+0.081 % (bench/scale.py --skip-city --park-sizes 300 500 --seeds 1, 2026-12-06). Beyond the
largest park measured, the park is decomposed."""


def central_limit(level: str) -> int:
    """The largest model `auto` solves centrally at this level."""
    return PARK_CENTRAL_MAX_ASSET_STEPS if level == "park" else CENTRAL_MAX_ASSET_STEPS


AUTO_MIP_GAP = 1e-3
"""The relative MIP gap of the centralized solve `auto` picks (unless `--mip-gap` says): the
decomposition's own tolerance (`DecomposeOptions.tolerance`), so either way the plan is proved
within 0.1 % of the optimum, well inside the issue's 0.5 %. HiGHS's default (10⁻⁴) spends most
of its time proving the last hundredths: on a 100-building park with four CHP buildings it
found a plan 0.014 % above the optimum in 3.4 s and took 10.7 s to close 10⁻⁴ (2026-12-06,
quiet two-core machine). `--method central` keeps the default: the exact optimum."""

Subproblems = Literal["parks", "buildings"]


@dataclass(frozen=True, slots=True)
class Choice:
    """The solve a plan gets and why (reported in the plan's JSON as `method_reason`)."""

    method: Literal["central", "decomposed"]
    reason: str
    subproblems: Subproblems | None = None
    mip_gap: float | None = None
    """The centralized solve's relative MIP gap where the choice sets one (`auto`)."""


def asset_steps(scopes: Sequence[Scope], steps: int) -> int:
    """(nodes + assets) × steps over every park: the model's size as `auto` reads it."""
    return steps * sum(len(s.nodes) + sum(len(n.assets) for n in s.nodes) for s in scopes)


def size_problem(scopes: Sequence[Scope], steps: int, limit: int) -> str | None:
    """Why a plan of `steps` over these scopes is too large to take (None when it is not)."""
    size = asset_steps(scopes, steps)
    if size <= limit:
        return None
    per_step = size // steps
    return (
        f"{steps} steps × {per_step} nodes and assets = {size:,} asset-steps, more than the "
        f"limit of {limit:,} (ENERGYHUB_PLAN_MAX_ASSET_STEPS): plan at most "
        f"{max(limit // per_step, 0):,} steps of this site, or a building or park of it"
    )


def choose(method: str, level: str, scopes: Sequence[Scope], steps: int) -> Choice:
    """The solve for `method` at `level`; raises PlanInputError for an unknown or unfit one."""
    if method not in METHODS:
        raise PlanInputError(
            f"--method: must be auto, central or decomposed; got {method!r}", column="method"
        )
    size = asset_steps(scopes, steps)
    if method == "central" or (method == "auto" and level == "building"):
        return Choice("central", "asked for" if method == "central" else "a building is one model")
    if level == "building":
        raise PlanInputError(
            "--method decomposed: a building is one subproblem; use --level park or city",
            column="method",
        )
    limit = central_limit(level)
    if method == "auto" and size <= limit:
        return Choice(
            "central",
            f"auto: {size:,} asset-steps ≤ {limit:,}, where the centralized "
            f"solve still takes seconds (MIP gap ≤ {AUTO_MIP_GAP:.1%})",
            mip_gap=AUTO_MIP_GAP,
        )
    prefix = "asked for" if method == "decomposed" else (
        f"auto: {size:,} asset-steps > {limit:,}, beyond which the "
        "decomposition is faster")  # fmt: skip
    largest = max(asset_steps((s,), steps) for s in scopes)
    if level == "city" and largest <= CENTRAL_MAX_ASSET_STEPS:
        return Choice(
            "decomposed",
            f"{prefix}; by park: each park ({largest:,} asset-steps at most) solved whole, "
            "the city's caps priced across them",
            "parks",
        )
    return Choice("decomposed", f"{prefix}; by building, coordinated by the park", "buildings")


def run_decomposed(
    choice: Choice, scopes: Sequence[Scope], table: PlanInputs, caps: Caps,
    options: DecomposeOptions,
) -> Decomposed:  # fmt: skip
    """The decomposition `choice` names."""
    if choice.subproblems == "parks":
        return decompose_by_park(scopes, table, caps, options)
    return decompose(scopes, table, caps, options)
