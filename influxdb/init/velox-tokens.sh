#!/bin/sh
# Creates the two bucket-scoped API tokens of the compose stack and leaves them as files on the
# influx-tokens volume, because InfluxDB 2 cannot create a token with a value chosen in advance:
#
#   /run/velox-tokens/velox-write.token   VELOX: write the bucket (and read it: trade details
#                                         query a trade's position history)
#   /run/velox-tokens/grafana-read.token  Grafana's InfluxDB datasource: read the bucket
#
# The influxdb image runs the executable *.sh files in /docker-entrypoint-initdb.d once, on first
# setup (no boltdb yet), as root, against a temporary influxd it started, with the influx CLI
# already configured with the admin token (which `influx setup` took from the secret named by
# DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE, so this script never reads it) and
# DOCKER_INFLUXDB_INIT_ORG_ID / _BUCKET_ID exported.
# If this script fails, the entrypoint deletes the half-made database and the next start retries.
# The tokens are never printed.
set -eu

dir=/run/velox-tokens
: "${DOCKER_INFLUXDB_INIT_USERNAME:?}" "${DOCKER_INFLUXDB_INIT_ORG_ID:?}" "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?}"

# Readable by uid 472 only: the velox and grafana containers both run as that uid.
reader=472
umask 077

# create_token FILE DESCRIPTION PERMISSION-FLAG...
create_token() {
  file=$1 description=$2
  shift 2
  json=$(influx auth create --json \
    --org-id "$DOCKER_INFLUXDB_INIT_ORG_ID" \
    --user "$DOCKER_INFLUXDB_INIT_USERNAME" \
    --description "$description" "$@")
  # `--json` prints one field per line: "token": "<value>",
  token=$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"token": *"\([^"]*\)".*$/\1/p')
  if [ -z "$token" ]; then
    echo "velox-tokens: influx auth create returned no token for $file" >&2
    exit 1
  fi
  printf '%s\n' "$token" > "$dir/$file.tmp"
  chown "$reader:$reader" "$dir/$file.tmp"
  chmod 0400 "$dir/$file.tmp"
  mv -f "$dir/$file.tmp" "$dir/$file"
  echo "velox-tokens: wrote $dir/$file ($description)"
}

mkdir -p "$dir"
bucket=$DOCKER_INFLUXDB_INIT_BUCKET_ID
create_token velox-write.token "velox: write (and read) bucket $DOCKER_INFLUXDB_INIT_BUCKET" \
  --write-bucket "$bucket" --read-bucket "$bucket"
create_token grafana-read.token "grafana: read bucket $DOCKER_INFLUXDB_INIT_BUCKET" \
  --read-bucket "$bucket"
