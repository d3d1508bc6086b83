#!/usr/bin/env bash
# `make run`: migrate, load the demo company, print its logins, serve on :8000.
# No DATABASE_URL/REDIS_URL: SQLite with in-process fallbacks (eager tasks, local
# cache). With them: PostgreSQL, Redis, and Celery worker + beat beside the server.
# SIMULATOR=1 also serves the provider simulator on :8900 and points the app at it.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG=${DEBUG:-true}
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-askpro.settings}
PY=.venv/bin/python
PORT=${PORT:-8000}

case "${DATABASE_URL:-}" in
  postgres://askpro_app@*|postgresql://askpro_app@*)
    # The local app role migrates nothing itself: the owner on the same server does.
    export MIGRATION_DATABASE_URL=${MIGRATION_DATABASE_URL:-${DATABASE_URL/askpro_app@/askpro_owner@}}
    scripts/services.sh ;;
esac

if [ "${SIMULATOR:-0}" = 1 ]; then
  SIM="http://127.0.0.1:${SIM_PORT:-8900}"
  export CALCOM_API_BASE=${CALCOM_API_BASE:-$SIM/calcom/v2}
  export RETELL_API_BASE=${RETELL_API_BASE:-$SIM/retell}
  export STRIPE_API_BASE=${STRIPE_API_BASE:-$SIM/stripe}
fi

$PY manage.py migrate --no-input -v 0
seed=$($PY manage.py seed_demo --json)

children=()
cleanup() { for pid in "${children[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [ "${SIMULATOR:-0}" = 1 ]; then
  mkdir -p .run
  $PY manage.py simulate_providers --port "${SIM_PORT:-8900}" >.run/simulator.log 2>&1 &
  children+=($!)
  mode_sim="; provider simulator on $SIM (control: $SIM/_sim/)"
fi

if [ -n "${REDIS_URL:-}${CELERY_BROKER_URL:-}" ]; then
  mkdir -p .run
  .venv/bin/celery -A askpro worker --loglevel=INFO --concurrency=2 >.run/worker.log 2>&1 &
  children+=($!)
  .venv/bin/celery -A askpro beat --loglevel=INFO -s .run/celerybeat-schedule >.run/beat.log 2>&1 &
  children+=($!)
  mode="PostgreSQL/Redis with Celery worker and beat (logs in .run/)"
else
  mode="SQLite with in-process fallbacks (/health says degraded)"
fi

$PY - "$seed" "$PORT" "$mode${mode_sim:-}" <<'PYTHON'
import json, sys
seed, port, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
print(f"""
AskPro is starting on http://127.0.0.1:{port}  ({mode})
  Admin      http://127.0.0.1:{port}/admin/   user {seed['admin']['username']}  password {seed['admin']['password']}
  API token  {seed['api_token']}   (curl -H 'Authorization: Token {seed['api_token']}' http://127.0.0.1:{port}/api/v1/me/)
  API docs   http://127.0.0.1:{port}/api/docs/
  Health     http://127.0.0.1:{port}/health
""", flush=True)
PYTHON

$PY manage.py runserver "127.0.0.1:$PORT" --noreload
