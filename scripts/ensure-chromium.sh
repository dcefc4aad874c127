#!/usr/bin/env bash
# The reconcile report's end-to-end tests open the HTML report in headless Chromium to read its
# DOM, catch console errors and take a screenshot. Installs Debian's `chromium` package when
# `chromium` is not on PATH, and `fonts-nanum` when no font covers Korean (the report's messages
# are Korean); does nothing when both are there.
set -euo pipefail

packages=()
if ! command -v chromium >/dev/null; then
    packages+=(chromium)
fi
if ! { command -v fc-list >/dev/null && fc-list :lang=ko family | grep -q .; }; then
    packages+=(fonts-nanum)
fi
if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi
echo "== installing ${packages[*]} (Debian packages) for the report tests"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
command -v chromium >/dev/null || {
    echo "chromium is still missing after installing the chromium package" >&2
    exit 1
}
