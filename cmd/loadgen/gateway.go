package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// gatewayProc is the gateway binary as a child process, as the crash loop runs it.
type gatewayProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	ready  time.Duration // start → first 200 from /readyz
}

// startGateway runs `BIN run -config CFG`, appending its output to logPath, and
// waits (at most limit) until /readyz on apiPort answers 200.
func startGateway(bin, cfg, logPath string, apiPort int, limit time.Duration) (*gatewayProc, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(bin, "run", "-config", cfg)
	cmd.Stdout, cmd.Stderr = lf, lf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	g := &gatewayProc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(g.exited) }()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", apiPort)
	hc := &http.Client{Timeout: time.Second}
	for time.Since(start) < limit {
		select {
		case <-g.exited:
			return nil, fmt.Errorf("gateway exited during start (see %s)", logPath)
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				g.ready = time.Since(start)
				return g, nil
			}
		}
		time.Sleep(2 * time.Millisecond) // polling a process that is starting
	}
	g.signal(syscall.SIGKILL)
	return nil, fmt.Errorf("gateway not ready within %v (see %s)", limit, logPath)
}

// signal sends sig and waits for the process to exit (SIGKILL after 10 s otherwise).
func (g *gatewayProc) signal(sig syscall.Signal) {
	_ = g.cmd.Process.Signal(sig)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		<-g.exited
	}
}
