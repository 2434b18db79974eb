"""Integrated electricity / heat / cooling / gas / hydrogen schedules solved with scipy's HiGHS."""

from energyhub.optimize.errors import (
    InfeasiblePlanError,
    NoSolutionError,
    PlanError,
    PlanInputError,
)
from energyhub.optimize.plan import Plan, plan

__all__ = [
    "InfeasiblePlanError",
    "NoSolutionError",
    "Plan",
    "PlanError",
    "PlanInputError",
    "plan",
]
