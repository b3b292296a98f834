package espa

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/vakt/vakt/internal/shared"
)

// TestVectorsMatchShared: testdata/espa444 is a copy of the shared espa444 vectors.
// Silent without the shared folder (a bare clone).
func TestVectorsMatchShared(t *testing.T) {
	dir, ok := shared.Lookup("testdata", "espa444")
	if !ok {
		return
	}
	theirs, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range theirs {
		want, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("testdata", "espa444", filepath.Base(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/espa444/%s differs from the shared copy (copy it again): %v", filepath.Base(p), err)
		}
	}
}
