#!/bin/sh
# Runs once, when the timescaledb service first initializes its volume (docker-entrypoint-initdb.d):
# a login role for Grafana that may only read. Grafana runs whatever SQL a dashboard editor types,
# so it must not connect as the owner of the tables. Tables and views energyhub creates later (as
# POSTGRES_USER, by `energyhub db migrate`) become readable through the default privileges, all
# but api_keys (migration 8 revokes it).
set -eu
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set reader="$GRAFANA_DB_USER" --set password="$GRAFANA_DB_PASSWORD" \
    --set owner="$POSTGRES_USER" --set database="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"reader" LOGIN PASSWORD :'password';
GRANT CONNECT ON DATABASE :"database" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
-- API keys are not Grafana's to read: migration 8 revokes the default grant on a new database;
-- this covers a role added to a database that already has the table.
SELECT format('REVOKE ALL ON TABLE api_keys FROM %I', :'reader')
WHERE to_regclass('api_keys') IS NOT NULL \gexec
SQL
