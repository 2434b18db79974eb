"""The one rule for a meter's energy: each reading carries the step from the reading before it.

`energyhub_step_s` is the span a reading stands for, `energyhub_step_kwh` its energy (SQL
functions made by migration v011; docs/meter-data.md explains the rule). The rollup refresh, the
per-site load refresh and the read queries all sum these per-reading terms, so any aligned window
has the same energy at every step and on both storage paths.

A counter's kW over a bucket is `energyhub_counter_kw(bucket_kwh, bucket_s)` (migration v018):
its energy ÷ the seconds its steps cover, the mean power while it measured — a gap's energy, which
lands in the bucket after it, reads as the gap's mean power, not as a spike.
"""

from __future__ import annotations

STEP_RULE = [
    # The span a reading stands for: a counter's whole step from the reading before it (it
    # measured all of it); a power reading's step, at most its nominal interval.
    """CREATE OR REPLACE FUNCTION energyhub_step_s(
        quantity text, nominal_s double precision, prev_ts timestamptz, ts timestamptz
    ) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN quantity = 'energy_kwh' THEN
                coalesce(extract(epoch FROM ts - prev_ts)::double precision, 0)
            WHEN quantity = 'power_kw' THEN
                least(nominal_s, coalesce(extract(epoch FROM ts - prev_ts)::double precision,
                                          nominal_s))
        END $$""",
    # The energy of that span: a counter's rise (a drop past half of rollover_kwh is a rollover,
    # any other drop a reset from zero), a power reading × its span; unknown without a reading
    # before a counter's; none for sensors.
    """CREATE OR REPLACE FUNCTION energyhub_step_kwh(
        quantity text, rollover_kwh double precision, nominal_s double precision,
        prev_ts timestamptz, prev_value double precision, ts timestamptz, value double precision
    ) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE
            WHEN quantity = 'energy_kwh' THEN
                CASE WHEN prev_value IS NULL THEN NULL
                     WHEN abs(value - prev_value) < 1e-100 THEN 0
                     WHEN value >= prev_value THEN value - prev_value
                     WHEN rollover_kwh IS NOT NULL AND prev_value > 0.5 * rollover_kwh
                         THEN value + rollover_kwh - prev_value
                     ELSE value
                END
            -- below 1e-100 is no energy: float8 products of subnormals raise "underflow"
            WHEN quantity = 'power_kw' AND abs(value) < 1e-100 THEN 0
            WHEN quantity = 'power_kw' THEN
                value * energyhub_step_s(quantity, nominal_s, prev_ts, ts) / 3600.0
        END $$""",
]

BUCKET_TERMS = """
    SELECT t.*,
           CASE WHEN t.energy_kwh IS NULL AND t.link_kwh IS NULL THEN NULL
                ELSE coalesce(t.energy_kwh, 0) + coalesce(t.link_kwh, 0) END AS bucket_kwh,
           t.covered_s + coalesce(t.link_s, 0) AS bucket_s
    FROM (
        SELECT src.*, m.quantity, m.carrier,
               energyhub_step_kwh(m.quantity, m.rollover_kwh, m.nominal_s,
                                  src.prev_ts, src.prev_value, src.first_ts, src.first_value)
                   AS link_kwh,
               energyhub_step_s(m.quantity, m.nominal_s, src.prev_ts, src.first_ts) AS link_s
        FROM src JOIN meters AS m ON m.id = src.meter_id
    ) AS t"""
"""Each source bucket's energy and covered seconds: its own sum plus its first reading's step
from the bucket before (`src` has prev_ts, prev_value from lag over the meter's buckets)."""

BUCKET_BEFORE = """
    SELECT b.* FROM {source} AS b WHERE b.meter_id = wanted.id AND b.bucket < {start}
    ORDER BY b.bucket DESC LIMIT 1"""
"""A meter's (`wanted.id`) last rollup bucket before a window's `{start}`, however far back: one
probe of the rollup's primary key (meter_id, bucket). Its last reading is the one before the
window's first, whose step `BUCKET_TERMS` adds to the window's first bucket: a gap's energy lands
in the bucket after it wherever a window or a refresh starts. A lookback of a day lost the gap's
energy when a window or refresh began more than a day after the reading before it."""
