"""A park's buildings as a few virtual buildings: a small model of the whole plan to start from.

Buildings with the same kinds of assets and the same intensive parameters (efficiencies, COPs,
SOC fractions, windows) form a group; the group becomes one virtual building whose sizes
(`power_kw`, `energy_kwh`, `heat_max_kw`, ...), demands and available PV are the group's sums,
built by the same asset functions as every building. Any schedule of the real buildings sums to
a schedule of the virtual ones, so the virtual plan (real heads, real caps) is a relaxation: its
optimum bounds the real plan's from below. A building with binaries of its own (a CHP with min
load or start cost) stays a group of one: the sum of units that each run at min load or not is
not one unit with a bigger min load. The virtual plan gives the decomposition the heads' on/off
pattern, prices on the park balances and each building's share of its group's draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from energyhub.optimize.coupling import Caps, add_caps
from energyhub.optimize.inputs import PlanInputs
from energyhub.optimize.levels import Built, add_park, binary_policy
from energyhub.optimize.model import Array, ModelBuilder
from energyhub.optimize.network import Binaries, Prices
from energyhub.optimize.scope import Node, Scope
from energyhub.sites import CHP, Asset, GridConnection

EXTENSIVE = ("peak_kw", "energy_kwh", "power_kw", "heat_max_kw", "cooling_max_kw", "power_max_kw")
"""Asset fields that add up when assets are merged; every other field must be equal."""

LINK_EXTENSIVE = ("import_max_kw", "export_max_kw")
"""A building feeder's fields that add up; its tariff fields play no part in a building model."""

VIRTUAL = "~v"
"""Joins a park's id and a group number into a virtual building's id (no real id has a `~`)."""


@dataclass(frozen=True, slots=True)
class Group:
    """Buildings merged into one virtual building, each with its share of the group's sizes."""

    park: str
    node: str
    members: tuple[str, ...]
    shares: Array


@dataclass(frozen=True, slots=True)
class Virtual:
    """The virtual plan's scopes and inputs, and which buildings each virtual one stands for."""

    scopes: tuple[Scope, ...]
    inputs: PlanInputs
    groups: tuple[Group, ...]


def _merges(asset: Asset) -> bool:
    """Whether the asset can be summed with its likes (it has no on/off of its own)."""
    return not (isinstance(asset, CHP) and (asset.min_load > 0 or asset.start_cost_cny > 0))


def _signature(node: Node) -> tuple[object, ...] | None:
    """What must be equal for buildings to merge: their assets' intensive fields; None if the
    building must stay alone."""
    if not all(_merges(a) for a in node.assets):
        return None
    parts = sorted(repr(sorted(a.model_dump(exclude={"id", "name", *EXTENSIVE}).items()))
                   for a in node.assets)  # fmt: skip
    link = None
    if node.link is not None:
        link = repr(sorted(node.link.model_dump(exclude=set(LINK_EXTENSIVE)).items()))
    return (tuple(parts), link)


def _sorted_assets(node: Node) -> list[Asset]:
    keyed = [(repr(sorted(a.model_dump(exclude={"id", "name", *EXTENSIVE}).items())), a)
             for a in node.assets]  # fmt: skip
    return [a for _, a in sorted(keyed, key=lambda pair: pair[0])]


def _size(asset: Asset) -> float:
    return float(sum(getattr(asset, f, 0.0) or 0.0 for f in EXTENSIVE))


Owned = dict[str, list[tuple[str, Array]]]
"""Input columns by owner (`<owner>:<quantity>`): (quantity, values)."""


def _merge(
    vid: str, members: Sequence[Node], owned: Owned, n: int, columns: dict[str, Array]
) -> tuple[Node, Array]:
    """The virtual node of `members` (summed sizes, summed columns into `columns`) and shares."""
    ordered = [_sorted_assets(node) for node in members]
    merged: list[Asset] = []
    weights = np.zeros((len(members), max(len(ordered[0]), 1)))
    for i, likes in enumerate(zip(*ordered, strict=True)):
        first = likes[0]
        aid = f"{vid}-{i}"
        sums = {f: sum(getattr(a, f) for a in likes) for f in EXTENSIVE if hasattr(first, f)}
        merged.append(first.model_copy(update={"id": aid, **sums}))
        sizes = np.array([_size(a) for a in likes])
        weights[:, i] = sizes / sizes.sum() if sizes.sum() > 0 else 1.0 / len(members)
        for a in likes:
            _add_columns(columns, owned.get(a.id, []), aid, n)
    for node in members:
        _add_columns(columns, owned.get(node.id, []), vid, n)
    link: GridConnection | None = None
    if members[0].link is not None:
        sums = {f: sum(getattr(m.link, f) for m in members) for f in LINK_EXTENSIVE}
        link = members[0].link.model_copy(update=sums)
    shares = weights.mean(axis=1) if ordered[0] else np.full(len(members), 1.0 / len(members))
    return Node(vid, tuple(merged), True, link), shares


def _add_columns(
    columns: dict[str, Array], owned: list[tuple[str, Array]], into: str, n: int
) -> None:
    """Add an owner's input columns onto `into`'s."""
    for quantity, values in owned:
        key = f"{into}:{quantity}"
        columns[key] = columns.get(key, np.zeros(n)) + values


def virtual_plan(scopes: Sequence[Scope], inputs: PlanInputs) -> Virtual:
    """Every park's buildings grouped and merged into virtual buildings."""
    columns = dict(inputs.columns)
    owned: Owned = {}
    for name, values in inputs.columns.items():
        who, sep, quantity = name.rpartition(":")
        if sep:
            owned.setdefault(who, []).append((quantity, values))
    out_scopes, groups = [], []
    for scope in scopes:
        head, *buildings = scope.nodes
        by_signature: dict[object, list[Node]] = {}
        for i, node in enumerate(buildings):
            signature = _signature(node)
            by_signature.setdefault(signature if signature is not None else i, []).append(node)
        nodes = [head]
        for g, members in enumerate(by_signature.values()):
            vid = f"{scope.id}{VIRTUAL}{g}"
            node, shares = _merge(vid, members, owned, inputs.n, columns)
            nodes.append(node)
            groups.append(Group(scope.id, vid, tuple(n.id for n in members), shares))
        out_scopes.append(replace(scope, nodes=tuple(nodes)))
    return Virtual(tuple(out_scopes), replace(inputs, columns=columns), tuple(groups))


def build_virtual(virtual: Virtual, caps: Caps) -> Built:
    """The virtual plan as one MILP: real heads and caps, virtual buildings; no storage
    exclusivity binaries (a sum of stores may charge one and discharge another)."""
    m = ModelBuilder()
    contexts = []
    for scope in virtual.scopes:
        policy = binary_policy(scope, Prices.of(scope, virtual.inputs))
        contexts.append(add_park(m, scope, virtual.inputs, Binaries("off", policy.grid)))
    if not caps.empty:
        add_caps(m, contexts, caps)
    return Built(m.build(), tuple(contexts))


def head_binaries(built: Built, x: Array) -> dict[str, NDArray[np.float64]]:
    """The heads' binary blocks in `x`, rounded, by variable name."""
    problem, out = built.problem, {}
    for name, var in problem.variables.items():
        if VIRTUAL not in name and problem.integrality[var.start]:
            out[name] = np.round(x[var.slice])
    return out


def single_binaries(
    virtual: Virtual, scopes: Sequence[Scope], built: Built, x: Array
) -> dict[str, NDArray[np.float64]]:
    """The binaries of every building that stayed a group of one (one with a CHP of its own), by
    its real column names: the virtual plan decided them with the park around it."""
    nodes = {node.id: node for scope in scopes for node in scope.nodes}
    problem, out = built.problem, {}
    for group in virtual.groups:
        if len(group.members) != 1:
            continue
        assets = _sorted_assets(nodes[group.members[0]])
        names = {f"{group.node}-{i}": a.id for i, a in enumerate(assets)}
        for name, var in problem.variables.items():
            owner, sep, rest = name.partition(":")
            if sep and owner in names and problem.integrality[var.start]:
                out[f"{names[owner]}:{rest}"] = np.round(x[var.slice])
    return out
