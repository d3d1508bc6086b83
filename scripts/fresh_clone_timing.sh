#!/usr/bin/env bash
# Time from `git clone` to a `make run` that answers /health/live (BENCHMARKS.md).
#   scripts/fresh_clone_timing.sh          uv's package cache as this machine has it
#   scripts/fresh_clone_timing.sh --cold   an empty package cache: every wheel downloaded
# The clone is of this checkout's HEAD, into a temporary folder removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

cold=0
[ "${1:-}" = "--cold" ] && cold=1
work=$(mktemp -d /tmp/askpro-fresh-XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=""
cleanup() {
  [ -n "$server" ] && kill -- -"$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

env_args=(PORT="$port")
if [ "$cold" = 1 ]; then
  env_args+=(UV_CACHE_DIR="$work/uv-cache")
fi

start=$(date +%s.%N)
git clone -q . "$work/askpro"
# Its own process group, so the server, worker and beat stop together.
setsid env "${env_args[@]}" make -C "$work/askpro" run >"$work/run.log" 2>&1 &
server=$!
until curl -fsS -o /dev/null "http://127.0.0.1:$port/health/live" 2>/dev/null; do
  if ! kill -0 "$server" 2>/dev/null; then
    echo "make run exited before serving; its log:" >&2
    tail -40 "$work/run.log" >&2
    exit 1
  fi
  if (($(date +%s) - ${start%.*} > 600)); then
    echo "not serving after 10 minutes; its log:" >&2
    tail -40 "$work/run.log" >&2
    exit 1
  fi
  sleep 0.5
done
end=$(date +%s.%N)
cache=$([ "$cold" = 1 ] && echo "empty package cache" || echo "warm package cache")
printf 'fresh clone -> serving make run: %.1f s (%s, %s)\n' "$(echo "$end - $start" | bc)" "$cache" "$(nproc) cores"
