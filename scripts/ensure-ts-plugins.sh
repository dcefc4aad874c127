#!/usr/bin/env bash
# The TypeScript side of the repository, ready for the engine's tests: Node and npm (Debian's
# `nodejs` and `npm` when missing), the Node packages of the lockfile (`npm ci`, only when
# node_modules is missing or older than package-lock.json), and the TS plugins built to
# `.wasm` components (`npm run build`: the SDK's one build command for each of them; ~10 s a
# plugin). The engine's cargo build needs none of this: only the e2e tests of TS plugins do,
# and they say to run this script when a component is missing or older than its sources.
#
#   scripts/ensure-ts-plugins.sh           install if needed, then build every TS plugin
#   scripts/ensure-ts-plugins.sh --test    … and run the TS tests under Node (npm test)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "== installing Node.js and npm (Debian packages nodejs, npm) for the TypeScript plugins"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "Node.js $(node --version) is too old for the TypeScript plugins: 20 or newer is needed" >&2
    exit 1
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "== npm ci (the Node packages of package-lock.json)"
    npm ci --no-audit --no-fund
fi

echo "== building the TypeScript plugins (npm run build)"
npm run build --silent

if [ "${1:-}" = "--test" ]; then
    echo "== the TypeScript tests under Node (npm test)"
    npm test --silent
fi
