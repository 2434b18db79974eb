"""Build the model of a scope: sequence the asset functions, then the gas supplies and balances.

Building level: one node, its assets, its own grid connection (or the park's tariff and limits).
Park level: the park node (shared assets, the park connection limit and demand charge) and every
building as a node fed from the park bus (a building with its own `grid:` billed its own demand
charge on that feeder, as its own plan bills it). City level: every park the same way in one
model, plus the city's caps (demand-response import caps, a carbon cap) across them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from energyhub.optimize import assets, conversion
from energyhub.optimize.baseline import rules_import_kw
from energyhub.optimize.coupling import Caps, add_caps
from energyhub.optimize.errors import PlanInputError
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.model import Array, ModelBuilder, Problem, Var
from energyhub.optimize.network import Binaries, Carrier, Context, Exclusivity, Prices
from energyhub.optimize.reserve import add_peak_reserve
from energyhub.optimize.scope import Node, Scope
from energyhub.optimize.unserved import add_unserved
from energyhub.sites import (
    CHP,
    PV,
    AbsorptionChiller,
    Asset,
    Battery,
    ElectricBoiler,
    ElectricChiller,
    Electrolyzer,
    FlexibleLoad,
    FuelCell,
    GasBoiler,
    HeatPump,
    HydrogenStore,
    ThermalStorage,
    Wind,
)


@dataclass(frozen=True, slots=True)
class Built:
    """A built problem with what extraction and diagnosis need to speak in names: one context
    per park (or the one building) it holds."""

    problem: Problem
    contexts: tuple[Context, ...]

    @property
    def ctx(self) -> Context:
        """The first (at building and park level the only) context."""
        return self.contexts[0]

    def rebinarize(self, x: Array) -> Binaries | None:
        """The policy to solve again with if a lazy family's relaxed optimum flows both ways."""
        wanted = [ctx.simultaneous(x) for ctx in self.contexts]
        if all(w == ctx.binaries for w, ctx in zip(wanted, self.contexts, strict=True)):
            return None
        order: list[Exclusivity] = ["off", "lazy", "on"]
        storage = max((w.storage for w in wanted), key=order.index)
        grid = max((w.grid for w in wanted), key=order.index)
        stores = frozenset().union(*(w.stores for w in wanted))
        return Binaries(storage, grid, stores, any(w.every_step for w in wanted))

    def sources(self, node: str, carrier: str) -> list[str]:
        return [s for ctx in self.contexts for s in ctx.sources(node, carrier)]


def binary_policy(scope: Scope, prices: Prices) -> Binaries:
    """Add exclusivity binaries only where simultaneous flows could pay.

    Importing and exporting at once loses money in every step where the import price (with its
    carbon price) is at least the export price: the grid gets binaries (`on`) only if some step
    is not so, and then only in those steps (`Prices.arbitrage_steps`).
    Charging and discharging a lossy store at once only wastes energy; that can pay only if
    energy has negative value in some step: a negative import price, a store that must end below
    its initial SOC, or a CHP or fuel cell whose heat comes with electricity it is run for (or the
    other way round) beyond what the node can use. Without those, storage binaries are
    `off`. With them they are `lazy`: the relaxed problem is solved first, and since a relaxed
    optimum without simultaneous flows is feasible for the binary problem, it is its optimum too;
    only if the relaxed optimum does charge and discharge at once is the problem solved again
    with the binaries. The stores `clash_prone` names get theirs from the start, which spares
    that second solve where the data already tell.
    """
    import_cost = prices.import_effective_cny_per_kwh
    arbitrage = scope.grid.export_max_kw > 0 and prices.arbitrage_steps().size > 0
    all_assets = [a for _, a in scope.assets()]
    co_production = any(isinstance(a, CHP | FuelCell) for a in all_assets)
    must_discharge = any(_must_discharge(a) for a in all_assets)
    negative = bool(np.any(import_cost < 0))
    if not (co_production or must_discharge or negative):
        return Binaries(storage="off", grid="on" if arbitrage else "off")
    return Binaries("lazy", "on" if arbitrage else "off", clash_prone(scope, negative=negative))


Store = Battery | ThermalStorage | HydrogenStore


def _must_discharge(asset: Asset) -> bool:
    if not isinstance(asset, Store) or asset.soc_final is None:
        return False
    return asset.soc_final < asset.soc_initial


def _carrier(store: Store) -> Carrier:
    if isinstance(store, Battery):
        return "electricity"
    return store.carrier if isinstance(store, ThermalStorage) else "hydrogen"


def clash_prone(scope: Scope, *, negative: bool) -> frozenset[str]:
    """The stores whose relaxed flows are expected to go both ways, by the data alone.

    A CHP's or fuel cell's heat comes with its electricity: heat beyond its node's demand has
    nowhere to go but a heat store there wasting it. A store that must end below its initial SOC
    may waste the difference; with a negative import price every battery may waste imported
    energy. The rest stay lazy (the heat stores a park head's district heat reaches, too: they
    are many and few of them clash): this only spares a second solve, the relaxed solution is
    checked all the same.
    """
    prone = set()
    for node, asset in scope.assets():
        if not isinstance(asset, Store):
            continue
        carrier = _carrier(asset)
        heat = carrier == "heat" and any(isinstance(a, CHP | FuelCell) for a in node.assets)
        if heat or _must_discharge(asset) or (negative and carrier == "electricity"):
            prone.add(asset.id)
    return frozenset(prone)


def add_asset(ctx: Context, node: str, asset: Asset) -> None:
    """Dispatch to the asset type's function."""
    match asset:
        case PV() | Wind():
            assets.add_renewable(ctx, node, asset)
        case Battery():
            assets.add_storage(ctx, node, asset, "electricity")
        case ThermalStorage():
            assets.add_storage(ctx, node, asset, asset.carrier)
        case HydrogenStore():
            assets.add_storage(ctx, node, asset, "hydrogen")
        case FlexibleLoad():
            assets.add_flexible_load(ctx, node, asset)
        case HeatPump():
            conversion.add_heat_pump(ctx, node, asset)
        case ElectricChiller():
            conversion.add_electric_chiller(ctx, node, asset)
        case AbsorptionChiller():
            conversion.add_absorption_chiller(ctx, node, asset)
        case GasBoiler():
            conversion.add_gas_boiler(ctx, node, asset)
        case ElectricBoiler():
            conversion.add_electric_boiler(ctx, node, asset)
        case CHP():
            conversion.add_chp(ctx, node, asset)
        case Electrolyzer():
            conversion.add_electrolyzer(ctx, node, asset)
        case FuelCell():
            conversion.add_fuel_cell(ctx, node, asset)


def _check_gas(scope: Scope) -> None:
    if scope.gas is not None:
        return
    burners = [a.id for _, a in scope.assets() if isinstance(a, CHP | GasBoiler)]
    if burners:
        raise PlanInputError(
            f"{burners[0]} burns gas but park {scope.park.id!r} has no gas: key "
            "(price_cny_per_nm3, lhv_kwh_per_nm3)",
            column="gas",
        )


ParkHook = Callable[[Context], None]
"""Adds more injections into a park's balances before they are closed (the decomposition's
proposals or aggregates stand in for the buildings there)."""


def add_park(
    m: ModelBuilder,
    scope: Scope,
    inputs: PlanInputs,
    binaries: Binaries | None = None,
    hook: ParkHook | None = None,
) -> Context:
    """One scope's nodes, assets, links, gas and balances into `m`; returns its context."""
    _check_gas(scope)
    prices = Prices.of(scope, inputs)
    ctx = Context(m, inputs, scope, prices, binaries or binary_policy(scope, prices))
    head, *rest = scope.nodes
    rules = rules_import_kw(Context.bare(scope, inputs))  # what the margin is measured against
    assets.add_grid(ctx, head.id, scope.grid, rules[head.id])
    for node in scope.nodes:
        for asset in node.assets:
            add_asset(ctx, node.id, asset)
        add_unserved(ctx, node.id)  # only where the inputs allow it (perfect foresight)
    add_peak_reserve(ctx, head.id, scope.grid)
    for node in rest:
        assets.add_building_links(ctx, head, node, rules.get(node.id))
    if hook is not None:
        hook(ctx)
    assets.add_gas_supplies(ctx)
    ctx.add_balances()
    return ctx


def build_scopes(
    scopes: Sequence[Scope],
    inputs: PlanInputs,
    binaries: Binaries | None = None,
    caps: Caps | None = None,
) -> Built:
    """Every scope in one MILP, tied by the caps; exclusivity binaries by `binaries` or policy."""
    m = ModelBuilder()
    contexts = tuple(add_park(m, scope, inputs, binaries) for scope in scopes)
    if caps is not None:
        add_caps(m, contexts, caps)
    return Built(m.build(), contexts)


def build_model(
    scope: Scope, inputs: PlanInputs, binaries: Binaries | None = None, caps: Caps | None = None
) -> Built:
    """The whole MILP of a scope; exclusivity binaries by `binaries` or else `binary_policy`."""
    return build_scopes((scope,), inputs, binaries, caps)


def build_building(
    scope: Scope, head: Node, inputs: PlanInputs
) -> tuple[Built, dict[Carrier, Var]]:
    """A building alone, fed from its park's bus: the decomposition's subproblem.

    Storage binaries are on wherever the policy would make them lazy, and wherever the park's
    CHP or fuel cell makes district heat or cooling: its heat comes with electricity it may be
    run for, and the building alone would waste the surplus by charging and discharging a store
    at once. A subproblem's proposals are combined later, so they must each be valid on their own.
    A building with its own `grid:` is billed its demand charge here, as in the park's model: it
    is the building's alone.
    """
    _check_gas(scope)
    prices = Prices.of(scope, inputs)
    policy = binary_policy(scope, prices)
    district = any(isinstance(a, CHP | FuelCell) for a in head.assets) and any(
        head.produces(c) for c in ("heat", "cooling")
    )
    binaries = Binaries("off" if policy.storage == "off" and not district else "on", "off")
    ctx = Context(ModelBuilder(), inputs, scope, prices, binaries)
    node = scope.nodes[0]
    for asset in node.assets:
        add_asset(ctx, node.id, asset)
    add_unserved(ctx, node.id)
    feeds = assets.add_feeds(ctx, head, node)
    if node.charged_link is not None:  # its own connection's demand charge: the rules' import
        rules = rules_import_kw(Context.bare(scope, inputs))[node.id]
        assets.add_feeder_demand_charge(ctx, node, feeds["electricity"], rules)
    assets.add_gas_supplies(ctx)
    ctx.add_balances()
    return Built(ctx.m.build(), (ctx,)), feeds
