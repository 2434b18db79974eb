"""A model kept inside HiGHS between solves, so a changed price or bound re-solves warm.

`scipy.optimize.milp` builds a fresh HiGHS model on every call and cannot take a starting basis.
Decomposition solves the same subproblem hundreds of times with new prices: here the model
stays loaded and HiGHS starts each solve from the previous one's basis (measured on a building
day of 15-minute steps with its proximal term: 25 ms from a fixed reference basis, 9 ms from the
previous basis). An answer then depends on the solves before it, so each building is always
solved by the same worker, in the same order (`runner`): plans stay reproducible. This uses
the HiGHS bindings that SciPy ≥ 1.15 ships (`scipy.optimize._highspy`), the solver `milp` calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from energyhub.optimize.errors import PlanError
from energyhub.optimize.model import Array, Status

try:
    from scipy.optimize._highspy import _core as _highs
except ImportError:  # pragma: no cover - depends on the installed SciPy
    _highs = None

_STATUS: dict[str, Status] = {
    "kOptimal": "optimal",
    "kInfeasible": "infeasible",
    "kUnboundedOrInfeasible": "infeasible",
    "kUnbounded": "unbounded",
    "kTimeLimit": "time_limit",
}


def _finite(values: Array, infinity: float) -> Array:
    return np.clip(np.asarray(values, dtype=np.float64), -infinity, infinity)


@dataclass(frozen=True, slots=True)
class WarmResult:
    status: Status
    x: Array | None
    objective: float | None


class WarmModel:
    """An LP or MILP held in HiGHS; costs and column bounds change, the basis carries over."""

    def __init__(
        self,
        c: Array,
        a: sp.csr_array | sp.csc_array,
        col_bounds: tuple[Array, Array],
        row_bounds: tuple[Array, Array],
        integrality: NDArray[np.uint8] | None = None,
    ) -> None:
        if _highs is None:
            raise PlanError("decomposed plans need SciPy ≥ 1.15 (its HiGHS bindings)")
        self._h: Any = _highs._Highs()
        self._h.setOptionValue("output_flag", False)
        inf = float(_highs.kHighsInf)
        self._infinity = inf
        matrix = sp.csc_array(a)
        n = c.size
        integer = np.zeros(n, np.int32) if integrality is None else integrality.astype(np.int32)
        self._h.passModel(
            n,
            matrix.shape[0],
            matrix.nnz,
            1,  # column-wise matrix
            1,  # minimize
            0.0,
            np.asarray(c, dtype=np.float64),
            _finite(col_bounds[0], inf),
            _finite(col_bounds[1], inf),
            _finite(row_bounds[0], inf),
            _finite(row_bounds[1], inf),
            matrix.indptr.astype(np.int32),
            matrix.indices.astype(np.int32),
            matrix.data.astype(np.float64),
            integer,
        )
        self.n = n
        self.shape = (n, matrix.shape[0], matrix.nnz)

    def set_costs(self, cols: np.ndarray, values: Array) -> None:
        """New objective coefficients for `cols`."""
        idx = np.asarray(cols, dtype=np.int32)
        self._h.changeColsCost(idx.size, idx, np.asarray(values, dtype=np.float64))

    def set_bounds(self, cols: np.ndarray, lower: Array, upper: Array) -> None:
        """New bounds for `cols`."""
        idx = np.asarray(cols, dtype=np.int32)
        inf = self._infinity
        self._h.changeColsBounds(idx.size, idx, _finite(lower, inf), _finite(upper, inf))

    def set_row_upper(self, rows: np.ndarray, upper: Array) -> None:
        """New upper bounds for `rows` (no lower bound): a bound change keeps the basis dual
        feasible, so the re-solve only pivots out what the new bounds cut off."""
        inf = self._infinity  # SciPy's HiGHS binding has changeRowBounds only, one row a call
        for row, value in zip(np.asarray(rows, dtype=np.int64), _finite(upper, inf), strict=True):
            self._h.changeRowBounds(int(row), -inf, float(value))

    def row_duals(self, rows: np.ndarray) -> Array:
        """The last solve's duals of `rows` (d objective / d bound)."""
        duals = np.asarray(self._h.getSolution().row_dual, dtype=np.float64)
        return np.asarray(duals[rows], dtype=np.float64)

    def start_from(self, other: WarmModel) -> None:
        """Take `other`'s current basis as the next solve's start (same shape); a basis HiGHS
        rejects leaves this model's own."""
        if other.shape == self.shape:
            self._h.setBasis(other._h.getBasis())

    def solve(self, time_limit_s: float | None = None) -> WarmResult:
        """Solve from the previous basis; x and objective are None without a feasible point."""
        if time_limit_s is not None:
            self._h.setOptionValue("time_limit", float(time_limit_s))
        self._h.run()
        name = str(self._h.getModelStatus()).rpartition(".")[2]
        status: Status = _STATUS.get(name, "error")
        if status != "optimal" and not (status == "time_limit" and self._has_point()):
            return WarmResult(status, None, None)
        x = np.asarray(self._h.getSolution().col_value, dtype=np.float64)
        return WarmResult(status, x, float(self._h.getInfo().objective_function_value))

    def _has_point(self) -> bool:
        return bool(self._h.getInfo().primal_solution_status == 2)
