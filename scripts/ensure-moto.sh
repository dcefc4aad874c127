#!/usr/bin/env bash
# The object-storage tests start a real S3 server of their own: moto in server mode (PyPI
# `moto[server]`), an S3 implementation with multipart uploads, conditional writes and listing.
# Installs it into target/moto-venv when it is missing; does nothing when it is there. The
# tests run target/moto-venv/bin/moto_server (or $MOTO_SERVER).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/moto-venv
if [ -x "$venv/bin/moto_server" ]; then
    exit 0
fi
echo "== installing moto[server] (PyPI) into $venv for the object-storage tests"
if ! python3 -m venv "$venv" 2>/dev/null; then
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
"$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.*"
"$venv/bin/moto_server" --help >/dev/null
