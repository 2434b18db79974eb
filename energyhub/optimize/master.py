"""The coordinator's model: the parks' heads with each building as a mix of its answers.

Built by the same asset functions as a centralized plan (`levels.add_park` on each park's head
node, `coupling.add_caps` across them); the *restricted master* puts, for each building, a
convex combination of the proposals it has made (one of them, if the building has binaries).
Its balances and caps are the real ones, so whatever it picks holds every coupling constraint
exactly. Shortfall columns at a high price keep it solvable; a plan that still needs them cannot
meet the constraint they relieve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from energyhub.optimize.coupling import Caps, add_caps
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.levels import Built, add_park
from energyhub.optimize.model import Array, Expr, ModelBuilder
from energyhub.optimize.network import CARRIERS, Carrier, Context
from energyhub.optimize.scope import Scope
from energyhub.optimize.subproblem import Answer, Recipe

SHORTFALL_CNY_PER_KW = 1e4
"""Price of a master's shortfall column (per kW and step, or per kg over a cap): far above any
energy price, so the master uses one only when no combination of proposals meets the row."""

CO2_CHANNEL = ("", "co2")
"""The layout key of the buildings' summed CO₂ (one entry, only with a carbon cap)."""

NOT_SCHEDULED = (":proposals", ":shortfall_", ":excess", "buildings_")
"""Name parts of the coordinator's own columns, left out of a plan's schedule."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each building's channel entries sit in the coordination vector."""

    size: int
    blocks: dict[tuple[str, str], slice]
    entries: dict[str, NDArray[np.int64]]
    counts: Array
    recipes: tuple[Recipe, ...]

    @staticmethod
    def of(scopes: Sequence[Scope], recipes: Sequence[Recipe], n: int, co2: bool) -> Layout:
        blocks: dict[tuple[str, str], slice] = {}
        start = 0
        for scope in scopes:
            for carrier in park_carriers(scope):
                blocks[(scope.id, carrier)] = slice(start, start + n)
                start += n
        if co2:
            blocks[CO2_CHANNEL] = slice(start, start + 1)
            start += 1
        entries, counts = {}, np.zeros(start)
        for r in recipes:
            parts = [np.arange(start, start + n)[:0]]
            for carrier in park_carriers_of(scopes, r.park):
                block = blocks[(r.park, carrier)]
                parts.append(np.arange(block.start, block.stop))
            if r.co2:
                parts.append(np.array([blocks[CO2_CHANNEL].start]))
            entries[r.key] = np.concatenate(parts).astype(np.int64)
            counts[entries[r.key]] += 1
        return Layout(start, blocks, entries, np.maximum(counts, 1.0), tuple(recipes))

    def gather(self, values: dict[str, Array]) -> Array:
        """The sum over buildings of their channel vectors, as one coordination vector."""
        total = np.zeros(self.size)
        for key, q in values.items():
            np.add.at(total, self.entries[key], q)
        return total


def park_carriers(scope: Scope) -> list[Carrier]:
    """The carriers a park's buildings draw from its bus: electricity, and heat/cooling if made."""
    head = scope.nodes[0]
    made = [c for c in CARRIERS if c in ("heat", "cooling") and head.produces(c)]
    return ["electricity", *made] if len(scope.nodes) > 1 else []


def park_carriers_of(scopes: Sequence[Scope], park: str) -> list[Carrier]:
    return next(park_carriers(s) for s in scopes if s.id == park)


def head_only(scope: Scope) -> Scope:
    """The park without its buildings: the head node with the grid and shared assets."""
    return replace(scope, nodes=(scope.nodes[0],))


def _proposals(m: ModelBuilder, key: str, answers: Sequence[Answer], integer: bool) -> Expr:
    """Weights over a building's proposals (convex, or pick-one); returns Σ w·q as rows."""
    k = len(answers)
    w = m.add_variables(f"{key}:proposals", k, 0.0, 1.0, binary=integer)
    m.add_constraints(f"{key}:convexity", w.expr().sum(), "==", 1.0)
    cols = np.arange(w.start, w.start + k)
    cost = Expr(
        1, ((np.zeros(k, np.int64), cols, np.array([a.cost for a in answers])),), np.zeros(1)
    )
    m.add_cost("buildings", cost)
    q = np.array([a.q for a in answers])  # k × entries
    rows = np.tile(np.arange(q.shape[1]), k)
    return Expr(q.shape[1], ((rows, np.repeat(cols, q.shape[1]), q.ravel()),), np.zeros(q.shape[1]))


def _shortfall(ctx: Context, carrier: Carrier) -> None:
    """Priced slack into and out of a park balance."""
    m, name = ctx.m, f"{ctx.scope.id}:shortfall_{carrier}_kw"
    into = m.add_variables(f"{name}:in", ctx.n)
    out = m.add_variables(f"{name}:out", ctx.n)
    m.add_cost("shortfall", SHORTFALL_CNY_PER_KW * (into.expr() + out.expr()))
    ctx.inject(ctx.scope.grid_node, carrier, name, into.expr() - out.expr())


def restricted_master(
    scopes: Sequence[Scope],
    inputs: PlanInputs,
    caps: Caps,
    layout: Layout,
    pool: dict[str, list[Answer]],
) -> Built:
    """The heads, each building as a combination of its proposals, the caps; with shortfalls."""
    m = ModelBuilder()
    co2_rows: list[Expr] = []

    def hook(ctx: Context) -> None:
        park = ctx.scope.id
        carriers = park_carriers_of(scopes, park)
        for recipe in (r for r in layout.recipes if r.park == park):
            answers = pool[recipe.key]
            integer = answers[0].integer
            chosen = [a for a in answers if a.exact]
            drawn = _proposals(m, recipe.key, chosen, integer)
            for i, carrier in enumerate(carriers):
                part = np.r_[np.full(i * ctx.n, -1), np.arange(ctx.n)]
                part = np.r_[part, np.full(drawn.n - part.size, -1)]
                ctx.inject(ctx.scope.grid_node, carrier, recipe.key, drawn.group(part, ctx.n))
            if recipe.co2:
                co2_rows.append(drawn.group(np.r_[np.full(drawn.n - 1, -1), 0], 1))
        for carrier in carriers:
            _shortfall(ctx, carrier)

    contexts = tuple(add_park(m, head_only(s), inputs, None, hook) for s in scopes)
    for row in co2_rows:
        m.add_account("co2_kg:buildings", row)
    if not caps.empty:
        add_caps(m, contexts, caps, SHORTFALL_CNY_PER_KW)
    return Built(m.build(), contexts)
