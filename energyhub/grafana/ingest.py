"""Ingest health from the database: readings stored per second, rejects by reason, lag."""

from __future__ import annotations

from energyhub.grafana.model import Dashboard, Panel, Query
from energyhub.grafana.variables import BUILDING, PARK

RATE = """
WITH chosen AS (
    SELECT m.id, m.site_id FROM meters AS m
    WHERE m.site_id IN (SELECT id FROM sites WHERE id = '$park' OR id IN ($building))
),
counted AS (
    SELECT r.ts AS bucket, r.meter_id, 1 AS n FROM readings AS r
    WHERE $__interval_ms < 900000 AND $__timeFilter(r.ts)
      AND r.meter_id IN (SELECT id FROM chosen)
    UNION ALL
    SELECT r.bucket, r.meter_id, r.n FROM readings_15m AS r
    WHERE $__interval_ms >= 900000 AND $__timeFilter(r.bucket)
      AND r.meter_id IN (SELECT id FROM chosen)
)
SELECT $__timeGroupAlias(counted.bucket, $__interval), chosen.site_id AS metric,
       sum(counted.n) / ($__interval_ms / 1000.0) AS readings_per_s
FROM counted JOIN chosen ON chosen.id = counted.meter_id
GROUP BY 1, 2
ORDER BY 1, 2
"""

REJECTS = r"""
-- `rejected` keeps the ingest's message text (not its kind): the value after ", got " or ": "
-- goes; quoted values, topic-like paths and numbers become "…", so equal causes group together
SELECT $__timeGroupAlias(received_at, $__interval),
       regexp_replace(regexp_replace(regexp_replace(
           reason, '(, got |: ).*$', ''),
           '(^|[^[:alnum:]])(''[^'']*''|"[^"]*")', '\1…', 'g'),
           '\S+/\S+/\S+|[0-9][0-9A-Za-z.:+-]*', '…', 'g') AS metric,
       count(*) AS rejected
FROM rejected
WHERE $__timeFilter(received_at)
GROUP BY 1, 2
ORDER BY 1, 2
"""

RECENT_REJECTS = """
SELECT received_at, topic, reason, left(payload, 200) AS payload
FROM rejected
WHERE $__timeFilter(received_at)
ORDER BY received_at DESC
LIMIT 100
"""

REJECTED_TOTAL = """
SELECT count(*) AS rejected FROM rejected WHERE $__timeFilter(received_at)
"""

NEWEST_AGE = """
SELECT extract(epoch FROM now() - max(l.ts)) AS newest_reading_age_s
FROM meter_latest AS l JOIN meters AS m ON m.id = l.meter_id
WHERE m.site_id IN (SELECT id FROM sites WHERE id = '$park' OR id IN ($building))
"""

AGE_BY_SITE = """
SELECT coalesce(s.name, s.id) AS site, extract(epoch FROM now() - max(l.ts)) AS newest_age_s
FROM meter_latest AS l
JOIN meters AS m ON m.id = l.meter_id
JOIN sites AS s ON s.id = m.site_id
WHERE m.site_id IN (SELECT id FROM sites WHERE id = '$park' OR id IN ($building))
GROUP BY s.id, s.name
ORDER BY 2 DESC
"""

STALE_METERS = """
SELECT m.site_id || '/' || m.name AS meter, m.quantity, l.ts AS latest_at,
       extract(epoch FROM now() - l.ts) AS age_s
FROM meters AS m LEFT JOIN meter_latest AS l ON l.meter_id = m.id
WHERE m.active AND m.site_id IN (SELECT id FROM sites WHERE id = '$park' OR id IN ($building))
ORDER BY l.ts ASC NULLS FIRST, 1
LIMIT 50
"""


def dashboard() -> Dashboard:
    return Dashboard(
        uid="energyhub-ingest-health",
        title="energyhub · Ingest health",
        description="What the ingest stored, what it refused and why, and how far behind the "
        "newest readings are — read from `readings`, `meter_latest` and `rejected`.",
        variables=(PARK, BUILDING),
        time_from="now-6h",
        refresh="30s",
        panels=(
            Panel(
                "Readings stored per second",
                "timeseries",
                (Query(RATE),),
                width=16,
                height=8,
                unit="rps",
                stacked=True,
                description="By the readings' own timestamps, per site (the park's own meters "
                "under the park's id).",
            ),
            Panel(
                "Newest reading age",
                "stat",
                (Query(NEWEST_AGE, "table"),),
                width=4,
                height=8,
                unit="s",
                decimals=0,
                thresholds=((300, "orange"), (900, "red")),
            ),
            Panel(
                "Rejected in range",
                "stat",
                (Query(REJECTED_TOTAL, "table"),),
                width=4,
                height=8,
                thresholds=((1, "orange"),),
            ),
            Panel(
                "Rejects by reason",
                "timeseries",
                (Query(REJECTS),),
                width=16,
                height=8,
                stacked=True,
                bars=True,
                description="Messages or readings refused per interval; values in the reason "
                "(timestamps, numbers, topics) are masked so equal causes group together.",
            ),
            Panel(
                "Newest reading age by site",
                "bargauge",
                (Query(AGE_BY_SITE, "table"),),
                width=8,
                height=8,
                unit="s",
                decimals=0,
                thresholds=((300, "orange"), (900, "red")),
            ),
            Panel(
                "Stalest meters",
                "table",
                (Query(STALE_METERS, "table"),),
                width=10,
                height=9,
                description="Active meters by the age of their newest reading; never-read first.",
            ),
            Panel(
                "Recent rejects",
                "table",
                (Query(RECENT_REJECTS, "table"),),
                width=14,
                height=9,
            ),
        ),
    )
