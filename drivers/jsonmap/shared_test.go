package jsonmap_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vakt/vakt/internal/shared"
)

// TestGoldenMatchesShared: testdata/messages.jsonl (played by drivers/all's
// conformance test) holds the generic-mapping lines of the shared
// zigbee2mqtt/messages.jsonl, unchanged. Silent without the shared folder.
func TestGoldenMatchesShared(t *testing.T) {
	dir, ok := shared.Lookup("testdata", "zigbee2mqtt")
	if !ok {
		return
	}
	theirs, err := os.ReadFile(filepath.Join(dir, "messages.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := os.ReadFile(filepath.Join("testdata", "messages.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for l := range bytes.Lines(theirs) {
		set[string(bytes.TrimSpace(l))] = true
	}
	for l := range bytes.Lines(ours) {
		if l = bytes.TrimSpace(l); len(l) > 0 && !set[string(l)] {
			t.Errorf("testdata/messages.jsonl has a line the shared folder does not: %s", l)
		}
	}
}
