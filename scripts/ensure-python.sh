#!/usr/bin/env bash
# The Python packages the end-to-end tests run, from PyPI (tests/requirements.txt): moto in
# server mode, a real S3 server with multipart uploads, conditional writes and listing; and the
# readers of the Delta tables no one here wrote (the deltalake package, DuckDB with its delta
# extension); the Standard Webhooks verifier library the webhook tests check signatures with.
# Installs them into target/moto-venv when it is missing or the requirements
# changed; does nothing otherwise. The tests run target/moto-venv/bin/{moto_server,python}.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/moto-venv
requirements=tests/requirements.txt
marker="$venv/.requirements.sha256"
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$venv/bin/moto_server" ] && [ "$(cat "$marker" 2>/dev/null)" = "$wanted" ]; then
    exit 0
fi
echo "== installing the tests' Python packages ($requirements) into $venv"
if [ ! -x "$venv/bin/pip" ] && ! python3 -m venv "$venv" 2>/dev/null; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
"$venv/bin/moto_server" --help >/dev/null
"$venv/bin/python" -c "import deltalake, duckdb, duckdb_extension_delta, standardwebhooks"
echo "$wanted" > "$marker"
