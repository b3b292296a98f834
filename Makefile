# Convenience targets; each runs exactly the command shown in the README or CI.
.PHONY: demo test ci vulncheck arm64

demo:
	go run ./cmd/gateway run -config config/examples/demo.yaml

test:
	go test -race ./...

ci:
	bash .ci/run

arm64:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o bin/gateway-arm64 ./cmd/gateway

# govulncheck fetches its vulnerability database from the internet: run it on a
# machine that can reach it (CI and the build machines cannot; they run go mod verify).
vulncheck:
	go run golang.org/x/vuln/cmd/govulncheck@latest ./...

# Load suites (cmd/loadgen; docs/benchmarks.md has the figures and what each proves).
# Each prints its figures and a VERDICT line; all traffic stays on 127.0.0.1.
.PHONY: storm crash-loop broker-restart phone-drop compare-nodered wear footprint
storm:            # P2: 10,000 events/s offered for 60 s through the embedded broker
	scripts/storm.sh 60 5000 embedded
crash-loop:       # R1: 200 SIGKILLs during a storm, embedded broker, then Mosquitto
	scripts/crash-loop.sh 200 embedded
	scripts/crash-loop.sh 200 mosquitto 1000
broker-restart:   # R2
	scripts/broker-restart.sh 5 200
phone-drop:       # R8
	scripts/phone-drop.sh
compare-nodered:  # P7, and the plot docs/img/latency-vs-load.svg
	scripts/compare-nodered.sh 10 "100 300 1000 2000 4000" docs/img/latency-vs-load.svg
wear:             # P6: bytes written per check-in and per alarm, MB/day at a busy site (Mosquitto), without and with the reference cloud (~20 min each: the check-in phase holds one 15-minute health write)
	VAKT_WEAR_WARMUP=20s scripts/wear.sh 10s 900 120 mosquitto varying
	VAKT_WEAR_WARMUP=20s VAKT_WEAR_CLOUD=1 scripts/wear.sh 10s 900 120 mosquitto varying
footprint:        # P4: binary sizes, idle RSS, RSS in a storm, ready time with a 1 GB history
	scripts/footprint.sh 20 5000 1024

# Fault suites (issue 13; cmd/gateway/suite_*_test.go). Each prints its figures and a
# VERDICT line; the short versions of the same tests run in `go test -race ./...`.
.PHONY: outage-week serial-unplug clock-jump disk-full
outage-week:      # R3: a simulated week of cloud outage (1,000,000 outbox entries), then the drain
	scripts/outage-week.sh 1000000
serial-unplug:    # R4: 50 unplug/replug cycles of a pty-backed ESPA port, noise between frames
	scripts/serial-unplug.sh 50
clock-jump:       # R5: wall clock jumps of +-1 h, and a boot at 1970
	scripts/clock-jump.sh 5
disk-full:        # R6: the database on a full 2 MB tmpfs (needs root; else an injected write failure)
	scripts/disk-full.sh
