"""Version 13: carbon assets — green certificates and contracts, their retirements, the allowance
and CCER ledger, carbon price series, and every site file loaded (a verifier's change history).
Every table but the prices is append-only (a trigger refuses UPDATE, DELETE and TRUNCATE): a
wrong entry is corrected by a reversing entry, never edited.

A certificate is retired once across the whole city: an exclusion constraint over the serial
range (`int8range`, GiST) refuses a retirement whose serials overlap one already retired in the
same registry, whoever retired it. The registry is compared as a one-point `int4range` of its
hash, so that no extension (btree_gist) is needed; two registries whose names collide in 32 bits
would refuse each other's overlapping ranges, never admit a double retirement.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from energyhub.store.migrations.base import Migration, MigrationContext

APPEND_ONLY = """
CREATE FUNCTION energyhub_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: correct an entry by a reversing entry, never edit it',
        TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$"""

REGISTRY = "int4range(hashtext(registry), hashtext(registry), '[]')"

RETIREMENT_CHECK = """
CREATE FUNCTION energyhub_check_retirement() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    held green_instruments%ROWTYPE;
    used numeric;
BEGIN
    SELECT * INTO held FROM green_instruments WHERE id = NEW.instrument_id FOR UPDATE;
    IF held.registry IS DISTINCT FROM NEW.registry THEN
        RAISE EXCEPTION 'retirement registry % is not its instrument''s (%)',
            NEW.registry, held.registry USING ERRCODE = 'check_violation';
    END IF;
    IF held.kind = 'certificate' THEN
        IF NEW.serials IS NULL OR NOT held.serials @> NEW.serials THEN
            RAISE EXCEPTION 'retired serials % are not within the instrument''s %',
                NEW.serials, held.serials USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        SELECT coalesce(sum(mwh), 0) INTO used FROM green_retirements
        WHERE instrument_id = NEW.instrument_id;
        IF used + NEW.mwh > held.mwh THEN
            RAISE EXCEPTION 'contract % has % MWh left, % claimed', held.id, held.mwh - used,
                NEW.mwh USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END
$$"""

STATEMENTS = [
    APPEND_ONLY,
    f"""CREATE TABLE green_instruments (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('certificate', 'contract')),
        site_id text NOT NULL REFERENCES sites (id),
        registry text NOT NULL CHECK (registry <> ''),
        project text NOT NULL CHECK (project <> ''),
        technology text NOT NULL CHECK (technology <> ''),
        location text NOT NULL CHECK (location <> ''),
        vintage integer NOT NULL CHECK (vintage BETWEEN 1990 AND 2100),
        serials int8range CHECK (NOT isempty(serials) AND lower(serials) >= 0),
        mwh numeric NOT NULL CHECK (mwh > 0),
        supplier_kg_per_kwh double precision CHECK (supplier_kg_per_kwh >= 0),
        delivery tstzrange CHECK (NOT isempty(delivery)),
        recorded_by text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL,
        CHECK ((kind = 'certificate') = (serials IS NOT NULL)),
        CHECK (kind <> 'certificate' OR mwh = upper(serials) - lower(serials)),
        CHECK ((kind = 'contract') = (supplier_kg_per_kwh IS NOT NULL AND delivery IS NOT NULL)),
        CONSTRAINT green_instruments_serials_once
            EXCLUDE USING gist (({REGISTRY}) WITH &&, serials WITH &&))""",
    f"""CREATE TABLE green_retirements (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        instrument_id bigint NOT NULL REFERENCES green_instruments (id),
        registry text NOT NULL,
        site_id text NOT NULL REFERENCES sites (id),
        period tstzrange NOT NULL CHECK (NOT isempty(period)),
        period_label text NOT NULL,
        serials int8range CHECK (NOT isempty(serials)),
        mwh numeric NOT NULL CHECK (mwh > 0),
        recorded_by text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL,
        CHECK (serials IS NULL OR mwh = upper(serials) - lower(serials)),
        CONSTRAINT green_retirements_serials_once
            EXCLUDE USING gist (({REGISTRY}) WITH &&, serials WITH &&))""",
    "CREATE INDEX green_retirements_site ON green_retirements (site_id)",
    RETIREMENT_CHECK,
    """CREATE TRIGGER green_retirements_check BEFORE INSERT ON green_retirements
        FOR EACH ROW EXECUTE FUNCTION energyhub_check_retirement()""",
    """CREATE TABLE carbon_ledger (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id text NOT NULL REFERENCES sites (id),
        compliance_year integer NOT NULL CHECK (compliance_year BETWEEN 2000 AND 2100),
        kind text NOT NULL
            CHECK (kind IN ('allocation', 'purchase', 'sale', 'surrender', 'verified')),
        instrument text NOT NULL CHECK (instrument IN ('allowance', 'ccer', 'emissions')),
        entry_date date NOT NULL,
        volume_t numeric NOT NULL CHECK (volume_t <> 0),
        price_cny_per_t numeric CHECK (price_cny_per_t >= 0),
        counterparty text,
        reverses bigint UNIQUE REFERENCES carbon_ledger (id),
        recorded_by text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL CHECK (reason <> ''),
        CHECK ((kind = 'verified') = (instrument = 'emissions')),
        CHECK ((reverses IS NULL) = (volume_t > 0)))""",
    "CREATE INDEX carbon_ledger_account ON carbon_ledger (account_id, compliance_year)",
    """CREATE TABLE site_file_versions (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        loaded_at timestamptz NOT NULL DEFAULT now(),
        sha256 text NOT NULL,
        content jsonb NOT NULL)""",
    "CREATE INDEX site_file_versions_loaded ON site_file_versions (loaded_at)",
    """CREATE TABLE carbon_prices (
        series text NOT NULL,
        day date NOT NULL,
        cny_per_t double precision NOT NULL CHECK (cny_per_t > 0),
        PRIMARY KEY (series, day))""",
]

APPEND_ONLY_TABLES = (
    "green_instruments",
    "green_retirements",
    "carbon_ledger",
    "site_file_versions",
)


async def apply(conn: AsyncConnection, context: MigrationContext) -> None:
    for statement in STATEMENTS:
        await conn.execute(statement)
    for table in APPEND_ONLY_TABLES:
        await conn.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION energyhub_append_only()"
        )
        await conn.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION energyhub_append_only()"
        )


MIGRATION = Migration(
    13,
    "carbon assets: green certificates, retirements, allowance ledger, prices, site-file history",
    apply,
)
