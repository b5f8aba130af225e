# VELOX for the compose stack: `docker compose up -d` builds this (see README, "Compose stack").

# --- build: dependencies (with better-sqlite3's native addon), TypeScript, then production deps only.
FROM node:20.20.2-bookworm-slim AS build

# better-sqlite3 downloads a prebuilt addon when one matches; these build it from source otherwise.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
# Scripts stay off during the install (the `prepare` build needs the sources, copied below); only
# better-sqlite3's install script runs, for its addon.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# --- runtime
FROM node:20.20.2-bookworm-slim

# VELOX runs as uid/gid 472, the uid of the `grafana` user in the Grafana image. Both containers
# open the same SQLite journal on the shared velox-data volume: VELOX writes it, Grafana's SQLite
# datasource reads it. The journal is in WAL mode, and a WAL reader needs to write the -shm file
# next to the database (and to create it when it is missing), so the directory and files VELOX
# creates must be writable by Grafana. The same uid makes that so without world-writable modes
# (Grafana's group is 0, so the uid is what counts). The image's /var/lib/velox is owned by 472, and
# Docker copies that ownership into the empty named volume the first container mounts (velox: the
# compose file starts Grafana after it).
RUN groupadd --system --gid 472 velox \
  && useradd --system --uid 472 --gid 472 --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin velox \
  && mkdir -p /var/lib/velox /var/log/velox \
  && chown 472:472 /var/lib/velox /var/log/velox

WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY config ./config
# The live page at / (static files, served as they are).
COPY public ./public

# Inside a container the API and the exporter listen on every interface of the container's own
# network namespace; the compose file publishes them on the host's 127.0.0.1 only.
ENV NODE_ENV=production \
    VELOX_API_HOST=0.0.0.0 \
    VELOX_METRICS_HOST=0.0.0.0 \
    VELOX_DATA_DIR=/var/lib/velox \
    VELOX_LOG_DIR=/var/log/velox

USER 472:472
EXPOSE 5000 9464

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5000/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

CMD ["node", "--max-old-space-size=1024", "--max-semi-space-size=8", "dist/cli.js", "run"]
