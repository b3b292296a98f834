#!/usr/bin/env bash
# P2 storm: 500 Zigbee2MQTT buttons (32 bridge connections) press at a fixed offered
# rate for a fixed time, each press followed by its cancel once the nearest of 200
# phones has the offer (so every press opens a new alarm), through the broker; then
# every PUBACKed message must be in the database once, integrity_check ok. Prints the
# figures (throughput, press → offer percentiles, the fsync floor of the same run) and
# a verdict; exit 1 on a loss.
# Usage: scripts/storm.sh [seconds=60] [presses/s=5000] [embedded|mosquitto] [checkins/s=0]
# (5000 presses/s + their cancels = 10,000 events/s offered.)
set -euo pipefail
secs=${1:-60}; rate=${2:-5000}; broker=${3:-embedded}; checkins=${4:-0}
source "$(dirname "$0")/loadgen-lib.sh"
build
api=$(freeport); bport=$(freeport)
ext=(); [ "$broker" = mosquitto ] && { ext=(-external); start_mosquitto "$bport" "$work/mosquitto"; }
"$work/loadgen" site -dir "$work/site" -api "$api" -broker "$bport" "${ext[@]}" >/dev/null
start_gateway "$work/site/site.yaml" "$api" "$work/gateway.log"
echo "storm ($broker broker): ${secs}s at $rate presses/s + cancels, $checkins check-ins/s; work folder $work"
drain=0s; [ "$broker" = mosquitto ] && drain=60s
set +e
"$work/loadgen" run -dir "$work/site" -api "http://127.0.0.1:$api" -broker "127.0.0.1:$bport" \
	-rate "$rate" -duration "${secs}s" -checkins "$checkins" -conns 32 -floor \
	-verify-db "$work/site/vakt.db" -drain "$drain" -label "vakt-$broker" -json "$work/storm.jsonl"
rc=$?
set -e
grep VmHWM "/proc/$gw_pid/status" | sed 's/^/gateway peak RSS: /' || true
stop_pid "$gw_pid"
[ $rc -eq 0 ] && echo "VERDICT: PASS (nothing lost, nothing duplicated, integrity ok)" || echo "VERDICT: FAIL"
exit $rc
