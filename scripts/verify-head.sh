#!/usr/bin/env bash
# Checks the committed tree (not the working tree) the way CI does, reusing this checkout's
# node_modules: typecheck, lint and the test suite on a fresh clone of HEAD.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
git clone -q "$root" "$dir/velox"
ln -s "$root/node_modules" "$dir/velox/node_modules"
cd "$dir/velox"
npx tsc -p tsconfig.json --noEmit
npx biome check .
CI=true npx vitest run "$@"
