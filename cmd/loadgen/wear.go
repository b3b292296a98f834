package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// ioWindow is what the system under test wrote to disk during one load (P6): its
// /proc/PID/io write_bytes at the start (after the phones logged in and the bridges
// connected) and at the end (after the verdict found every acknowledged message
// stored, so the last lingering check-ins' commit is in).
type ioWindow struct {
	PID        int   `json:"pid"`
	StartNs    int64 `json:"start_unix_ns"`
	EndNs      int64 `json:"end_unix_ns"`
	WriteBytes int64 `json:"write_bytes"`
	start      int64
}

// writeBytes reads write_bytes from /proc/PID/io: the bytes the process caused to
// be sent to the storage layer.
func writeBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read the gateway's disk writes: %w (is -io-pid the gateway's pid, and ours to read?)", err)
	}
	defer f.Close()
	return parseWriteBytes(f)
}

func parseWriteBytes(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no write_bytes line in /proc/PID/io")
}

func startIO(pid int) (*ioWindow, error) {
	if pid <= 0 {
		return nil, nil
	}
	w := &ioWindow{PID: pid, StartNs: time.Now().UnixNano()}
	var err error
	w.start, err = writeBytes(pid)
	return w, err
}

func (w *ioWindow) end() error {
	if w == nil {
		return nil
	}
	b, err := writeBytes(w.PID)
	w.EndNs, w.WriteBytes = time.Now().UnixNano(), b-w.start
	return err
}
