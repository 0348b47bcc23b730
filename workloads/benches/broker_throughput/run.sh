#!/usr/bin/env bash
# Throughput of `spikewatch replay --speed max` → `spikewatch featurize` through a local tansu.
# Usage (from the repository root, after `source scripts/env`):
#   workloads/benches/broker_throughput/run.sh target/release/spikewatch 20
set -euo pipefail
BIN=$1; COPIES=${2:-10}
W=$(mktemp -d)
python3 "$(dirname "$0")/make_input.py" data/coinbase/exchange-ticker-btcusd-2025-11-12.ndjson "$W/input.ndjson" "$COPIES"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TANSU_BIN" broker --listener-url tcp://127.0.0.1:$PORT --advertised-listener-url tcp://127.0.0.1:$PORT --storage-engine memory://tansu/ >"$W/tansu.log" 2>&1 &
TANSU=$!
trap 'kill $TANSU 2>/dev/null; kill $FEAT 2>/dev/null || true' EXIT
sleep 1
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'kafka:\n  bootstrap_servers: 127.0.0.1:%s\n  partitions: 1\nmetrics:\n  bind: 127.0.0.1:%s\n' "$PORT" "$MPORT" > "$W/config.yaml"
export RUST_LOG=warn
# 1. replay alone, as fast as the broker acknowledges
start=$(date +%s.%N)
"$BIN" --config "$W/config.yaml" replay --speed max --input "$W/input.ndjson" | tee "$W/replay.out"
end=$(date +%s.%N)
N=$(sed -n 's/.*published=\([0-9]*\).*/\1/p' "$W/replay.out")
python3 -c "print(f'replay: {$N} ticks in {$end-$start:.2f} s = {$N/($end-$start):,.0f} msg/s (published and acknowledged)')"
# 2. featurize the backlog: time from the first consumed tick to the last (group join excluded)
"$BIN" --config "$W/config.yaml" featurize >"$W/featurize.out" 2>"$W/featurize.err" &
FEAT=$!
python3 - "$MPORT" "$N" <<'PY'
import sys, time, urllib.request
port, n = sys.argv[1], int(sys.argv[2])
def metric(name):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except Exception:
        return 0.0
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
first = None
while True:
    consumed = metric("spikewatch_featurizer_ticks_consumed_total")
    if consumed > 0 and first is None:
        first = (time.monotonic(), consumed)
    published = metric("spikewatch_featurizer_features_published_total")
    if consumed >= n and published >= n:
        end = time.monotonic()
        break
    time.sleep(0.05)
t0, c0 = first
print(f"featurize: {n - c0:.0f} ticks consumed and {published:.0f} vectors published+acked+committed in {end - t0:.2f} s = {(n - c0) / (end - t0):,.0f} msg/s (from the first consumed record; group join excluded)")
PY
kill -TERM $FEAT; wait $FEAT || true
tail -1 "$W/featurize.out"
rm -rf "$W"
