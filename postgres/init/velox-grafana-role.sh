#!/bin/sh
# Run once by the timescaledb container, on the first start of an empty data volume (the image runs
# /docker-entrypoint-initdb.d then): the read-only role Grafana's History dashboard connects as.
# VELOX creates the history tables later, as their owner ($POSTGRES_USER); the default privileges
# below give the role SELECT on each of them as it is created, daily partitions and the 1-minute
# view included, and nothing else. The password comes from the secret file, never from a variable.
set -eu
password_file=${POSTGRES_GRAFANA_PASSWORD_FILE:-/run/secrets/postgres_grafana_password}
password=$(cat "$password_file")
psql -v ON_ERROR_STOP=1 -v pw="$password" -v owner="$POSTGRES_USER" -v db="$POSTGRES_DB" \
  --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE velox_grafana LOGIN PASSWORD :'pw';
GRANT CONNECT ON DATABASE :"db" TO velox_grafana;
GRANT USAGE ON SCHEMA public TO velox_grafana;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO velox_grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO velox_grafana;
SQL
