"""The context asset functions share: the builder, the steps, prices, and the carrier balances."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.model import Array, Expr, Index, ModelBuilder, Var
from energyhub.optimize.scope import Scope
from energyhub.optimize.tariffs import import_prices

Carrier = Literal["electricity", "heat", "cooling", "gas", "hydrogen"]
CARRIERS: tuple[Carrier, ...] = ("electricity", "heat", "cooling", "gas", "hydrogen")

SIMULTANEOUS_TOLERANCE_KW = 1e-6
"""Flows below this are solver noise: a relaxed pair this small is not charging and discharging."""


@dataclass(frozen=True, slots=True)
class Prices:
    """Per-step prices and emission factors the objective and the baseline both use."""

    import_cny_per_kwh: Array
    export_cny_per_kwh: Array
    grid_kg_per_kwh: Array
    gas_cny_per_kwh: float
    gas_kg_per_kwh: float
    carbon_cny_per_kg: float

    @property
    def import_effective_cny_per_kwh(self) -> Array:
        """Import price plus the carbon price of the imported energy's emissions."""
        return self.import_cny_per_kwh + self.carbon_cny_per_kg * self.grid_kg_per_kwh

    def arbitrage_steps(self) -> Index:
        """The steps where exporting pays more than importing costs (with its carbon price).

        Only there can importing and exporting at once pay: elsewhere cutting both by the
        smaller keeps every balance, only lowers the import (its limit, peak, caps and CO₂ hold)
        and saves (import − export price) · kWh plus the export tie-break, so no optimum does it.
        """
        cheaper = self.import_effective_cny_per_kwh < self.export_cny_per_kwh
        return np.flatnonzero(np.broadcast_to(cheaper, self.import_cny_per_kwh.shape))

    @property
    def gas_effective_cny_per_kwh(self) -> float:
        return self.gas_cny_per_kwh + self.carbon_cny_per_kg * self.gas_kg_per_kwh

    @staticmethod
    def of(scope: Scope, inputs: PlanInputs) -> Prices:
        """Tariff, export price and carbon factor, each overridden by its inputs column if any."""
        tariff = inputs.get("import_price_cny_per_kwh")
        gas = scope.gas
        return Prices(
            import_cny_per_kwh=import_prices(scope.grid, inputs.index)
            if tariff is None
            else tariff,
            export_cny_per_kwh=np.asarray(
                inputs.get("export_price_cny_per_kwh", scope.grid.export_price_cny_per_kwh)
            ),
            grid_kg_per_kwh=np.asarray(inputs.get("grid_kg_per_kwh", scope.carbon.grid_kg_per_kwh)),
            gas_cny_per_kwh=0.0 if gas is None else gas.price_cny_per_nm3 / gas.lhv_kwh_per_nm3,
            gas_kg_per_kwh=scope.carbon.gas_kg_per_kwh,
            carbon_cny_per_kg=scope.carbon.price_cny_per_t / 1000.0,
        )


Exclusivity = Literal["off", "lazy", "on"]
"""No binary (proven unnecessary), none yet (verify the relaxed solution), or a binary per step."""


def _store(charge: Var) -> str:
    """The asset id of a store's charge column (`<asset>:charge_kw`)."""
    return charge.name.rpartition(":")[0]


@dataclass(frozen=True, slots=True)
class Binaries:
    """Exclusivity binaries: storage charge vs discharge, grid import vs export."""

    storage: Exclusivity
    grid: Exclusivity
    stores: frozenset[str] = frozenset()
    """Under a `lazy` storage policy, the stores that get their binary all the same: those
    expected to clash (`levels.clash_prone`) and those whose relaxed flows went both ways, not
    every store of the park."""
    every_step: bool = False
    """An `on` grid gets a binary in every step, not only where exporting pays more than
    importing costs (`Prices.arbitrage_steps`): to check that the fewer change nothing."""

    @staticmethod
    def everywhere() -> Binaries:
        """A binary for every store and the grid in every step (tests compare against it)."""
        return Binaries("on", "on", every_step=True)


@dataclass
class Context:
    """Everything an asset function needs; injections are summed into balances at the end."""

    m: ModelBuilder
    inputs: PlanInputs
    scope: Scope
    prices: Prices
    binaries: Binaries
    injections: dict[tuple[str, Carrier], list[tuple[str, Expr]]] = field(default_factory=dict)
    relaxed: dict[str, list[tuple[Var, Var]]] = field(default_factory=dict)
    """Flow pairs left without a binary under a `lazy` policy, by family (storage, grid)."""

    @staticmethod
    def bare(scope: Scope, inputs: PlanInputs) -> Context:
        """A context with an empty builder: prices and inputs for rules (the baseline)."""
        return Context(
            ModelBuilder(), inputs, scope, Prices.of(scope, inputs), Binaries("off", "off")
        )

    @property
    def n(self) -> int:
        return self.inputs.n

    @property
    def dt_h(self) -> float:
        return self.inputs.dt_h

    def inject(self, node: str, carrier: Carrier, source: str, expr: Expr) -> None:
        """Add `expr` (kW, positive into the node) from asset or link `source` to a balance."""
        self.injections.setdefault((node, carrier), []).append((source, expr))

    def exclusive(self, family: Literal["storage", "grid"], a: Var, b: Var) -> bool:
        """Whether to add a binary keeping a and b apart; remembers the pair if it is lazy."""
        policy = self.binaries.storage if family == "storage" else self.binaries.grid
        if family == "storage" and _store(a) in self.binaries.stores:
            return True
        if policy == "lazy":
            self.relaxed.setdefault(family, []).append((a, b))
        return policy == "on"

    def simultaneous(self, x: Array) -> Binaries:
        """The policy to re-solve with: a binary for each lazy store whose flows went both ways,
        `on` for the grid family if its pairs did."""

        def clashing(family: str) -> list[str]:
            return [
                _store(a)
                for a, b in self.relaxed.get(family, [])
                if np.any(np.minimum(x[a.slice], x[b.slice]) > SIMULTANEOUS_TOLERANCE_KW)
            ]

        grid: Exclusivity = "on" if clashing("grid") else self.binaries.grid
        stores = self.binaries.stores.union(clashing("storage"))
        return replace(self.binaries, grid=grid, stores=stores)

    def demand(self, node: str, carrier: Carrier) -> Array | None:
        return self.inputs.get(f"{node}:{carrier}_kw")

    def add_balances(self) -> None:
        """One balance per carrier per node per step: injections equal the demand column."""
        for node in self.scope.nodes:
            for carrier in CARRIERS:
                terms = self.injections.get((node.id, carrier), [])
                demand = self.demand(node.id, carrier)
                if not terms and (demand is None or not demand.any()):
                    continue
                lhs = Expr.zeros(self.n)
                for _, expr in terms:
                    lhs = lhs + expr
                rhs = np.zeros(self.n) if demand is None else demand
                self.m.add_constraints(f"{node.id}:balance_{carrier}", lhs, "==", rhs)

    def sources(self, node: str, carrier: str) -> list[str]:
        """Names of the assets and links that feed or draw on a balance."""
        return [
            source
            for (n, c), terms in self.injections.items()
            if (n, c) == (node, carrier)
            for source, _ in terms
        ]
