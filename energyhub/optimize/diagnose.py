"""Explain an infeasible plan: re-solve with elastic slacks and name the first row that breaks.

Every row gets a pair of non-negative slacks. Balance rows are cheapest to relax, then targets
(a terminal SOC, a flexible load's energy), then physics (SOC dynamics, min load): a shortage is
blamed on the balance of the carrier that runs short, an unreachable terminal SOC on that target,
never on the arithmetic of a store's SOC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from energyhub.optimize.coupling import Caps
from energyhub.optimize.errors import InfeasiblePlanError
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.levels import Built
from energyhub.optimize.model import Problem, Solution, solve
from energyhub.optimize.scope import Scope

BALANCE_SLACK_CNY_PER_KW = 1.0
"""Weight of a balance slack: the diagnosis prefers to report a carrier running short."""

TARGET_SLACK_CNY_PER_UNIT = 10.0
"""Weight of a target row's slack (see TARGETS): blamed when no balance shortage explains it."""

PHYSICS_SLACK_CNY_PER_UNIT = 1000.0
"""Weight of any other row's slack: relaxed only when nothing else explains the problem."""

TARGETS = (":soc_final", ":energy_kwh")
"""Suffixes of rows that state a requirement rather than physics."""

CAP_SLACK_CNY_PER_UNIT = 0.1
"""Weight of a cap row's slack (a demand-response import cap, a carbon cap): a cap that cannot
hold is reported as itself, before the balances it would otherwise push short."""

CAPS = (":carbon_cap", ":demand_response[")
"""Name parts of the cap rows (energyhub.optimize.coupling)."""

SLACK_TOLERANCE = 1e-6
"""Slacks below this are solver noise, not a broken row."""

WATTS_HINT_RATIOS = (300.0, 3_000.0)
"""A shortfall this many times what could be supplied (about 1,000 ×, within a factor of about
three) looks like a column in W instead of kW: the diagnosis asks."""


def _elastic(problem: Problem) -> Problem:
    """The same rows and columns plus two slacks per row (into and out of the row)."""
    rows = problem.a.shape[0]
    identity = sp.identity(rows, format="csr")
    weights = np.full(rows, PHYSICS_SLACK_CNY_PER_UNIT)
    for name, block in problem.constraints.items():
        if any(part in name for part in CAPS):
            weights[block.slice] = CAP_SLACK_CNY_PER_UNIT
        elif ":balance_" in name:
            weights[block.slice] = BALANCE_SLACK_CNY_PER_KW
        elif name.endswith(TARGETS):
            weights[block.slice] = TARGET_SLACK_CNY_PER_UNIT
    zeros = np.zeros(problem.n_variables)
    return Problem(
        c=np.concatenate([zeros, weights, weights]),
        a=sp.csr_array(sp.hstack([problem.a, identity, -identity])),
        row_lower=problem.row_lower,
        row_upper=problem.row_upper,
        col_lower=np.concatenate([problem.col_lower, np.zeros(2 * rows)]),
        col_upper=np.concatenate([problem.col_upper, np.full(2 * rows, np.inf)]),
        integrality=np.concatenate([problem.integrality, np.zeros(2 * rows, dtype=np.uint8)]),
        variables=problem.variables,
        constraints=problem.constraints,
        costs={},
        accounts={},
        outputs={},
    )


def _first_broken(
    problem: Problem, slack: np.ndarray, inputs: PlanInputs, caps: Caps | None
) -> tuple[str, int, float]:
    """(block name, step, slack) of the earliest broken row: caps, then balances, then others."""
    broken = np.flatnonzero(np.abs(slack) > SLACK_TOLERANCE)
    windows = {c.name: np.flatnonzero(c.steps) for c in caps.imports} if caps else {}
    found: list[tuple[int, int, str, float]] = []
    for row in broken:
        block, offset = problem.row_block(int(row))
        step = offset if block.size == inputs.n else inputs.n - 1
        step = int(windows[block.name][offset]) if block.name in windows else step
        rank = 0 if any(p in block.name for p in CAPS) else int(":balance_" not in block.name) + 1
        found.append((rank, step, block.name, float(slack[row])))
    _, step, name, value = min(found)
    return name, step, value


def explain_infeasible(
    built: Built,
    scopes: Sequence[Scope],
    inputs: PlanInputs,
    time_limit_s: float | None,
    caps: Caps | None = None,
) -> InfeasiblePlanError:
    """An InfeasiblePlanError naming the balance (or asset row), node, assets and first step."""
    problem = built.problem
    solution: Solution = solve(_elastic(problem), time_limit_s=time_limit_s)
    if solution.x is None:
        return InfeasiblePlanError(
            "infeasible: no schedule meets every constraint, and the diagnosis found none either "
            f"({solution.message})",
            constraint="",
            node=None,
            carrier=None,
            assets=[],
            step=0,
            ts=inputs.index[0].isoformat(),
        )
    rows, cols = problem.a.shape
    slack = solution.x[cols : cols + rows] - solution.x[cols + rows :]
    name, step, value = _first_broken(problem, slack, inputs, caps)
    ts = inputs.index[step].isoformat()
    owner, _, what = name.partition(":")
    if what.startswith("balance_"):
        carrier = what.removeprefix("balance_")
        sources = built.sources(owner, carrier)
        state = (
            f"short by {value:.4g} kW" if value > 0 else f"left with {-value:.4g} kW it cannot use"
        )
        fed = f"; fed by {', '.join(sources)}" if sources else "; nothing in scope supplies it"
        limits = _limits_reached(problem, solution.x, owner, step) if value > 0 else ""
        message = (
            f"infeasible: the {carrier} balance of {owner} ({name}) is {state} "
            f"from step {step + 1} (ts {ts}){fed}{limits}"
            f"{_watts_hint(inputs, owner, carrier, step, value)}"
        )
        return InfeasiblePlanError(
            message,
            constraint=name,
            node=owner,
            carrier=carrier,
            assets=sources,
            step=step + 1,
            ts=ts,
        )
    if any(part in name for part in CAPS):
        return cap_error(name, step, value, ts)
    node = next((n.id for s in scopes for n, a in s.assets() if a.id == owner), owner)
    message = (
        f"infeasible: {name} of asset {owner} at node {node} cannot hold (off by {abs(value):.4g}) "
        f"from step {step + 1} (ts {ts})"
    )
    return InfeasiblePlanError(
        message, constraint=name, node=node, carrier=None, assets=[owner], step=step + 1, ts=ts
    )


LIMITED_FLOWS = {"import_kw": "grid.import_max_kw", "feed_kw": "its own grid.import_max_kw"}
"""The flows into a node's balance whose upper bound is a connection limit of the site file:
the grid import of the node holding the connection (`<node>:import_kw`) and a building's feeder
from the park bus (`<building>:feed_kw`)."""


def _limits_reached(problem: Problem, x: np.ndarray, node: str, step: int) -> str:
    """ "; at its limit: p:import_kw = 100 kW (grid.import_max_kw)" when a connection feeding
    the short balance is at its limit in that step: the limit the shortage is up against."""
    reached = []
    for flow, limit in LIMITED_FLOWS.items():
        var = problem.variables.get(f"{node}:{flow}")
        if var is None or step >= var.size:
            continue
        upper = float(problem.col_upper[var.start + step])
        if np.isfinite(upper) and x[var.start + step] >= upper - SLACK_TOLERANCE * max(1.0, upper):
            reached.append(f"{var.name} = {upper:.6g} kW ({limit})")
    return f"; at its limit: {', '.join(reached)}" if reached else ""


def _watts_hint(inputs: PlanInputs, node: str, carrier: str, step: int, short_kw: float) -> str:
    """ "; is the column … in W?" when the shortfall is about 1,000 × what could be supplied."""
    column = f"{node}:{carrier}_kw"
    demand = inputs.get(column)
    if demand is None or short_kw <= 0:
        return ""
    supplied = float(demand[step]) - short_kw
    if supplied <= SLACK_TOLERANCE:
        return ""
    low, high = WATTS_HINT_RATIOS
    if not low <= short_kw / supplied <= high:
        return ""
    return (
        f"; is the column {column} in W? ({float(demand[step]):.4g} kW asked, "
        f"{supplied:.4g} kW can be supplied)"
    )


def cap_error(name: str, step: int, excess: float, ts: str) -> InfeasiblePlanError:
    """A cap that no schedule can hold, even with everything under it at its least."""
    what = "CO₂ (kg over the horizon)" if name.endswith(":carbon_cap") else "import (kW)"
    return InfeasiblePlanError(
        f"infeasible: {name} cannot hold: the least {what} reachable exceeds the cap by "
        f"{abs(excess):.4g} at step {step + 1} (ts {ts})",
        constraint=name,
        node=name.partition(":")[0],
        carrier=None,
        assets=[],
        step=step + 1,
        ts=ts,
    )
