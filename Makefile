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
