"""The city's caps shared out among its parks by cutting planes (Benders on the shares).

A park's least cost with its channels (its import in each capped step, its CO₂) within a share
`s` is a convex function V(s) of the share (the value of an LP in its right-hand side; finite
everywhere, since a share can be exceeded at the shortfall price). Each answer gives a cut
V(s) ≥ V(s̄) + slope·(s − s̄) (`parkwork.share_answer`), and an answer at a price π ≥ 0 gives
V(s) ≥ value − π·s (the park's optimum at π, Lagrangian). Minimizing Σ θ_p with θ_p above
every cut of park p and Σ s_p ≤ caps is a relaxation of the city's LP: its optimum is a lower
bound of the plan, and the duals of its cap rows are the city's prices. The next shares are
that master's within a box around the best shares so far (the box doubles after a round that
improved the plan and halves otherwise), so the shares move by steps the parks' cuts can see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from energyhub.optimize.errors import NoSolutionError
from energyhub.optimize.model import Array

FIRST_BOX = 0.05
"""The first box around the best shares, as a fraction of each park's own channels (kW, kg):
the first shares are already within a few per cent of the right ones on the benchmark's cities."""


def proportional(q: dict[str, Array], caps: Array) -> dict[str, Array]:
    """First shares: each park's own optimum (`q`, at no price), less the city's excess over
    each cap in proportion to what the park uses of it."""
    total = sum(q.values(), np.zeros(caps.size))
    excess = np.clip(total - caps, 0.0, None)
    used = sum((np.abs(v) for v in q.values()), np.zeros(caps.size))
    scale = np.where(used > 0, excess / np.where(used > 0, used, 1.0), 0.0)
    return {k: v - scale * np.abs(v) for k, v in q.items()}


@dataclass
class ShareCuts:
    """Every park's cuts, the best shares and the box around them."""

    keys: tuple[str, ...]
    caps: Array
    scale: Array
    """Per park and channel, the box's unit: the park's own channel at no price (≥ 1)."""
    cuts: list[tuple[int, float, Array, Array]] = field(default_factory=list)
    """(park index, value, slope, at): θ_p ≥ value + slope·(s_p − at)."""
    best: dict[str, Array] | None = None
    best_value: float = np.inf
    box: float = FIRST_BOX

    @staticmethod
    def of(keys: Sequence[str], caps: Array, q: dict[str, Array]) -> ShareCuts:
        scale = np.concatenate([np.maximum(np.abs(q[k]), 1.0) for k in keys])
        return ShareCuts(tuple(keys), caps, scale)

    def add_price(self, values: dict[str, float], price: Array) -> None:
        """The parks' optima at `price` (≥ 0): θ_p ≥ value − price·s_p (an answer stopped short
        of its optimum, value −∞, bounds nothing)."""
        for i, key in enumerate(self.keys):
            if np.isfinite(values[key]):
                self.cuts.append((i, values[key], -price, np.zeros(self.caps.size)))

    def add_shares(
        self, shares: dict[str, Array], values: dict[str, float], slopes: dict[str, Array | None]
    ) -> None:
        """The parks' optima within `shares` (a park without a slope adds no cut); the plan's
        value at these shares moves the box."""
        for i, key in enumerate(self.keys):
            slope = slopes[key]
            if slope is not None:
                self.cuts.append((i, values[key], slope, shares[key]))
        total = sum(values.values())
        if np.isfinite(total) and total < self.best_value:  # −∞: an answer stopped short
            self.best, self.best_value = shares, total
            self.box *= 2.0
        else:
            self.box /= 2.0

    def bound(self) -> tuple[float, Array]:
        """The master's optimum (a lower bound of the city's LP) and its cap rows' duals."""
        found = self._solve(None)
        return float(found.fun), np.maximum(-np.asarray(found.ineqlin.marginals)[: self.caps.size],
                                            0.0)  # fmt: skip

    def next_shares(self) -> dict[str, Array]:
        """The master's shares within the box around the best shares."""
        found = self._solve(self.best)
        k = self.caps.size
        return {key: np.asarray(found.x[i * k : (i + 1) * k]) for i, key in enumerate(self.keys)}

    def _solve(self, centre: dict[str, Array] | None) -> Any:
        parks, k = len(self.keys), self.caps.size
        n_s = parks * k
        # columns: every park's share (park-major), then θ per park
        cap_rows = sp.hstack([sp.hstack([sp.identity(k)] * parks), sp.csr_array((k, parks))])
        rows, cols, data, rhs = [], [], [], []
        for r, (i, value, slope, at) in enumerate(self.cuts):
            rows += [r] * (k + 1)
            cols += [*range(i * k, (i + 1) * k), n_s + i]
            data += [*slope, -1.0]
            rhs.append(float(slope @ at) - value)
        cut_rows = sp.csr_array((data, (rows, cols)), (len(self.cuts), n_s + parks))
        lower = np.full(n_s + parks, -np.inf)
        upper = np.full(n_s + parks, np.inf)
        if centre is not None:
            at = np.concatenate([centre[key] for key in self.keys])
            lower[:n_s], upper[:n_s] = at - self.box * self.scale, at + self.box * self.scale
        found = linprog(
            np.r_[np.zeros(n_s), np.ones(parks)],
            A_ub=sp.csr_array(sp.vstack([cap_rows, cut_rows])), b_ub=np.r_[self.caps, rhs],
            bounds=np.c_[lower, upper], method="highs",
        )  # fmt: skip
        if found.status != 0:
            raise NoSolutionError(f"no schedule: the city's share master failed ({found.message})")
        return found
