#!/usr/bin/env bash
# R2: the gateway on an external Mosquitto (firmware-notes' settings, persistence on,
# started by loadgen): Mosquitto is stopped and started N times, and each time a press
# published the moment it is back must reach a phone within 2 s (reconnect and
# resubscribe); then the gateway is stopped, presses are published while it is down,
# and after its start every one must be in the database. Prints a verdict.
# Usage: scripts/broker-restart.sh [restarts=5] [presses-while-down=200]
set -euo pipefail
cycles=${1:-5}; down=${2:-200}
source "$(dirname "$0")/loadgen-lib.sh"
build
api=$(freeport); bport=$(freeport)
"$work/loadgen" site -dir "$work/site" -api "$api" -broker "$bport" -external >/dev/null
set +e
"$work/loadgen" broker-restart -gateway "$work/gateway" -dir "$work/site" -api-port "$api" -broker-port "$bport" \
	-cycles "$cycles" -presses-while-down "$down"
rc=$?
set -e
[ $rc -eq 0 ] && echo "VERDICT: PASS" || echo "VERDICT: FAIL"
exit $rc
