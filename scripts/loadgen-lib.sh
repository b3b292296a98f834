# Shared by the load suites (storm.sh, crash-loop.sh, broker-restart.sh, compare-nodered.sh).
# Everything runs on 127.0.0.1; every process started here is stopped by its PID.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${VAKT_LOAD_WORK:-$(mktemp -d -t vakt-load.XXXXXX)}
mkdir -p "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

build() {
	(cd "$root" && go build -o "$work/gateway" ./cmd/gateway && go build -o "$work/loadgen" ./cmd/loadgen)
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

waitport() { # port [tries]
	for _ in $(seq 1 "${2:-500}"); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.02
	done
	echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

# start_mosquitto port dir: firmware-notes/mqtt-broker.md's settings, persistence on.
# Sets mosq_pid.
start_mosquitto() {
	local port=$1 dir=$2
	mkdir -p "$dir"
	cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
user $(id -un)
allow_anonymous true
persistence true
persistence_location $dir/
autosave_interval 60
max_queued_messages 1000000
max_inflight_messages 0
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
log_type notice
CONF
	mosquitto -c "$dir/mosquitto.conf" 2>>"$dir/mosquitto.log" &
	mosq_pid=$!
	pids+=("$mosq_pid")
	waitport "$port"
}

# start_gateway config api_port log: sets gw_pid once /readyz answers.
start_gateway() {
	"$work/gateway" run -config "$1" >>"$3" 2>&1 &
	gw_pid=$!
	pids+=("$gw_pid")
	for _ in $(seq 1 1500); do
		curl -sf "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$gw_pid" 2>/dev/null || { echo "gateway exited; see $3" >&2; return 1; }
		sleep 0.02
	done
	echo "gateway not ready; see $3" >&2; return 1
}

stop_pid() { kill "${2:--TERM}" "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
