#!/usr/bin/env bash
# Runs every test in the workspace against real parts: a nats-server >= 2.10
# started per test (installed into .tools/ when none is found), SQLite always,
# and Postgres too when TEST_POSTGRES_URL is set (CI sets it).
#
#   scripts/test.sh                 # all tests
#   scripts/test.sh -p shopmesh-cli # extra arguments go to the test runner
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found; install Rust >= 1.94 (https://rustup.rs) and run again" >&2
    exit 1
fi

NATS_SERVER_BIN="$(scripts/ensure-nats.sh)"
export NATS_SERVER_BIN

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
    echo "test.sh: TEST_POSTGRES_URL is not set; database tests run on SQLite only" >&2
fi

# The cross-service tests run the service binaries as processes.
cargo build --workspace --bins --quiet

# Doctests first: nextest does not run them, and its summary should be the
# last thing printed.
cargo test --workspace --doc --quiet

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    echo "test.sh: cargo-nextest not found; using cargo test (cargo install cargo-nextest for per-test processes)" >&2
    cargo test --workspace --no-fail-fast "$@"
fi
