#!/usr/bin/env bash
# Installs the real servers the tests run against, from Debian's packages, when they are missing.
# Needs root and apt-get; otherwise it says what to install and leaves the decision to you
# (under CI=true the tests then fail rather than skip).
set -euo pipefail

# executable -> Debian package
declare -A PACKAGES=(
  [redis-server]=redis-server
  [redis-benchmark]=redis-tools
  [sqlite3]=sqlite3
  # The compose stack's PostgreSQL init script runs psql; the tests run it against their own server.
  [psql]=postgresql-client
  [victoria-metrics]=victoria-metrics
  [kcat]=kcat
  [prometheus]=prometheus
  [promtool]=prometheus
  # Validates docker-compose.yml (`config -q`); no Docker engine is needed for that, and
  # --no-install-recommends below keeps apt from pulling one in.
  [docker-compose]=docker-compose
  # InfluxDB 1.6: a strict storage engine for the write path and the InfluxQL panels.
  [influxd]=influxdb
  # Headless Chromium for the live page's browser test (driven by playwright-core).
  [chromium]=chromium
)

missing=()
for exe in "${!PACKAGES[@]}"; do
  command -v "$exe" >/dev/null 2>&1 || missing+=("${PACKAGES[$exe]}")
done

# One executable's package may provide another's (prometheus ships promtool): ask for each once.
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "test dependencies: all present"
  exit 0
fi

echo "test dependencies: missing ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test dependencies: not root or no apt-get; install them with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "test dependencies: installed ${missing[*]}"
