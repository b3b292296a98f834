#!/usr/bin/env bash
# R1 crash loop: the gateway is SIGKILLed at a random moment (0.1-1.5 s into each run)
# during a storm of unique presses and cancels from 500 buttons over 8 bridge
# connections, and started again, N times; then every PUBACKed message must be an
# event in the database (none stored twice as new), PRAGMA integrity_check ok, and
# the ready time after each restart is reported (target: within 1 s).
# With "mosquitto" the buttons publish to one Mosquitto (firmware-notes' settings,
# persistence on) that stays up while the gateway dies; the gateway drains the backlog
# of its persistent session after the last restart.
# Usage: scripts/crash-loop.sh [cycles=200] [embedded|mosquitto] [presses/s=2000]
set -euo pipefail
cycles=${1:-200}; broker=${2:-embedded}; rate=${3:-2000}
source "$(dirname "$0")/loadgen-lib.sh"
build
api=$(freeport); bport=$(freeport)
ext=(); [ "$broker" = mosquitto ] && { ext=(-external); start_mosquitto "$bport" "$work/mosquitto"; }
"$work/loadgen" site -dir "$work/site" -api "$api" -broker "$bport" "${ext[@]}" >/dev/null
echo "crash loop ($broker broker): $cycles SIGKILLs, $rate presses/s + cancels offered; work folder $work"
set +e
"$work/loadgen" crash -gateway "$work/gateway" -dir "$work/site" -api-port "$api" -cycles "$cycles" \
	-broker "127.0.0.1:$bport" -rate "$rate" "${ext[@]}" -label "vakt-$broker" -json "$work/crash.jsonl" -ledger "$work/crash.ledger"
rc=$?
set -e
[ $rc -eq 0 ] && echo "VERDICT: PASS (every acknowledged event stored, integrity ok)" || echo "VERDICT: FAIL"
exit $rc
