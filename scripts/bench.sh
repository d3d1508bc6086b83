#!/usr/bin/env bash
# `make bench`: make sure wrk, PostgreSQL, Redis and the roles askpro_owner/askpro_app
# are there, then run bench/run.py: gunicorn against the askpro_bench database as the app
# role with row-level security (127.0.0.1:8765) and as the owner without (:8766), loaded
# with wrk. Arguments go to the runner: scripts/bench.sh --duration 5 --scenario health
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bench] %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing wrk"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  else
    log "wrk is not installed and I can't install it (not root or no apt-get): install wrk"
    exit 1
  fi
fi

scripts/services.sh
exec .venv/bin/python -m bench.run "$@"
