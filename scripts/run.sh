#!/usr/bin/env bash
# The README's first command: builds the engine, the example plugins and the test binaries
# with exactly the features the test suite resolves (so `scripts/test.sh` afterwards compiles
# nothing more: one build for both commands), then runs `engine` with the given arguments from
# the current folder.
#
#   scripts/run.sh run pipelines/daily.toml
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cargo test --release --workspace --no-run --manifest-path "$root/Cargo.toml"
exec "$root/target/release/engine" "$@"
