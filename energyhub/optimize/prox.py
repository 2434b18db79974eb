"""A subproblem that answers prices on its coupling channels, with an optional proximal term.

A channel entry is one linear quantity of the subproblem that a coupling constraint sums: a
building's injection into its park's electricity balance at one step, say, or its CO₂ over the
horizon: q = C·x + q0. `respond` minimizes the subproblem's own cost + price·q
+ Σ ρ_j · h(q_j − target_j), where h is the quadratic ½d² interpolated at geometric breakpoints
(scale·2⁻ᵏ): HiGHS in SciPy solves LPs warm but not QPs (measured: 130 ms a building QP, 1 ms
a warm LP), so the proximal term is piecewise linear, exact at the breakpoints. With ρ = 0 it is
the plain priced LP (a Lagrangian response); with a large ρ it nearly projects the target onto
the subproblem's feasible set (a building leaves its target only where it cannot meet it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from energyhub.optimize.highs import WarmModel
from energyhub.optimize.model import Array, Problem, Status

BREAKPOINTS = 10
"""Segments on each side of the proximal term; the smallest is scale / 2⁹."""


@dataclass(frozen=True, slots=True)
class Response:
    """A subproblem's answer: its channel values, own cost, and the solution itself."""

    status: Status
    x: Array | None
    q: Array | None
    cost: float


class ProxModel:
    """The subproblem plus deviation columns d⁺, d⁻ per segment and a fixed target column."""

    def __init__(
        self,
        problem: Problem,
        channels: sp.csr_array,
        offset: Array,
        scale: Array,
    ) -> None:
        self.problem, self.channels, self.offset = problem, channels, offset
        n, m = problem.n_variables, problem.a.shape[0]
        j = channels.shape[0]
        self.j = j
        ladder = scale[:, None] / 2.0 ** np.arange(BREAKPOINTS - 1, -1, -1)[None, :]  # j×K
        width = np.diff(np.concatenate([np.zeros((j, 1)), ladder], axis=1), axis=1)
        middle = ladder - width / 2.0
        segments = BREAKPOINTS + 1
        self._width = np.concatenate([width, np.full((j, 1), np.inf)], axis=1).T.ravel()
        self._slope = np.concatenate([middle, ladder[:, -1:]], axis=1).T.ravel()
        identity = sp.identity(j, format="csr")
        link = sp.hstack([channels, *([-identity] * segments), *([identity] * segments), -identity])
        extra = 2 * segments * j + j
        a = sp.vstack([sp.hstack([problem.a, sp.csr_array((m, extra))]), link])
        lower = np.concatenate([problem.col_lower, np.zeros(extra)])
        upper = np.concatenate([problem.col_upper, self._width, self._width, np.zeros(j)])
        integrality = np.concatenate([problem.integrality, np.zeros(extra, np.uint8)])
        self._model = WarmModel(
            np.concatenate([problem.c, np.zeros(extra)]),
            a,
            (lower, upper),
            (
                np.concatenate([problem.row_lower, -offset]),
                np.concatenate([problem.row_upper, -offset]),
            ),
            integrality,
        )
        self._deviations = np.arange(n, n + 2 * segments * j)
        self._targets = np.arange(n + 2 * segments * j, n + extra)
        self._all = np.arange(n + extra)

    @property
    def shape(self) -> tuple[int, ...]:
        """Columns, rows and nonzeros: models of like buildings share it."""
        return self._model.shape

    def start_from(self, other: ProxModel) -> None:
        """Start the next solve from `other`'s last basis (a model of the same shape)."""
        self._model.start_from(other._model)

    def respond(
        self,
        price: Array,
        rho: Array | None = None,
        target: Array | None = None,
        time_limit_s: float | None = None,
    ) -> Response:
        """Minimize own cost + price·q (+ the proximal term around target with weights rho)."""
        cost = self.problem.c + self.channels.T @ price
        if rho is None or target is None:
            slopes = np.zeros(self._deviations.size)
            target = np.zeros(self.j)
        else:
            slopes = np.tile(np.tile(rho, self._slope.size // self.j) * self._slope, 2)
        self._model.set_costs(self._all, np.concatenate([cost, slopes, np.zeros(self.j)]))
        self._model.set_bounds(
            self._deviations, np.zeros(self._deviations.size), np.tile(self._width, 2)
        )
        self._model.set_bounds(self._targets, target, target)
        return self._result(time_limit_s)

    def _result(self, time_limit_s: float | None) -> Response:
        result = self._model.solve(time_limit_s)
        if result.x is None:
            return Response(result.status, None, None, float("nan"))
        x = result.x[: self.problem.n_variables]
        q = self.channels @ x + self.offset
        return Response(result.status, x, q, float(self.problem.c @ x) + self.problem.offset)
