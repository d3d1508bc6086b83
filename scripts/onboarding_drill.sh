#!/usr/bin/env bash
# Onboarding drill: a company from nothing to a voice agent answering its branch number,
# with the documented commands, against the provider simulator. Prints each step's time
# and the total.
#
#   scripts/onboarding_drill.sh [SLUG]        # default slug: drill-<unix time>
#
# Uses the database the environment names (DATABASE_URL, as `make run`; migrated first,
# outside the clock). Talks to the simulator on SIM_PORT (default 8900) and starts one
# there, for the drill only, when nothing answers. Keys are made up per run (the
# simulator takes any key) and go to connect_provider on stdin, as documented.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBUG=${DEBUG:-true} LOG_LEVEL=${LOG_LEVEL:-warning}
PY=.venv/bin/python
SIM="http://127.0.0.1:${SIM_PORT:-8900}"
export CALCOM_API_BASE=$SIM/calcom/v2 RETELL_API_BASE=$SIM/retell STRIPE_API_BASE=$SIM/stripe
SLUG=${1:-drill-$(date +%s)}

case "${DATABASE_URL:-}" in
  postgres://askpro_app@*|postgresql://askpro_app@*)
    export MIGRATION_DATABASE_URL=${MIGRATION_DATABASE_URL:-${DATABASE_URL/askpro_app@/askpro_owner@}} ;;
esac

sim_pid=""
cleanup() { if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT INT TERM
if ! curl -sf "$SIM/_sim/faults" >/dev/null 2>&1; then
  mkdir -p .run
  $PY manage.py simulate_providers --port "${SIM_PORT:-8900}" >.run/drill-simulator.log 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 80); do curl -sf "$SIM/_sim/faults" >/dev/null 2>&1 && break; sleep 0.25; done
fi

$PY manage.py migrate --no-input -v 0

secret() { $PY -c "import secrets, sys; print(sys.argv[1] + secrets.token_hex(16))" "$1"; }
phone=$($PY -c "import random; print('+4930' + str(random.randrange(10**7, 10**8)))")

since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }'; }
connect() {  # the key travels on stdin only (never in argv or the environment)
  local prefix
  case $1 in retell) prefix=key_ ;; calcom) prefix=cal_live_ ;; *) prefix=sk_test_ ;; esac
  secret "$prefix" | $PY manage.py connect_provider --company "$SLUG" --provider "$1"
}

mkdir -p .run
started=$EPOCHREALTIME
step() {  # step <label> <command...>: run it, print its output and time
  local label=$1; shift
  local t0=$EPOCHREALTIME
  "$@"
  printf '[drill] %-26s %6.2f s\n' "$label" "$(since "$t0")"
}

create_company() {
  $PY manage.py create_company --slug "$SLUG" --name "Drill Salon $SLUG" --country DE \
    --timezone Europe/Berlin --branch-name Mitte --branch-phone "$phone" \
    --manager-email "manager@$SLUG.example" >.run/drill-company.json
}

step create_company create_company
branch=$($PY -c "import json; print(json.load(open('.run/drill-company.json'))['branch']['id'])")
cat .run/drill-company.json
for provider in retell calcom stripe; do
  step "connect_provider $provider" connect "$provider"
done
step register_webhooks $PY manage.py register_webhooks --company "$SLUG"
step provision_agent $PY manage.py provision_agent --branch "$branch"

printf '[drill] company %s, branch %s: onboarded in %.2f s\n' "$SLUG" "$branch" "$(since "$started")"
