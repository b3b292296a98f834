package config

import (
	"path/filepath"
	"testing"
	"time"
)

// TestRetentionDefaults: a period left out is the privacy policy's 90 days; one
// written is kept as written.
func TestRetentionDefaults(t *testing.T) {
	setEnvFile(t, filepath.Join("testdata", "cases", "valid-retention", "env.txt"))
	cfg, err := Load(filepath.Join("testdata", "cases", "valid-retention", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Retention
	want := Retention{Alarms: Duration(365 * 24 * time.Hour), Events: Duration(30 * 24 * time.Hour),
		Visits: Duration(90 * 24 * time.Hour), EPRRecords: Duration(24 * time.Hour), Audit: Duration(DefaultRetention)}
	if r != want {
		t.Errorf("retention = %+v, want %+v", r, want)
	}
}
