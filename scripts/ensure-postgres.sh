#!/usr/bin/env bash
# The Postgres tests start throwaway PostgreSQL servers of their own (initdb + pg_ctl), so the
# machine needs PostgreSQL's server programs, not a running service. Installs Debian's
# `postgresql` package when they are missing; does nothing when they are there.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null; then
    exit 0
fi
echo "== installing PostgreSQL's server programs (Debian package postgresql) for the tests"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || {
    echo "PostgreSQL's initdb is still missing after installing the postgresql package" >&2
    exit 1
}
