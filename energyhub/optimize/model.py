"""Sparse model builder: named variable and constraint blocks assembled for `scipy.optimize.milp`.

Names map to column or row slices (`b01-bess:soc_kwh`, `expo:balance_electricity`), so results,
tests and infeasibility reports speak in names. Build, solve and extract are separate steps.
Expressions are vectorized over rows: an asset adds all its steps with one call, never a loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

Array = NDArray[np.float64]
Index = NDArray[np.int64]
Sense = Literal["==", "<=", ">="]
Status = Literal["optimal", "time_limit", "iteration_limit", "infeasible", "unbounded", "error"]

_STATUS: dict[int, Status] = {0: "optimal", 1: "time_limit", 2: "infeasible", 3: "unbounded"}


def _vector(value: float | Array, n: int) -> Array:
    """A float array of length n from a scalar or an array of that length."""
    out = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
    return np.array(out, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Expr:
    """Rows of linear expressions: row r is Σ vals·x[cols] over its parts' entries + const[r]."""

    n: int
    parts: tuple[tuple[Index, Index, Array], ...]
    const: Array

    __array_ufunc__ = None  # `array * expr` must reach Expr.__rmul__, not numpy broadcasting

    @staticmethod
    def zeros(n: int) -> Expr:
        return Expr(n, (), np.zeros(n))

    def _check(self, other: Expr) -> None:
        if other.n != self.n:
            raise ValueError(f"expressions of {self.n} and {other.n} rows cannot be combined")

    def __add__(self, other: Expr | float | Array) -> Expr:
        if isinstance(other, Expr):
            self._check(other)
            return Expr(self.n, self.parts + other.parts, self.const + other.const)
        return Expr(self.n, self.parts, self.const + _vector(other, self.n))

    def __radd__(self, other: float | Array) -> Expr:
        return self + other

    def __neg__(self) -> Expr:
        return self * -1.0

    def __sub__(self, other: Expr | float | Array) -> Expr:
        return self + (-other)

    def __rsub__(self, other: float | Array) -> Expr:
        return -self + other

    def __mul__(self, coeff: float | Array) -> Expr:
        scale = _vector(coeff, self.n)
        parts = tuple((r, c, v * scale[r]) for r, c, v in self.parts)
        return Expr(self.n, parts, self.const * scale)

    def __rmul__(self, coeff: float | Array) -> Expr:
        return self * coeff

    def sum(self) -> Expr:
        """One row: the sum of all rows."""
        parts = tuple((np.zeros_like(r), c, v) for r, c, v in self.parts)
        return Expr(1, parts, np.array([self.const.sum()]))

    def group(self, groups: Index, n_groups: int) -> Expr:
        """Rows summed into groups: row r goes to groups[r]; rows with group -1 are dropped."""
        parts = []
        for r, c, v in self.parts:
            g = groups[r]
            keep = g >= 0
            parts.append((g[keep], c[keep], v[keep]))
        const = np.bincount(groups[groups >= 0], self.const[groups >= 0], minlength=n_groups)
        return Expr(n_groups, tuple(parts), const.astype(np.float64))

    def repeat(self, n: int) -> Expr:
        """A one-row expression repeated as n identical rows."""
        if self.n != 1:
            raise ValueError("only a one-row expression can be repeated")
        rows = np.arange(n)
        parts = tuple(
            (np.repeat(rows, r.size), np.tile(c, n), np.tile(v, n)) for r, c, v in self.parts
        )
        return Expr(n, parts, np.full(n, self.const[0]))

    def triplets(self) -> tuple[Index, Index, Array]:
        """All parts concatenated as (rows, cols, vals)."""
        if not self.parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        rows, cols, vals = zip(*self.parts, strict=True)
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


@dataclass(frozen=True, slots=True)
class Block:
    """A named run of columns (variables) or rows (constraints)."""

    name: str
    start: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


@dataclass(frozen=True, slots=True)
class Var(Block):
    """A block of variables; `expr()` is the identity expression over its columns."""

    def expr(self) -> Expr:
        cols = np.arange(self.start, self.start + self.size, dtype=np.int64)
        return Expr(
            self.size, ((np.arange(self.size), cols, np.ones(self.size)),), np.zeros(self.size)
        )

    def take(self, rows: Index) -> Expr:
        """The rows `rows` of `expr()` only: x[rows[k]] in row k."""
        idx = np.asarray(rows, dtype=np.int64)
        k = idx.size
        return Expr(k, ((np.arange(k), self.start + idx, np.ones(k)),), np.zeros(k))

    def at(self, i: int) -> Expr:
        """One row: x[i] (a negative i counts from the end)."""
        col = np.array([self.start + range(self.size)[i]], dtype=np.int64)
        return Expr(1, ((np.zeros(1, dtype=np.int64), col, np.ones(1)),), np.zeros(1))

    def lag(self, initial: float) -> Expr:
        """x[t-1] for every row t, with `initial` standing in for x[-1]."""
        rows = np.arange(1, self.size, dtype=np.int64)
        const = np.zeros(self.size)
        const[0] = initial
        return Expr(self.size, ((rows, rows - 1 + self.start, np.ones(self.size - 1)),), const)


@dataclass(frozen=True, slots=True)
class Problem:
    """A built model: arrays for `milp` plus the names of every block, cost term and output."""

    c: Array
    a: sp.csr_array
    row_lower: Array
    row_upper: Array
    col_lower: Array
    col_upper: Array
    integrality: NDArray[np.uint8]
    variables: dict[str, Var]
    constraints: dict[str, Block]
    costs: dict[str, tuple[sp.csr_array, float]]
    accounts: dict[str, tuple[sp.csr_array, float]]
    outputs: dict[str, tuple[sp.csr_array, Array]]

    @property
    def n_variables(self) -> int:
        return self.c.size

    @property
    def n_binaries(self) -> int:
        return int(self.integrality.sum())

    @property
    def offset(self) -> float:
        """The objective's constant, which `c` leaves out (a demand term's −rate × the peak its
        month started from): c·x + offset is the objective `evaluate` reports, and any bound or
        value set against a plan's objective must carry it."""
        return float(sum(const for _, const in self.costs.values()))

    def row_block(self, row: int) -> tuple[Block, int]:
        """The constraint block holding `row` and the row's offset in it."""
        for block in self.constraints.values():
            if block.start <= row < block.start + block.size:
                return block, row - block.start
        raise IndexError(row)


@dataclass(frozen=True, slots=True)
class Solution:
    status: Status
    x: Array | None
    objective: float | None
    gap: float | None
    seconds: float
    message: str


def _row_matrix(expr: Expr, n_cols: int) -> sp.csr_array:
    rows, cols, vals = expr.triplets()
    return sp.csr_array(sp.coo_array((vals, (rows, cols)), shape=(expr.n, n_cols)))


@dataclass
class ModelBuilder:
    """Collects named blocks; `build()` assembles the sparse problem in one go."""

    _lower: list[Array] = field(default_factory=list)
    _upper: list[Array] = field(default_factory=list)
    _integer: list[NDArray[np.uint8]] = field(default_factory=list)
    _rows: list[tuple[Expr, Array, Array]] = field(default_factory=list)
    variables: dict[str, Var] = field(default_factory=dict)
    constraints: dict[str, Block] = field(default_factory=dict)
    costs: dict[str, list[Expr]] = field(default_factory=dict)
    accounts: dict[str, list[Expr]] = field(default_factory=dict)
    outputs: dict[str, Expr] = field(default_factory=dict)
    n_cols: int = 0
    n_rows: int = 0

    def add_variables(
        self,
        name: str,
        size: int,
        lower: float | Array = 0.0,
        upper: float | Array = np.inf,
        *,
        binary: bool = False,
    ) -> Var:
        """A block of `size` continuous (or binary) variables within [lower, upper]."""
        if name in self.variables:
            raise ValueError(f"variable block {name!r} exists already")
        var = Var(name, self.n_cols, size)
        self._lower.append(_vector(0.0 if binary else lower, size))
        self._upper.append(_vector(1.0 if binary else upper, size))
        self._integer.append(np.full(size, 1 if binary else 0, dtype=np.uint8))
        self.variables[name] = var
        self.n_cols += size
        return var

    def add_constraints(
        self, name: str, lhs: Expr, sense: Sense, rhs: float | Array = 0.0
    ) -> Block:
        """Rows `lhs sense rhs`; the expression's constant moves to the right-hand side."""
        if name in self.constraints:
            raise ValueError(f"constraint block {name!r} exists already")
        bound = _vector(rhs, lhs.n) - lhs.const
        lower = bound if sense in ("==", ">=") else np.full(lhs.n, -np.inf)
        upper = bound if sense in ("==", "<=") else np.full(lhs.n, np.inf)
        block = Block(name, self.n_rows, lhs.n)
        self._rows.append((lhs, lower, upper))
        self.constraints[name] = block
        self.n_rows += lhs.n
        return block

    def add_cost(self, term: str, expr: Expr) -> None:
        """Add every row of `expr` to the objective under the reported term `term`."""
        self.costs.setdefault(term, []).append(expr.sum())

    def add_account(self, name: str, expr: Expr) -> None:
        """A quantity reported after the solve but not optimized (emissions by carrier)."""
        self.accounts.setdefault(name, []).append(expr.sum())

    def add_output(self, name: str, expr: Expr) -> None:
        """A per-step series derived from variables, reported in the schedule."""
        self.outputs[name] = expr

    def _totals(self, terms: dict[str, list[Expr]]) -> dict[str, tuple[sp.csr_array, float]]:
        out = {}
        for term, exprs in terms.items():
            total = sum(exprs[1:], exprs[0])
            out[term] = (_row_matrix(total, self.n_cols), float(total.const[0]))
        return out

    def build(self) -> Problem:
        """Assemble the sparse constraint matrix, bounds and objective."""
        if self._rows:
            offsets = np.cumsum([0] + [e.n for e, _, _ in self._rows[:-1]])
            trip = [e.triplets() for e, _, _ in self._rows]
            rows = np.concatenate([r + o for (r, _, _), o in zip(trip, offsets, strict=True)])
            cols = np.concatenate([c for _, c, _ in trip])
            vals = np.concatenate([v for _, _, v in trip])
            row_lower = np.concatenate([lo for _, lo, _ in self._rows])
            row_upper = np.concatenate([up for _, _, up in self._rows])
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
            vals = row_lower = row_upper = np.zeros(0)
        a = sp.csr_array(sp.coo_array((vals, (rows, cols)), shape=(self.n_rows, self.n_cols)))
        costs = self._totals(self.costs)
        c = np.zeros(self.n_cols)
        for matrix, _ in costs.values():
            c += matrix.toarray()[0]
        return Problem(
            c=c,
            a=a,
            row_lower=row_lower,
            row_upper=row_upper,
            col_lower=np.concatenate(self._lower) if self._lower else np.zeros(0),
            col_upper=np.concatenate(self._upper) if self._upper else np.zeros(0),
            integrality=np.concatenate(self._integer) if self._integer else np.zeros(0, np.uint8),
            variables=dict(self.variables),
            constraints=dict(self.constraints),
            costs=costs,
            accounts=self._totals(self.accounts),
            outputs={k: (_row_matrix(e, self.n_cols), e.const) for k, e in self.outputs.items()},
        )


def solve(
    problem: Problem, *, time_limit_s: float | None = None, mip_gap: float | None = None
) -> Solution:
    """Solve with HiGHS through `scipy.optimize.milp`; never raises for an unsolved model."""
    options: dict[str, float | bool] = {"presolve": True, "disp": False}
    if time_limit_s is not None:
        options["time_limit"] = time_limit_s
    if mip_gap is not None:
        options["mip_rel_gap"] = mip_gap
    constraints = (
        LinearConstraint(problem.a, problem.row_lower, problem.row_upper)
        if problem.a.shape[0]
        else None
    )
    started = time.perf_counter()
    result = milp(
        problem.c,
        integrality=problem.integrality,
        bounds=Bounds(problem.col_lower, problem.col_upper),
        constraints=constraints,
        options=options,
    )
    seconds = time.perf_counter() - started
    x = None if result.x is None else np.asarray(result.x, dtype=np.float64)
    gap = getattr(result, "mip_gap", None)
    return Solution(
        status=_STATUS.get(int(result.status), "error"),
        x=x,
        objective=None if x is None else float(problem.c @ x) + problem.offset,
        gap=float(gap) if gap is not None and problem.n_binaries and np.isfinite(gap) else None,
        seconds=seconds,
        message=str(result.message),
    )


def evaluate(problem: Problem, x: Array, which: Literal["costs", "accounts"]) -> dict[str, float]:
    """Each named cost term or account evaluated at x."""
    terms = problem.costs if which == "costs" else problem.accounts
    return {name: float((matrix @ x)[0] + const) for name, (matrix, const) in terms.items()}


def extract(problem: Problem, x: Array, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The schedule: one column per per-step variable block and per output, by name."""
    n = len(index)
    columns: dict[str, Array] = {}
    for name, var in problem.variables.items():
        if var.size == n:
            columns[name] = x[var.slice]
    for name, (matrix, const) in problem.outputs.items():
        columns[name] = matrix @ x + const
    return pd.DataFrame(columns, index=index)


def scalars(problem: Problem, x: Array, n_steps: int) -> dict[str, float]:
    """Continuous variable blocks that are not per-step series (a horizon's peak import), by
    name; binaries in a few steps only (`assets._grid_exclusive`) are not scalars."""
    return {
        name: float(x[var.start])
        for name, var in problem.variables.items()
        if var.size == 1 < n_steps and not problem.integrality[var.start]
    }


def relaxed_duals(problem: Problem) -> tuple[Array, Array] | None:
    """The LP relaxation's solution and each row's dual (∂objective/∂bound), or None if unsolved."""
    a, lower, upper = problem.a, problem.row_lower, problem.row_upper
    eq = lower == upper
    above = ~eq & np.isfinite(upper)
    below = ~eq & np.isfinite(lower)
    result = linprog(
        problem.c,
        A_ub=sp.vstack([a[above], -a[below]]).tocsr(),
        b_ub=np.concatenate([upper[above], -lower[below]]),
        A_eq=a[eq],
        b_eq=lower[eq],
        bounds=np.column_stack([problem.col_lower, problem.col_upper]),
        method="highs",
    )
    if result.status != 0:
        return None
    duals = np.zeros(a.shape[0])
    duals[eq] = result.eqlin.marginals
    marginals = np.asarray(result.ineqlin.marginals)
    duals[above] = marginals[: int(above.sum())]
    duals[below] -= marginals[int(above.sum()) :]
    return np.asarray(result.x, dtype=np.float64), duals
