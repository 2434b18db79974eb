"""Template variables shared by the dashboards: park, buildings of the park, meters of those."""

from __future__ import annotations

from energyhub.grafana.model import Variable

PARK = Variable(
    "park",
    "Park",
    """SELECT id AS __value, coalesce(name, id) AS __text FROM sites
WHERE kind = 'park' AND active ORDER BY id""",
)
BUILDING = Variable(
    "building",
    "Building",
    """SELECT id AS __value, coalesce(name, id) AS __text FROM sites
WHERE kind = 'building' AND active AND parent_id = '$park' ORDER BY id""",
    multi=True,
    include_all=True,
)
METER = Variable(
    "meter",
    "Meter",
    """SELECT m.id AS __value, m.site_id || '/' || m.name AS __text FROM meters AS m
WHERE m.active AND m.site_id IN ($building) ORDER BY 2""",
    multi=True,
    include_all=True,
)
