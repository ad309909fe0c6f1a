#!/bin/sh
# bench-compare: the standard comparison of Strata with NATS JetStream, run
# by `make bench-compare` (and `make bench`). Two runs of the same workload
# (1 topic, 4 partitions, 1 producer, 1 exclusive subscription, 1 KiB):
#   max    as fast as the producer window allows: peak throughput;
#   fixed  at a rate every driver sustains: latency at equal load.
# Each run goes against strata (a standalone it starts), jetstream (server
# defaults: ack before fsync) and jetstream-sync (sync_interval: always),
# one after the other. Results: $OUT/{max,fixed}.{txt,json,png}.
set -eu

BIN=${BIN:-bin/strata}
OUT=${OUT:-bench}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
FIXED_RATE=${FIXED_RATE:-2000}
DRIVERS=${DRIVERS:-strata,jetstream,jetstream-sync}

mkdir -p "$OUT"
run() {
	name=$1
	rate=$2
	echo "== $name (rate $rate, $DURATION after $WARMUP warm-up) =="
	"$BIN" loadtest --driver "$DRIVERS" \
		--topics 1 --partitions 4 --producers 1 --subscriptions 1 --consumers 1 \
		--subscription-type exclusive --key-distribution none \
		--size 1024 --rate "$rate" --warmup "$WARMUP" --duration "$DURATION" \
		--batching-delay 1ms --max-pending 1000 \
		--json "$OUT/$name.json" --plot "$OUT/$name.png" | tee "$OUT/$name.txt"
}

status=0
run max max || status=$?
run fixed "$FIXED_RATE" || status=$?
exit "$status"
