#!/usr/bin/env bash
# P7: Vakt against what an integrator would build instead, a Node-RED flow (MQTT in at
# QoS 1 → nearest on-duty staff by haversine from a staff table → SQLite insert →
# WebSocket push; scripts/nodered/flow.js), on the same Mosquitto (firmware-notes'
# settings) with the same site (500 buttons, 200 staff) and the same load: at each
# offered rate, presses (each cancelled once its offer arrived) for a fixed time, press →
# offer percentiles and throughput side by side; then each is SIGKILLed mid-storm,
# restarted, and what the broker acknowledged is compared with what its database holds.
# Node-RED comes from npm into a folder of its own (cached in $VAKT_NODERED_DIR).
# Usage: scripts/compare-nodered.sh [seconds-per-rate=10] ["rates"="100 500 1000 2000 4000"] [svg-out]
# Writes the figures to $work/compare.jsonl and, with svg-out, the latency-vs-load plot.
set -euo pipefail
secs=${1:-10}; rates=${2:-100 500 1000 2000 4000}; svg=${3:-}
source "$(dirname "$0")/loadgen-lib.sh"
nr=${VAKT_NODERED_DIR:-$HOME/.cache/vakt-nodered}
if [ ! -e "$nr/node_modules/node-red/red.js" ] || [ ! -e "$nr/node_modules/better-sqlite3" ]; then
	echo "installing Node-RED into $nr (npm)"
	mkdir -p "$nr"
	npm install --prefix "$nr" --no-audit --no-fund node-red better-sqlite3@12 >"$work/npm.log" 2>&1 ||
		{ cat "$work/npm.log"; exit 1; }
fi
export NR_MODULES="$nr/node_modules"
build
bport=$(freeport); api=$(freeport); nrport=$(freeport)
start_mosquitto "$bport" "$work/mosquitto"
out="$work/compare.jsonl"; : >"$out"
echo "compare: Vakt and Node-RED $(node -p "require('$nr/node_modules/node-red/package.json').version") on Mosquitto 127.0.0.1:$bport; ${secs}s at each of: $rates presses/s; work folder $work"

# --- Vakt
"$work/loadgen" site -dir "$work/vakt" -api "$api" -broker "$bport" -external >/dev/null
start_gateway "$work/vakt/site.yaml" "$api" "$work/vakt/gateway.log"
for r in $rates; do
	"$work/loadgen" run -dir "$work/vakt" -api "http://127.0.0.1:$api" -broker "127.0.0.1:$bport" -conns 8 \
		-rate "$r" -duration "${secs}s" -label vakt -json "$out" -floor | grep -E 'offer|floor'
done

# SIGKILL mid-storm: blind presses + cancels at the highest rate, killed after half the
# time, restarted; it drains what the broker still holds for it; compare. Vakt is
# stopped before Node-RED starts: the two persistent sessions on one Mosquitto would
# otherwise each receive the other's load.
top=${rates##* }
echo "SIGKILL mid-storm ($top presses/s + cancels, killed after $((secs / 2)) s):"
"$work/loadgen" run -dir "$work/vakt" -broker "127.0.0.1:$bport" -conns 8 -blind -no-phones -rate "$top" \
	-duration "${secs}s" -kill-pid "$gw_pid" -kill-after "$((secs / 2))s" -ledger "$work/vakt.ledger" -label vakt | grep -E 'acknowledged|SIGKILL' || true
wait "$gw_pid" 2>/dev/null || true
start_gateway "$work/vakt/site.yaml" "$api" "$work/vakt/gateway.log"
"$work/loadgen" verify -db "$work/vakt/vakt.db" -ledger "$work/vakt.ledger" -drain 120s -label "vakt after SIGKILL" -json "$out" || true
stop_pid "$gw_pid"


# --- Node-RED
start_nodered() {
	mkdir -p "$work/nodered"
	( cd "$work/nodered" && NR_PORT=$nrport exec node "$nr/node_modules/node-red/red.js" \
		--userDir "$work/nodered" --settings "$work/nodered/settings.js" >>"$work/nodered/node-red.log" 2>&1 ) &
	nr_pid=$!
	pids+=("$nr_pid")
	for _ in $(seq 1 1500); do
		grep -q "Connected to broker" "$work/nodered/node-red.log" 2>/dev/null && return 0
		kill -0 "$nr_pid" 2>/dev/null || { echo "node-red exited; see $work/nodered/node-red.log" >&2; return 1; }
		sleep 0.02
	done
	echo "node-red did not connect to the broker; see $work/nodered/node-red.log" >&2; return 1
}
mkdir -p "$work/nodered"
cp "$root/scripts/nodered/settings.js" "$work/nodered/"
node "$root/scripts/nodered/seed.js" "$work/vakt/site.json" "$work/nodered/alarms.db"
node "$root/scripts/nodered/flow.js" "$work/nodered" "$bport" "$work/nodered/alarms.db"
cp "$work/vakt/site.json" "$work/nodered/"
: >"$work/nodered/node-red.log"
start_nodered
for r in $rates; do
	"$work/loadgen" run -dir "$work/nodered" -phones-url "ws://127.0.0.1:$nrport/ws/alarms" -broker "127.0.0.1:$bport" -conns 8 \
		-rate "$r" -duration "${secs}s" -label node-red -json "$out" | grep -E 'offer'
done

"$work/loadgen" run -dir "$work/nodered" -broker "127.0.0.1:$bport" -conns 8 -blind -no-phones -rate "$top" \
	-duration "${secs}s" -kill-pid "$nr_pid" -kill-after "$((secs / 2))s" -ledger "$work/nodered.ledger" -label node-red | grep -E 'acknowledged|SIGKILL' || true
wait "$nr_pid" 2>/dev/null || true
mv "$work/nodered/node-red.log" "$work/nodered/node-red.log.1"; : >"$work/nodered/node-red.log"
start_nodered
"$work/loadgen" verify -db "$work/nodered/alarms.db" -ledger "$work/nodered.ledger" -drain 30s -label "node-red after SIGKILL" -json "$out" || true
stop_pid "$nr_pid"

if [ -n "$svg" ]; then
	"$work/loadgen" plot -in "$out" -out "$svg"
	echo "plot: $svg"
fi
echo "figures: $out"
