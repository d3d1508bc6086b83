#!/usr/bin/env bash
# Make local PostgreSQL and Redis reachable (start installed-but-stopped ones, install
# missing ones when we are root), then create AskPro's roles and database.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

log() { printf '[services] %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing $*"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    log "cannot install $* (not root or no apt-get)"; return 1
  fi
}

wait_for() {  # wait_for <seconds> <command...>
  local limit=$1; shift
  for _ in $(seq 1 "$((limit * 4))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

ensure_postgres() {
  command -v pg_isready >/dev/null || apt_install postgresql
  if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then return; fi
  log "PostgreSQL not answering on $PGHOST:$PGPORT; starting it"
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  wait_for 30 pg_isready -q -h "$PGHOST" -p "$PGPORT" || { log "PostgreSQL did not start"; exit 1; }
}

ensure_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  log "Redis not answering on 127.0.0.1:$REDIS_PORT; starting it"
  mkdir -p /tmp/askpro-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
    --appendonly no --dir /tmp/askpro-redis --logfile /tmp/askpro-redis/redis.log
  wait_for 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping || { log "Redis did not start"; exit 1; }
}

psql_admin() {
  # Trust auth locally: connect as the cluster's superuser (postgres), or as root's role.
  psql -v ON_ERROR_STOP=1 -qtA -h "$PGHOST" -p "$PGPORT" -U "${PGADMIN:-postgres}" -d postgres "$@"
}

ensure_roles() {
  # askpro_owner owns the tables and runs migrations (BYPASSRLS for data migrations and
  # dumps); askpro_app is what the running app connects as: neither owner nor superuser.
  psql_admin <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'askpro_owner') THEN
    CREATE ROLE askpro_owner LOGIN CREATEDB BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'askpro_app') THEN
    CREATE ROLE askpro_app LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END
$$;
SQL
  if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'askpro'")" ]; then
    psql_admin -c "CREATE DATABASE askpro OWNER askpro_owner"
  fi
}

ensure_postgres
ensure_redis
ensure_roles
log "PostgreSQL and Redis are up"
