#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (tests/browser/): Playwright for
# Python drives /usr/bin/chromium, because Playwright's own browser download needs the
# internet. When it is missing and we are root with apt-get, installs the `chromium`
# package quietly; otherwise fails loudly, saying what to install.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

log() { printf '[browser] %s\n' "$*" >&2; }

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "$CHROMIUM not found; install Debian's chromium package (apt-get install chromium)"
    exit 1
  fi
  log "$CHROMIUM not found; installing Debian's chromium package"
  started=$SECONDS
  output=$(mktemp)
  status=0
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=300 chromium
  } >"$output" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$output" >&2
    rm -f "$output"
    log "apt-get install chromium failed (exit $status)"
    exit "$status"
  fi
  rm -f "$output"
  [ -x "$CHROMIUM" ] || { log "the chromium package brought no $CHROMIUM"; exit 1; }
  log "installed in $((SECONDS - started)) s"
fi

# A browser that can't start (missing libraries, broken package) fails here, not mid-test.
# (Debian's launcher script may grumble on stderr about its memory check: harmless.)
errors=$(mktemp)
if ! version=$("$CHROMIUM" --version 2>"$errors"); then
  cat "$errors" >&2
  rm -f "$errors"
  log "$CHROMIUM does not start"
  exit 1
fi
rm -f "$errors"
log "$version"
