"""Optimizer errors: bad plan inputs (exit 2) and infeasible plans (exit 3)."""

from __future__ import annotations

from energyhub.errors import EnergyhubError


class PlanError(EnergyhubError):
    """Base of the optimizer's errors."""


class PlanInputError(PlanError):
    """The inputs of a plan break the contract; the message names the column and row (or key)."""

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        self.column = column
        self.row = row
        super().__init__(message)


class InfeasiblePlanError(PlanError):
    """No schedule meets every constraint; names the balance, node, asset and first failing step."""

    def __init__(
        self,
        message: str,
        *,
        constraint: str,
        node: str | None,
        carrier: str | None,
        assets: list[str],
        step: int,
        ts: str,
    ) -> None:
        self.constraint = constraint
        self.node = node
        self.carrier = carrier
        self.assets = assets
        self.step = step
        self.ts = ts
        super().__init__(message)


class NoSolutionError(PlanError):
    """The solver stopped (time limit or failure) before it found any feasible schedule."""


class UncombinedError(InfeasiblePlanError):
    """The decomposition's master found no combination of the buildings' proposals that meets a
    coupling row: the row may still hold in a schedule no proposal came near (the plan then falls
    back to the centralized solve, which tells)."""
