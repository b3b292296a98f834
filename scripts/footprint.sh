#!/usr/bin/env bash
# P4 footprint of the gateway binary: binary sizes (amd64 as built by `go build`,
# stripped arm64 as `make arm64` builds it), idle RSS after ready (the demo site and
# loadgen's 500-button / 200-phone site), peak RSS during a storm through the
# embedded broker, and the time from exec to /readyz 200 on a new database and on a
# 1 GB history (store's BenchmarkRestart history, built once and cached in TMPDIR).
#   P4: idle RSS <= 25 MB, <= 60 MB in a storm; stripped arm64 <= 20 MB; ready <= 300 ms with 1 GB.
# RSS is measured on the static, stripped amd64 build (the shipped form on this machine).
# Usage: scripts/footprint.sh [storm-seconds=20] [presses/s=5000] [history-MB=1024 (0: skip)]
# Needs go, curl, python3. Loopback only; every process started here is stopped by its PID.
set -euo pipefail
ssecs=${1:-20}; rate=${2:-5000}; histmb=${3:-1024}
source "$(dirname "$0")/loadgen-lib.sh"
build
mb() { awk -v b="$1" 'BEGIN {printf "%.2f MB", b / 1e6}'; }
(cd "$root" && GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/gateway-arm64" ./cmd/gateway)
(cd "$root" && GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/gateway-amd64-stripped" ./cmd/gateway)
echo "binary amd64 (go build ./cmd/gateway): $(mb "$(stat -c %s "$work/gateway")")"
echo "binary amd64 stripped (-trimpath -ldflags='-s -w'): $(mb "$(stat -c %s "$work/gateway-amd64-stripped")")"
echo "binary arm64 stripped (make arm64): $(mb "$(stat -c %s "$work/gateway-arm64")") (P4: <= 20 MB)"
# Memory is measured on the binary in the form it ships (static, stripped: the
# Dockerfile, make arm64, firmware-notes): a cgo build maps libc too (+1.5–2 MB RSS).
cp "$work/gateway-amd64-stripped" "$work/gateway"

rss() { # pid: VmRSS and VmHWM
	awk '/^VmRSS|^VmHWM/ {printf "%s %.1f MB  ", $1, $2 / 1024}' "/proc/$1/status"
}
now_ms() { date +%s%3N; }
# ready_ms config api log: exec → first /readyz 200 (curl polled without a pause);
# sets ready (ms) and gw_pid.
ready_ms() {
	local t0
	t0=$(now_ms)
	"$work/gateway" run -config "$1" >>"$3" 2>&1 &
	gw_pid=$!
	pids+=("$gw_pid")
	until curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1; do
		kill -0 "$gw_pid" 2>/dev/null || { echo "gateway exited; see $3" >&2; return 1; }
	done
	ready=$(($(now_ms) - t0))
}

# The demo site, every port moved to a free one on loopback (nothing listens on
# the ARC's and cloud's: the outbound links just retry).
demo() { # api-port broker-port db-path: writes $work/demo.yaml
	local api=$1 bp=$2 arc cloud
	arc=$(freeport); cloud=$(freeport)
	sed -e "s|path: ../../data/vakt.db|path: $3|" -e "s|127.0.0.1:8080|127.0.0.1:$api|" \
		-e "s|127.0.0.1:1883|127.0.0.1:$bp|" -e "s|127.0.0.1:7777|127.0.0.1:$arc|" \
		-e "s|127.0.0.1:8090|127.0.0.1:$cloud|" "$root/config/examples/demo.yaml" >"$work/demo.yaml"
}
api=$(freeport); bp=$(freeport)
demo "$api" "$bp" "$work/demo.db"
ready_ms "$work/demo.yaml" "$api" "$work/demo.log"
echo "demo site, new database: exec → /readyz 200 in $ready ms"
sleep 5 # idle after ready: the web app, broker and drivers settled
echo "demo site, idle 5 s after ready: $(rss "$gw_pid")(P4: idle <= 25 MB)"
stop_pid "$gw_pid"

if [ "$histmb" -gt 0 ]; then
	echo "building or reusing the ${histmb} MB history (store BenchmarkRestart's cache; about a minute per GB the first time)"
	(cd "$root" && VAKT_BENCH_DB_MB=$histmb go test -run '^$' -bench 'Restart$' -benchtime 1x ./store) >"$work/restart-bench.txt" 2>&1 ||
		{ cat "$work/restart-bench.txt"; exit 1; }
	hist=$(ls -t "${TMPDIR:-/tmp}"/vakt-bench-history-v*-"${histmb}"mb.db | head -1)
	cp "$hist" "$work/history.db" && sync "$work/history.db"
	api=$(freeport); bp=$(freeport)
	demo "$api" "$bp" "$work/history.db"
	ready_ms "$work/demo.yaml" "$api" "$work/history.log"
	echo "demo site on the $(mb "$(stat -c %s "$work/history.db")") history ($hist): exec → /readyz 200 in $ready ms (P4: <= 300 ms); RSS $(rss "$gw_pid")"
	stop_pid "$gw_pid"
	grep -E '^Benchmark' "$work/restart-bench.txt" | sed 's/^/store bench (same history): /'
	rm -f "$work/history.db" "$work/history.db-wal" "$work/history.db-shm"
fi

# loadgen's site: 500 buttons, 200 staff; idle, then a storm through the embedded broker.
api=$(freeport); bp=$(freeport)
"$work/loadgen" site -dir "$work/site" -api "$api" -broker "$bp" >/dev/null
start_gateway "$work/site/site.yaml" "$api" "$work/site.log"
sleep 5
echo "load site (500 buttons, 200 staff), idle 5 s after ready: $(rss "$gw_pid")"
"$work/loadgen" run -dir "$work/site" -api "http://127.0.0.1:$api" -broker "127.0.0.1:$bp" \
	-rate "$rate" -duration "${ssecs}s" -conns 32 -verify-db "$work/site/vakt.db" -label storm >"$work/storm.txt" 2>&1 ||
	{ cat "$work/storm.txt"; exit 1; }
grep -E 'published|PASS|FAIL' "$work/storm.txt"
echo "load site after a ${ssecs} s storm at $rate presses/s + cancels, 200 phones: $(rss "$gw_pid")(P4: peak in a storm <= 60 MB)"
stop_pid "$gw_pid"
