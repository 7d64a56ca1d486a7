#!/usr/bin/env bash
# Smoke test of the benchmark: build release and run `lifeboat-bench --quick`
# (64 MiB database, one repetition of every pipeline). It asserts nothing
# about speed; it fails if any pipeline (lifeboat or a baseline) fails.
# Needs: sqlite3 tar gzip zstd pigz python3 (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --features bench --bin lifeboat --bin lifeboat-bench
target/release/lifeboat-bench --quick --work target/bench-smoke
