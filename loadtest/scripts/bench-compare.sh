#!/bin/sh
# bench-compare: the standard comparison of Strata with NATS JetStream, run
# by `make bench`. Workload: 1 topic, 4 partitions, 1 producer, 1 exclusive
# subscription, no keys, 1 ms batching delay. Runs:
#   max-100    100 B messages as fast as the producer window allows
#   max-1024   1 KiB messages as fast as the producer window allows
#   fixed-1024 1 KiB messages at a rate every driver sustains: latency at
#              equal load
# Each run goes against strata (a standalone it starts, fsync before every
# acknowledgement), jetstream (server defaults: ack before fsync) and
# jetstream-sync (sync_interval: always), one after the other. Results:
# $OUT/<run>.{txt,json,png} and $OUT/commands.txt.
set -eu

BIN=${BIN:-bin/strata}
OUT=${OUT:-docs/bench}
DURATION=${DURATION:-30s}
WARMUP=${WARMUP:-5s}
FIXED_RATE=${FIXED_RATE:-2000}
DRIVERS=${DRIVERS:-strata,jetstream,jetstream-sync}

mkdir -p "$OUT"
: > "$OUT/commands.txt"
cut -d' ' -f1-3 /proc/loadavg > "$OUT/loadavg.txt" # before the runs, for bench-doc
run() {
	name=$1 size=$2 rate=$3
	cmd="$BIN loadtest --driver $DRIVERS --topics 1 --partitions 4 --producers 1 --subscriptions 1 --consumers 1 --subscription-type exclusive --key-distribution none --size $size --rate $rate --warmup $WARMUP --duration $DURATION --batching-delay 1ms --max-pending 5000 --json $OUT/$name.json --plot $OUT/$name.png"
	echo "== $name =="
	echo "$name: $cmd" >> "$OUT/commands.txt"
	# Not piped into tee: sh has no pipefail, and a failing driver must fail
	# the benchmark.
	# shellcheck disable=SC2086
	rc=0
	$cmd > "$OUT/$name.txt" || rc=$?
	cat "$OUT/$name.txt"
	return "$rc"
}

status=0
run max-100 100 max || status=$?
run max-1024 1024 max || status=$?
run fixed-1024 1024 "$FIXED_RATE" || status=$?
exit "$status"
