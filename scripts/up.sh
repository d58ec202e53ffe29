#!/usr/bin/env bash
# Runs the whole platform natively, no Docker: its own nats-server (installed
# into .tools/ when missing), the user, product and order services on SQLite
# in data/platform, the analytics service, a seeded catalogue, a gentle
# background load, the URLs and a status line every few seconds. Ctrl-C stops
# everything; a second run resumes from the same data.
#
#   scripts/up.sh                       # defaults: NATS on 14222, services on 8081-8084
#   scripts/up.sh --load-rate 0         # no background load
#   scripts/up.sh --http-base-port 9081 --nats-port 15222 --nats-monitor-port 19222
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "up.sh: cargo not found; install Rust >= 1.94 (https://rustup.rs) and run again" >&2
    exit 1
fi
NATS_SERVER_BIN="$(scripts/ensure-nats.sh)"
export NATS_SERVER_BIN

echo "up.sh: building release binaries (the first build takes several minutes)..." >&2
cargo build --release --quiet --bins -p shopmesh-cli -p shopmesh-user -p shopmesh-product -p shopmesh-order -p shopmesh-analytics
exec "${CARGO_TARGET_DIR:-target}/release/shopmesh" up "$@"
