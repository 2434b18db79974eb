"""Reference checks of `alerts:` blocks: meters, batteries and limits the rules name must exist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import ValidationError

from energyhub.alerts.rules import (
    PARK_ONLY,
    RULE_NAMES,
    AlertRules,
    LimitRule,
    Rule,
    RuleName,
    effective,
)

if TYPE_CHECKING:
    from energyhub.sites.tree import Building, Park, SiteFile


def kind_of(owner: Park | Building) -> str:
    """The defaults key of a park or building: `park` or the building's class."""
    return str(getattr(owner, "building_class", "park"))


def rule_problems(path: str, owner: Park | Building, rules: AlertRules | None) -> Iterator[str]:
    """One `path: message` line per rule that names something unknown or cannot hold."""
    if rules is None:
        return
    where = f"{path}.alerts"
    kind = kind_of(owner)
    for name in RULE_NAMES:
        if getattr(rules, name) is not None and name in PARK_ONLY and kind != "park":
            yield f"{where}.{name}: applies to parks only, not building {owner.id!r}"
    meters = {m.id for m in owner.meters}
    if rules.silence is not None:
        for i, meter in enumerate(rules.silence.meters or []):
            if meter not in meters:
                yield f"{where}.silence.meters[{i}]: no meter {meter!r} in {owner.id}"
    if rules.soc is not None:
        batteries = {a.id for a in owner.assets if a.type == "battery"}
        for i, asset in enumerate(rules.soc.assets or []):
            if asset not in batteries:
                yield f"{where}.soc.assets[{i}]: no battery {asset!r} in {owner.id}"
    for name in RULE_NAMES:
        try:
            rule = effective(kind, rules, name)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                message = str(error["msg"]).removeprefix("Value error, ")
                yield f"{where}.{name}{'.' + field if field else ''}: {message}"
            continue
        explicit_limit = name == "limit" and rules.limit is not None
        if explicit_limit and isinstance(rule, LimitRule) and rule.limit_kw is None:
            if owner.grid is None:
                yield (
                    f"{where}.limit: {owner.id} has no grid connection of its own: "
                    "give limit_kw or set enabled: false"
                )


def site_rule_problems(site: SiteFile) -> Iterator[str]:
    """Rule problems of every park and building of a site file."""
    for p, park in enumerate(site.city.parks):
        yield from rule_problems(f"city.parks[{p}]", park, park.alerts)
        for b, building in enumerate(park.buildings):
            path = f"city.parks[{p}].buildings[{b}]"
            yield from rule_problems(path, building, building.alerts)


def applied(owner: Park | Building, rules: AlertRules | None, name: RuleName) -> Rule | None:
    """The rule as it runs on this site: None when off, or a limit with nothing to limit."""
    rule = effective(kind_of(owner), rules, name)
    if isinstance(rule, LimitRule) and rule.limit_kw is None and owner.grid is None:
        return None
    return rule
