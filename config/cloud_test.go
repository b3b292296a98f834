package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cloudConfig writes a minimal configuration with a cloud section and a token
// file of the given mode next to it, and returns its path.
func cloudConfig(t *testing.T, demo bool, url, extra string, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	writeSecret(t, filepath.Join(dir, "cloud-token"), "a-long-enough-gateway-token-4711\n", mode)
	y := fmt.Sprintf(`site:
  id: solbakken
  demo: %v
cloud:
  enabled: true
  url: %q
  token_file: cloud-token
%s`, demo, url, extra)
	path := filepath.Join(dir, "vakt.yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cloudErr loads path and returns the one error about key, failing otherwise.
func cloudErr(t *testing.T, path, key string) *Error {
	t.Helper()
	_, err := Load(path)
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load: %v, want config.Errors about %s", err, key)
	}
	for _, e := range errs {
		if e.Path == key {
			if e.Line == 0 {
				t.Errorf("%s: error without a line: %v", key, e)
			}
			return e
		}
	}
	t.Fatalf("no error about %s in:\n%v", key, err)
	return nil
}

func TestCloudSection(t *testing.T) {
	t.Run("https with the token from its file", func(t *testing.T) {
		cfg, err := Load(cloudConfig(t, false, "https://cloud.example.com/vakt", "", 0o600))
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Cloud
		if c.Token.Value != "a-long-enough-gateway-token-4711" || c.GatewayID != "solbakken" ||
			c.BatchSize != DefaultCloudBatchSize || c.DirectoryInterval.D() != DefaultCloudDirectory {
			t.Fatalf("cloud = %+v", c)
		}
		if strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), "4711") {
			t.Fatal("the token is printed")
		}
	})
	t.Run("demo over http to loopback", func(t *testing.T) {
		if _, err := Load(cloudConfig(t, true, "http://127.0.0.1:8090", "", 0o600)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("http outside demo", func(t *testing.T) {
		e := cloudErr(t, cloudConfig(t, false, "http://cloud.example.com", "", 0o600), "cloud.url")
		if !strings.Contains(e.Msg, "demo mode only") {
			t.Errorf("message %q", e.Msg)
		}
	})
	t.Run("demo http to another host", func(t *testing.T) {
		e := cloudErr(t, cloudConfig(t, true, "http://10.0.0.5:8090", "", 0o600), "cloud.url")
		if !strings.Contains(e.Msg, "loopback") {
			t.Errorf("message %q", e.Msg)
		}
	})
	t.Run("token readable by others", func(t *testing.T) {
		e := cloudErr(t, cloudConfig(t, false, "https://cloud.example.com", "", 0o644), "cloud.token_file")
		if !strings.Contains(e.Msg, "chmod 600") || strings.Contains(e.Msg, "4711") {
			t.Errorf("message %q", e.Msg)
		}
	})
	t.Run("batch size over the contract", func(t *testing.T) {
		e := cloudErr(t, cloudConfig(t, false, "https://cloud.example.com", "  batch_size: 9000\n", 0o600), "cloud.batch_size")
		if e.Line != 8 {
			t.Errorf("line %d, want 8", e.Line)
		}
	})
	t.Run("disabled needs nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vakt.yaml")
		if err := os.WriteFile(path, []byte("site:\n  id: x\ncloud:\n  enabled: false\n  url: http://example.com\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err != nil {
			t.Fatal(err)
		}
	})
}
