"""Sites: the tree within the key's scope, one site, its meters and its assets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from energyhub.api.deps import ConnDep, CurrentKey, DbDep, SiteKey, SitePath
from energyhub.api.errors import not_found, responses
from energyhub.api.schemas.sites import AssetPublic, MeterPublic, SiteNodePublic, SitePublic
from energyhub.api.scope import SiteRow, subtree
from energyhub.store import queries

router = APIRouter(prefix="/sites", tags=["sites"], responses=responses(401, 404, 422, 503))


def _tree(rows: list[SiteRow]) -> SiteNodePublic:
    nodes = {r.id: SiteNodePublic(id=r.id, kind=r.kind, name=r.name, children=[]) for r in rows}
    for row in rows[1:]:
        if row.parent_id in nodes:
            nodes[row.parent_id].children.append(nodes[row.id])
    return nodes[rows[0].id]


@router.get("", response_model=SiteNodePublic, summary="The site tree the key may see")
async def site_tree(conn: ConnDep, key: CurrentKey) -> SiteNodePublic:
    """The key's site and everything under it (city > park > building > enterprise)."""
    rows = await subtree(conn, key.site_id)
    if not rows:
        raise not_found(f"site {key.site_id!r}")
    return _tree(rows)


async def _site_row(conn: ConnDep, site_id: str) -> tuple[Any, ...]:
    row = await queries.site_detail(conn, site_id)
    if row is None:
        raise not_found(f"site {site_id!r}")
    return row


@router.get("/{site_id}", response_model=SitePublic, summary="One site")
async def get_site(site_id: SitePath, db: DbDep, access: SiteKey) -> SitePublic:
    await access.zone(db, site_id)
    conn = await db.conn()
    id_, kind, parent_id, name, attributes, children = await _site_row(conn, site_id)
    own = {k: v for k, v in attributes.items() if k != "assets"}
    return SitePublic(
        id=id_, kind=kind, parent_id=parent_id, name=name, attributes=own, children=children
    )


@router.get("/{site_id}/meters", response_model=list[MeterPublic], summary="A site's meters")
async def site_meters(site_id: SitePath, db: DbDep, access: SiteKey) -> list[MeterPublic]:
    """The site's own meters; for an enterprise, the sub-meters it is accounted from."""
    await access.zone(db, site_id)
    conn = await db.conn()
    return [MeterPublic.model_validate(row) for row in await queries.site_meters(conn, site_id)]


@router.get("/{site_id}/assets", response_model=list[AssetPublic], summary="A site's assets")
async def site_assets(site_id: SitePath, db: DbDep, access: SiteKey) -> list[AssetPublic]:
    """Assets declared on a park or building, with their site-file keys (units in the names)."""
    await access.zone(db, site_id)
    conn = await db.conn()
    _, _, _, _, attributes, _ = await _site_row(conn, site_id)
    return [AssetPublic.model_validate(asset) for asset in attributes.get("assets", [])]
