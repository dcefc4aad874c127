#!/usr/bin/env bash
# The whole test suite, from a fresh clone: the TypeScript SDK and plugins (Node packages from
# package-lock.json, the TS plugins built to components once, their tests under Node), the
# engine's unit and end-to-end tests (building the engine also builds the Rust WebAssembly
# plugins they run, adding the wasm32-wasip2 target if needed; PostgreSQL's server programs are
# installed if missing; headless Chromium for the reconcile report's test), then the Rust plugins' own unit tests, natively. Ends with one line
# totalling every test binary's result.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Postgres sink's tests run real PostgreSQL servers: make sure the programs are installed.
scripts/ensure-postgres.sh
# The object-storage and Delta tests run a real S3 server (moto) and Python readers of Delta
# tables: make sure they are installed.
scripts/ensure-python.sh
# The reconcile report's test opens it in headless Chromium: make sure it and a Korean font are
# installed.
scripts/ensure-chromium.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The TS plugins the e2e tests run, built once here (npm ci + npm run build), and the TS tests.
scripts/ensure-ts-plugins.sh --test 2>&1 | tee -a "$log"
cargo test --release --workspace 2>&1 | tee -a "$log"
cargo test --release --manifest-path plugins/Cargo.toml 2>&1 | tee -a "$log"

python3 - "$log" <<'PY'
import re, sys
passed = failed = ignored = 0
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    m = re.match(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", line)
    if m:
        passed += int(m[1]); failed += int(m[2]); ignored += int(m[3])
    # node --test (the TS SDK and plugins): "# pass N", "# fail N", "# skipped N".
    m = re.match(r"# (pass|fail|skipped) (\d+)$", line.strip())
    if m:
        n = int(m[2])
        if m[1] == "pass": passed += n
        elif m[1] == "fail": failed += n
        else: ignored += n
print(f"tests: {passed} passed, {failed} failed, {ignored} skipped")
PY
