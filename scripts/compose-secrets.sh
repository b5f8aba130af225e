#!/bin/sh
# Creates the compose stack's secret files (docker-compose.yml, `secrets:`) that do not exist yet,
# each 32 random bytes as hex. An existing file is never touched and no value is ever printed:
# only the path of each file created.
#
#   sh scripts/compose-secrets.sh [DIR]     (`npm run compose:secrets`; DIR defaults to secrets/)
set -eu

dir=${1:-$(cd "$(dirname "$0")/.." && pwd)/secrets}

random_hex() {
  if command -v openssl >/dev/null 2>&1; then
    openssl rand -hex 32
  else
    node -e 'console.log(require("node:crypto").randomBytes(32).toString("hex"))'
  fi
}

mkdir -p "$dir"
# Only this user may list or enter the directory...
chmod 0700 "$dir"
# ...but the files are world-readable: Compose bind-mounts each one into its containers with the
# host's owner and mode, and they run as other uids (Grafana 472, redis_exporter 59000).
umask 022

for name in redis_password influx_admin_password influx_admin_token grafana_admin_password api_token \
  postgres_password postgres_grafana_password; do
  file=$dir/$name
  # Compose v1 leaves an empty directory where it found no secret file to mount.
  if [ -d "$file" ]; then
    rmdir "$file" 2>/dev/null || {
      echo "compose-secrets: $file is a directory that is not empty; move it away and run again" >&2
      exit 1
    }
  fi
  [ -e "$file" ] && continue
  value=$(random_hex)
  if [ "${#value}" -ne 64 ]; then
    echo "compose-secrets: could not generate a value for $name (openssl or node needed)" >&2
    exit 1
  fi
  # noclobber: the redirection fails rather than overwrite a file created meanwhile.
  (set -C && printf '%s\n' "$value" >"$file")
  chmod 0644 "$file"
  echo "created $file"
done
