package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt/config"
	"golang.org/x/crypto/bcrypt"
)

// TestBrokerTLS: an ssl:// broker is verified against the configured CA file (or
// the system's CAs), never skipped; a plain URL gets no TLS; a CA file that holds
// no certificate is a clear error naming the key.
func TestBrokerTLS(t *testing.T) {
	if c, err := brokerTLS(config.MQTT{URL: "tcp://127.0.0.1:1883"}); c != nil || err != nil {
		t.Fatalf("plain url: %v %v", c, err)
	}
	c, err := brokerTLS(config.MQTT{URL: "ssl://broker.local:8883"})
	if err != nil || c == nil || c.RootCAs != nil || c.InsecureSkipVerify || c.MinVersion < 0x0303 {
		t.Fatalf("system CAs: %+v %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := brokerTLS(config.MQTT{URL: "ssl://broker.local:8883", CAFile: bad}); err == nil || !strings.Contains(err.Error(), "drivers.mqtt.ca_file") {
		t.Fatalf("bad CA file: %v", err)
	}
}

// TestCheckInLingerWithEitherBroker: storage.checkin_linger applies with the
// embedded broker too (it pipelines a connection's publishes; the end-to-end proof
// that a press is not held back is TestCheckInLingersBehindEmbeddedBroker).
func TestCheckInLingerWithEitherBroker(t *testing.T) {
	for _, tc := range []struct {
		embedded bool
		want     time.Duration
	}{{true, 10 * time.Second}, {false, 10 * time.Second}} {
		cfg, err := config.Load(demoConfig(t, freePort(t), freePort(t), tc.embedded))
		if err != nil {
			t.Fatal(err)
		}
		if got := checkInLinger(cfg); got != tc.want {
			t.Errorf("embedded=%v: linger %v, want %v", tc.embedded, got, tc.want)
		}
	}
}

// TestStaffSecretsHashed: every staff member's plain secret logs them in with the
// hash the directory gets. In demo mode staff sharing the sample secret share one
// hash (one bcrypt per distinct secret keeps a 200-staff start fast, R1); outside
// demo mode equal secrets still get their own salt, so the database does not show
// who shares a secret.
func TestStaffSecretsHashed(t *testing.T) {
	for _, demo := range []bool{true, false} {
		cfg := &config.Config{Site: config.Site{Demo: demo}}
		for _, id := range []string{"a", "b", "c"} {
			cfg.Staff = append(cfg.Staff, config.Staff{ID: id, Secret: config.Secret{Value: "shared secret"}})
		}
		cfg.Staff = append(cfg.Staff, config.Staff{ID: "d", Secret: config.Secret{Value: "own secret"}})
		dir, _, _, err := staffFromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range dir {
			if err := bcrypt.CompareHashAndPassword([]byte(s.SecretHash), []byte(cfg.Staff[i].Secret.Value)); err != nil {
				t.Errorf("demo=%v: %s cannot log in with their secret: %v", demo, s.ID, err)
			}
		}
		if same := dir[0].SecretHash == dir[1].SecretHash; same != demo {
			t.Errorf("demo=%v: equal secrets share a hash: %v", demo, same)
		}
		if dir[0].SecretHash == dir[3].SecretHash {
			t.Errorf("demo=%v: different secrets share a hash", demo)
		}
	}
}
