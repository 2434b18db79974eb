"""Heat and cooling a plan may leave unserved, priced as the counterfactual prices it.

Only a plan whose inputs carry `<node>:unserved_<carrier>_kw` gets this block: perfect foresight
on the metered demand (energyhub.plans.realized), where the column is what the meters show the
plant left unserved in each step (energyhub.scheduler.demand.unserved_thermal). The heat and
cooling meters read the demand, not what was delivered; where a store charged while its machines
were at their limit, the building went short, and a re-solve pinned to the store's metered SOC
had no schedule at all. Up to that column (and never more than the demand) the node's balance
may go short at UNSERVED_CNY_PER_KWH, the counterfactual's price (energyhub.optimize.baseline),
so both re-solves on the metered demand price it alike. The bound matters: at 1.2 CNY/kWh,
shedding cooling at a billed peak step costs less than the demand charge its chiller's draw adds
(40 CNY/kW ÷ a COP of 5.5), so an unbounded slack would let the re-solve shed demand the meters
show served to shave the month's peak.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from energyhub.optimize.baseline import UNSERVED_CNY_PER_KWH
from energyhub.optimize.network import Context

UNSERVED_CARRIERS: tuple[Literal["heat", "cooling"], ...] = ("heat", "cooling")
"""The carriers whose meters read the demand rather than what was delivered."""


def unserved_column(node: str, carrier: str) -> str:
    """The input column of the most of `carrier` demand (kW) `node` may leave unserved."""
    return f"{node}:unserved_{carrier}_kw"


def add_unserved(ctx: Context, node: str) -> None:
    """Unserved heat and cooling at `node` (`<node>:unserved_<carrier>_kw`, kW into its balance),
    each step within its input column and the node's demand, cost term `unserved`."""
    for carrier in UNSERVED_CARRIERS:
        allowed = ctx.inputs.get(unserved_column(node, carrier))
        if allowed is None:
            continue
        demand = ctx.demand(node, carrier)
        upper = np.clip(allowed, 0.0, np.zeros(ctx.n) if demand is None else demand)
        if not upper.any():
            continue
        short = ctx.m.add_variables(unserved_column(node, carrier), ctx.n, 0.0, upper)
        price = UNSERVED_CNY_PER_KWH[carrier]
        ctx.m.add_cost("unserved", price * ctx.dt_h * short.expr())
        ctx.inject(node, carrier, short.name, short.expr())
