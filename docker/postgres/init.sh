#!/usr/bin/env bash
# AskPro's roles and database, for the postgres image's /docker-entrypoint-initdb.d: it runs
# once, on an empty data directory, as the image's superuser. The same roles as
# scripts/services.sh:
#   askpro_owner  owns the database and every table, runs `migrate` (BYPASSRLS for data
#                 migrations and dumps; CREATEDB for test databases);
#   askpro_app    what web, worker and beat connect as: no superuser, no BYPASSRLS, owns
#                 nothing, so row-level security binds it. Its grants on tables, sequences
#                 and functions are made by the migrations (tenants/db/rls.py), as the owner.
# Passwords come from the environment (see docker/compose.yml); psql quotes them.
# No `set -u`: the entrypoint sources a script that isn't executable, and the option would
# leak into it.
set -e

: "${ASKPRO_OWNER_PASSWORD:?ASKPRO_OWNER_PASSWORD is required}"
: "${ASKPRO_APP_PASSWORD:?ASKPRO_APP_PASSWORD is required}"
ASKPRO_DB=${ASKPRO_DB:-askpro}

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  --set owner_password="$ASKPRO_OWNER_PASSWORD" \
  --set app_password="$ASKPRO_APP_PASSWORD" \
  --set db="$ASKPRO_DB" <<'SQL'
CREATE ROLE askpro_owner LOGIN CREATEDB BYPASSRLS PASSWORD :'owner_password';
CREATE ROLE askpro_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS
  PASSWORD :'app_password';
CREATE DATABASE :"db" OWNER askpro_owner;
-- Only our two roles (and the superuser) may connect to it.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO askpro_app;
SQL
