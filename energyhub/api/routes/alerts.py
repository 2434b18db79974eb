"""Alerts: list within the key's scope, acknowledge (manager), read and edit a site's rules."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from energyhub.alerts import store
from energyhub.alerts.rules import RULE_NAMES, AlertRules, RuleName, Severity
from energyhub.alerts.store import AlertFilter, AlertRow
from energyhub.alerts.validate import applied, rule_problems
from energyhub.api.deps import ConnDep, CurrentKey, SitePath, StateDep, require_role
from energyhub.api.errors import ApiError, FieldError, bad_input, not_found, responses
from energyhub.api.schemas.alerts import AlertPublic, RulesPublic
from energyhub.api.schemas.common import Int8Id, SiteId, Time
from energyhub.api.scope import site_access
from energyhub.sites import Building, Park

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=responses(401, 404, 422, 503))

AlertPath = Annotated[Int8Id, Path(description="An alert id.", examples=[3])]


def _public(row: AlertRow) -> AlertPublic:
    return AlertPublic.model_validate(row, from_attributes=True)


@router.get("", response_model=list[AlertPublic], summary="Alerts in the key's scope")
async def list_alerts(
    conn: ConnDep,
    key: CurrentKey,
    site: Annotated[SiteId | None, Query(description="Only this site.")] = None,
    rule: Annotated[RuleName | None, Query(description="Only this rule.")] = None,
    severity: Annotated[Severity | None, Query()] = None,
    status: Annotated[Literal["open", "closed", "all"], Query()] = "all",
    since: Annotated[Time | None, Query(description="Open at or after this time.")] = None,
    until: Annotated[Time | None, Query(description="Opened before this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[AlertPublic]:
    """Newest first; a key sees the alerts of its site's subtree only."""
    if since is not None and until is not None and until <= since:
        raise bad_input(
            "query", "until", f"must be after since ({since.isoformat()}), got {until.isoformat()}"
        )
    if site is not None:
        await site_access(conn, key, site)
    where = AlertFilter(key.site_id, site, rule, severity, status, since, until, limit)
    return [_public(row) for row in await store.list_alerts(conn, where)]


async def _in_scope(conn: ConnDep, key: CurrentKey, alert_id: int) -> None:
    site_id = await store.alert_site(conn, alert_id)
    if site_id is None:
        raise not_found(f"alert {alert_id}")
    try:
        await site_access(conn, key, site_id)
    except ApiError:
        raise not_found(f"alert {alert_id}") from None


@router.post(
    "/{alert_id}/ack",
    response_model=AlertPublic,
    summary="Acknowledge an alert (manager or above)",
    responses=responses(403),
)
async def acknowledge(alert_id: AlertPath, conn: ConnDep, key: CurrentKey) -> AlertPublic:
    """Mark the alert seen; the first acknowledgement is kept, repeating it changes nothing."""
    await _in_scope(conn, key, alert_id)
    require_role(key, "manager", "acknowledge alerts")
    by = f"{key.name or 'key'} ({key.prefix})"
    row = await store.acknowledge(conn, alert_id, by)
    if row is None:
        raise not_found(f"alert {alert_id}")
    return _public(row)


def _owner(state: StateDep, site_id: str) -> Park | Building:
    park = state.site.find_park(site_id)
    if park is not None:
        return park
    found = state.site.find_building(site_id)
    if found is None:
        raise bad_input(
            "path", "site_id", f"site {site_id!r} is not a park or building: rules live on those"
        )
    return found[1]


async def _rules(conn: ConnDep, owner: Park | Building) -> RulesPublic:
    stored = await store.stored_rules(conn, owner.id)
    declared = (
        AlertRules.model_validate(stored) if stored is not None else (owner.alerts or AlertRules())
    )
    rules_now = {}
    for name in RULE_NAMES:
        rule = applied(owner, declared, name)
        rules_now[name] = rule.model_dump() if rule is not None else None
    source: Literal["api", "site-file"] = "api" if stored is not None else "site-file"
    return RulesPublic(site_id=owner.id, source=source, declared=declared, effective=rules_now)


@router.get("/rules/{site_id}", response_model=RulesPublic, summary="A site's alert rules")
async def get_rules(
    site_id: SitePath, conn: ConnDep, key: CurrentKey, state: StateDep
) -> RulesPublic:
    await site_access(conn, key, site_id)
    return await _rules(conn, _owner(state, site_id))


@router.put(
    "/rules/{site_id}",
    response_model=RulesPublic,
    summary="Replace a site's alert rules (manager or above)",
    responses=responses(403),
)
async def put_rules(
    site_id: SitePath, rules: AlertRules, conn: ConnDep, key: CurrentKey, state: StateDep
) -> RulesPublic:
    """The `alerts:` block of a park or building, over the class defaults; the evaluator picks it
    up within ENERGYHUB_ALERTS_RELOAD_S. A rule naming an unknown meter or battery is a 422."""
    await site_access(conn, key, site_id)
    require_role(key, "manager", "edit alert rules")
    owner = _owner(state, site_id)
    problems = list(rule_problems("alerts", owner, rules))
    if problems:
        errors = [FieldError(location="body", field=p.split(":")[0].removeprefix("alerts.alerts."),
                             message=p.partition(": ")[2]) for p in problems]  # fmt: skip
        raise ApiError(422, "; ".join(problems), errors)
    dumped = rules.model_dump(exclude_unset=True)
    await store.save_rules(conn, site_id, dumped, f"{key.name or 'key'} ({key.prefix})")
    return await _rules(conn, owner)
