"""Alerts: list within the key's scope, acknowledge (manager), read and edit a site's rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from energyhub.alerts.rules import RULE_NAMES, AlertRules, RuleName, Severity
from energyhub.alerts.store import COLUMNS, AlertRow
from energyhub.alerts.validate import applied, rule_problems
from energyhub.api.deps import ConnDep, CurrentKey, SitePath, StateDep, require_role
from energyhub.api.errors import ApiError, FieldError, bad_input, not_found, responses
from energyhub.api.schemas.common import Int8Id, SiteId, Time
from energyhub.api.scope import site_access
from energyhub.sites import Building, Park

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=responses(401, 404, 422, 503))

AlertPath = Annotated[Int8Id, Path(description="An alert id.", examples=[3])]

LIST = f"""
WITH RECURSIVE down (id) AS (
    SELECT id FROM sites WHERE id = %(scope)s
    UNION ALL
    SELECT s.id FROM sites AS s JOIN down ON s.parent_id = down.id
)
SELECT {COLUMNS} FROM alerts
WHERE site_id IN (SELECT id FROM down)
  AND (%(site)s::text IS NULL OR site_id = %(site)s)
  AND (%(rule)s::text IS NULL OR rule = %(rule)s)
  AND (%(severity)s::text IS NULL OR severity = %(severity)s)
  AND (%(status)s::text = 'all' OR (closed_at IS NULL) = (%(status)s::text = 'open'))
  AND (%(since)s::timestamptz IS NULL OR coalesce(closed_at, 'infinity') >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR opened_at < %(until)s)
ORDER BY opened_at DESC, id DESC LIMIT %(limit)s"""  # noqa: S608  (COLUMNS is a constant)
ACK = f"""
UPDATE alerts SET acknowledged_by = coalesce(acknowledged_by, %s),
    acknowledged_at = coalesce(acknowledged_at, now())
WHERE id = %s RETURNING {COLUMNS}"""  # noqa: S608  (COLUMNS is a constant)
SAVE_RULES = """
INSERT INTO alert_rules (site_id, rules, updated_by, updated_at) VALUES (%s, %s, %s, now())
ON CONFLICT (site_id) DO UPDATE SET rules = excluded.rules, updated_by = excluded.updated_by,
    updated_at = now()"""


class AlertPublic(BaseModel):
    """One alert: open while `closed_at` is null; values are what opened and closed it."""

    id: int
    site_id: str
    park_id: str
    rule: str = Field(examples=["limit"])
    subject: str = Field(description="The meter or battery, empty for a site-wide rule.")
    severity: Severity
    message: str
    opened_at: datetime
    closed_at: datetime | None
    opening_values: dict[str, Any]
    closing_values: dict[str, Any] | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None


class RulesPublic(BaseModel):
    """A site's rules: as declared (API-edited, else the site file) and as they apply."""

    site_id: str
    source: Literal["api", "site-file"]
    declared: AlertRules
    effective: dict[str, dict[str, Any] | None]


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
    if site is not None:
        await site_access(conn, key, site)
    params = {"scope": key.site_id, "site": site, "rule": rule, "severity": severity,
              "status": status, "since": since, "until": until, "limit": limit}  # fmt: skip
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(LIST, params)
    return [_public(row) for row in await cur.fetchall()]


async def _in_scope(conn: ConnDep, key: CurrentKey, alert_id: int) -> None:
    cur = await conn.execute("SELECT site_id FROM alerts WHERE id = %s", (alert_id,))
    row = await cur.fetchone()
    if row is None:
        raise not_found(f"alert {alert_id}")
    try:
        await site_access(conn, key, str(row[0]))
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
    cur = conn.cursor(row_factory=class_row(AlertRow))
    await cur.execute(ACK, (by, alert_id))
    row = await cur.fetchone()
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
    cur = await conn.execute("SELECT rules FROM alert_rules WHERE site_id = %s", (owner.id,))
    row = await cur.fetchone()
    declared = AlertRules.model_validate(row[0]) if row else (owner.alerts or AlertRules())
    rules_now = {}
    for name in RULE_NAMES:
        rule = applied(owner, declared, name)
        rules_now[name] = rule.model_dump() if rule is not None else None
    source: Literal["api", "site-file"] = "api" if row else "site-file"
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
    await conn.execute(SAVE_RULES, (site_id, Jsonb(dumped), f"{key.name or 'key'} ({key.prefix})"))
    return await _rules(conn, owner)
