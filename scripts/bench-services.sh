#!/usr/bin/env bash
# Footprint and speed of the domain services, natively (release builds, SQLite):
# idle resident memory of each service, then GET /products/{id} for a
# logged-in shopper (which also publishes product.viewed) under wrk, beside
# GET /healthz of the same process in the same run as the baseline.
#
#   scripts/bench-services.sh            # 15 s per load run
#   DURATION=30s CONNECTIONS=64 scripts/bench-services.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-32}"
command -v wrk >/dev/null || { echo "bench-services.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench-services.sh: needs curl" >&2; exit 1; }
NATS_SERVER_BIN="$(scripts/ensure-nats.sh)"

cargo build --release --quiet -p shopmesh-user -p shopmesh-product -p shopmesh-order -p shopmesh-cli
BIN="${CARGO_TARGET_DIR:-target}/release"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NATS_PORT="$(free_port)"
"$NATS_SERVER_BIN" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
PIDS+=($!)

export NATS_URL="nats://127.0.0.1:$NATS_PORT"
export SHOPMESH_DATA_DIR="$WORK/data"
export SHOPMESH_AUTH_KEY="bench-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
export SHOPMESH_ADMIN_TOKEN="admin-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')"
export RUST_LOG=warn

declare -A PORT
for svc in user product order; do
    PORT[$svc]="$(free_port)"
    SHOPMESH_HTTP_PORT="${PORT[$svc]}" "$BIN/shopmesh-$svc" >"$WORK/$svc.log" 2>&1 &
    PIDS+=($!)
    eval "PID_$svc=$!"
done
for svc in user product order; do
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:${PORT[$svc]}/readyz" >/dev/null && break
        sleep 0.1
    done
    curl -fs "http://127.0.0.1:${PORT[$svc]}/readyz" >/dev/null || { echo "$svc did not become ready:"; cat "$WORK/$svc.log"; exit 1; }
done

USER_URL="http://127.0.0.1:${PORT[user]}"
PRODUCT_URL="http://127.0.0.1:${PORT[product]}"
curl -fs -X POST "$USER_URL/users" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","name":"Bench","password":"benchmark-pass"}' >/dev/null
TOKEN="$(curl -fs -X POST "$USER_URL/sessions" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"benchmark-pass"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
PRODUCT_ID="$(curl -fs -X POST "$PRODUCT_URL/products" -H 'content-type: application/json' \
    -H "authorization: Bearer $SHOPMESH_ADMIN_TOKEN" \
    -d '{"name":"Benchmark book","category":"books","price_cents":1999,"stock":100}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"

sleep 3 # let start-up allocations settle before reading idle memory
echo "idle resident memory (target < 30 MiB each):"
for svc in user product order; do
    pid_var="PID_$svc"
    rss_kib="$(ps -o rss= -p "${!pid_var}")"
    printf '  %-8s %6.1f MiB\n' "$svc" "$(echo "$rss_kib / 1024" | bc -l)"
done

run_wrk() { # url, label
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "authorization: Bearer $TOKEN" "$1" >"$WORK/wrk.txt"
    local rps p99 errors
    rps="$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.txt")"
    p99="$(awk '$1 == "99%" {print $2}' "$WORK/wrk.txt")"
    errors="$(awk '/Non-2xx/ {print $5}' "$WORK/wrk.txt")"
    printf '  %-34s %10s req/s   p99 %8s   non-2xx %s\n' "$2" "$rps" "$p99" "${errors:-0}"
    echo "$rps"  >"$WORK/last_rps"
}

echo "load: wrk, 2 threads, $CONNECTIONS connections, $DURATION each, same process:"
run_wrk "$PRODUCT_URL/healthz" "GET /healthz (baseline)"
BASE="$(cat "$WORK/last_rps")"
run_wrk "$PRODUCT_URL/products/$PRODUCT_ID" "GET /products/{id} (logged in)"
OURS="$(cat "$WORK/last_rps")"
printf '  ratio product page / healthz: %.2f\n' "$(echo "$OURS / $BASE" | bc -l)"
sleep 2 # behaviour events still in the buffer
STORED="$("$BIN/shopmesh" provision --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"]["messages"])')"
echo "events in the stream after the runs: $STORED (one product.viewed per product page served, unless dropped)"
