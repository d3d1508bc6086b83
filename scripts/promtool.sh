#!/usr/bin/env bash
# Check AskPro's Prometheus rules and run their unit tests, and check that every query of
# the Grafana dashboards parses:
#   promtool check rules monitoring/prometheus/rules/*.yml
#   promtool test rules  monitoring/prometheus/tests/*.yml
#   promtool check rules <each dashboard query as a recording rule>
# When promtool is missing and we are root on Debian/Ubuntu, installs the distribution's
# `prometheus` package for it without letting the package start a Prometheus server.
set -euo pipefail
cd "$(dirname "$0")/.."

RULES_DIR=monitoring/prometheus/rules
TESTS_DIR=monitoring/prometheus/tests
DASHBOARDS_DIR=monitoring/grafana
POLICY=/usr/sbin/policy-rc.d

log() { printf '[promtool] %s\n' "$*" >&2; }

server_pids() {  # the Debian package runs its server as user "prometheus"
  pgrep -u prometheus -x prometheus 2>/dev/null | sort || true
}

install_promtool() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "promtool not found; install Prometheus's promtool (Debian: apt-get install prometheus)"
    exit 1
  fi
  log "promtool not found; installing Debian's prometheus package"
  # Its maintainer scripts start the service (invoke-rc.d / deb-systemd-invoke), and both
  # ask policy-rc.d first: "exit 101" forbids it. Keep an existing policy; remove ours.
  local own_policy=""
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# scripts/promtool.sh: no service starts while it installs promtool\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    own_policy=1
    trap 'rm -f "$POLICY"' EXIT  # also when interrupted
  fi
  local before
  before=$(server_pids)
  local status=0 output
  output=$(mktemp)
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 prometheus
  } >"$output" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then cat "$output" >&2; fi
  rm -f "$output"
  if [ -n "$own_policy" ]; then
    rm -f "$POLICY"
    trap - EXIT
  fi
  # Belt and braces: never leave a server behind, now or at the next boot.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  local pid
  for pid in $(comm -13 <(printf '%s\n' "$before") <(server_pids)); do
    log "stopping the Prometheus server the package started (pid $pid)"
    kill "$pid" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ]; then
    log "apt-get install prometheus failed (exit $status)"
    exit "$status"
  fi
  command -v promtool >/dev/null || { log "the prometheus package brought no promtool"; exit 1; }
}

command -v promtool >/dev/null || install_promtool

shopt -s nullglob
rules=("$RULES_DIR"/*.yml)
tests=("$TESTS_DIR"/*.yml)
if [ "${#rules[@]}" -eq 0 ] || [ "${#tests[@]}" -eq 0 ]; then
  log "no rule files in $RULES_DIR or no tests in $TESTS_DIR"
  exit 1
fi

log "$(promtool --version 2>&1 | head -n 1)"
promtool check rules --lint-fatal "${rules[@]}"
promtool test rules "${tests[@]}"

# Dashboard queries: Grafana's variables replaced by plain values, each query wrapped in a
# recording rule, so that promtool's parser sees them.
dashboards=("$DASHBOARDS_DIR"/*.json)
if [ "${#dashboards[@]}" -gt 0 ]; then
  queries=$(mktemp --suffix=.yml)
  trap 'rm -f "$queries"' EXIT
  python3 - "$queries" "${dashboards[@]}" <<'PY'
import json
import re
import sys

out, paths = sys.argv[1], sys.argv[2:]
rules = []
for path in paths:
    for panel in json.load(open(path, encoding="utf-8"))["panels"]:
        for target in panel.get("targets", []):
            expr = target.get("expr", "")
            expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
            expr = re.sub(r"\$\{?\w+\}?", ".*", expr)
            rules.append({"record": "dashboard:query:%d" % len(rules), "expr": expr})
with open(out, "w", encoding="utf-8") as f:
    json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f, indent=1)
PY
  log "dashboard queries of ${#dashboards[@]} dashboards:"
  promtool check rules "$queries"
fi
