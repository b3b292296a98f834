package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestSecurityBrokerTLS (S5): with drivers.broker.tls_cert and tls_key the gateway's
// embedded broker speaks TLS only. A TLS 1.1 client is refused in the handshake
// even though it trusts the certificate, a plain MQTT client is refused, and a TLS
// 1.2 and a TLS 1.3 client log in and press: each press is an open alarm once its
// PUBACK arrived (the PUBACK follows the commit).
func TestSecurityBrokerTLS(t *testing.T) {
	s := writeSecSite(t, secOpts{brokerTLS: true})
	startChild(t, s.path, s.apiPort, s.env...)

	old := &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, err := dialBroker(t, s.brokerPort, old, "zigbee2mqtt", secZ2MPass, "z2m-old-tls"); err == nil {
		t.Fatal("a TLS 1.1 client logged in to the embedded broker")
	}
	if _, err := dialBroker(t, s.brokerPort, nil, "zigbee2mqtt", secZ2MPass, "z2m-plain"); err == nil {
		t.Fatal("a plain MQTT client logged in to the TLS listener")
	}
	// Trusting nothing but the system roots: the throwaway CA is not among them.
	if _, err := dialBroker(t, s.brokerPort, &tls.Config{}, "zigbee2mqtt", secZ2MPass, "z2m-untrusted"); err == nil {
		t.Fatal("a client that does not trust the certificate connected")
	}
	presses := map[uint16]string{tls.VersionTLS12: "zigbee2mqtt/room101/sos", tls.VersionTLS13: "zigbee2mqtt/room102/button"}
	payload := map[uint16]string{tls.VersionTLS12: `{"action":"emergency"}`, tls.VersionTLS13: `{"action":"single"}`}
	for v, topic := range presses {
		tc := &tls.Config{RootCAs: s.roots, MinVersion: v, MaxVersion: v}
		c, err := dialBroker(t, s.brokerPort, tc, "zigbee2mqtt", secZ2MPass, "z2m-"+strings.ReplaceAll(tls.VersionName(v), " ", ""))
		if err != nil {
			t.Fatalf("%s: %v", tls.VersionName(v), err)
		}
		if err := c.pub(topic, payload[v]); err != nil {
			t.Fatalf("%s: %v", tls.VersionName(v), err)
		}
	}
	list := secAlarms(t, s)
	for _, tr := range []string{"room-101-sos", "room-102-button"} {
		if !containsAlarm(list, tr) {
			t.Errorf("the press of %s over TLS was acknowledged but is not an open alarm: %s", tr, list)
		}
	}
}

// TestSecurityBrokerTLSHalfSet (S5): tls_cert without tls_key (or the reverse) is
// refused at start with the missing key and its line.
func TestSecurityBrokerTLSHalfSet(t *testing.T) {
	for _, c := range []struct{ drop, want string }{
		{"    tls_key:", "drivers.broker.tls_key: required when tls_cert is set"},
		{"    tls_cert:", "drivers.broker.tls_cert: required when tls_key is set"},
	} {
		t.Run(strings.TrimSpace(c.drop), func(t *testing.T) {
			s := writeSecSite(t, secOpts{brokerTLS: true, edit: func(s string) string { return dropLine(s, c.drop) }})
			_, stderr, exit := runGateway(t, s.env, "run", "-config", s.path)
			if exit != 1 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "(line ") {
				t.Fatalf("exit %d, stderr %q; want 1 and %q with its line", exit, stderr, c.want)
			}
		})
	}
}

// dropLine removes the first line starting with prefix.
func dropLine(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return strings.Join(append(lines[:i], lines[i+1:]...), "\n")
		}
	}
	return s
}

// secAlarms lists every open alarm as secSite's nurse lead sees them.
func secAlarms(t *testing.T, s *secSite) string {
	t.Helper()
	c := secClient(t, s)
	code, body := c.do("GET", "/api/v1/alarms", c.login("lead-1", secLeadSecret), nil)
	if code != 200 {
		t.Fatalf("alarms: %d %s", code, body)
	}
	return string(body)
}

func secClient(t *testing.T, s *secSite) client {
	return client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", s.apiPort)}
}

// TestSecurityAPITLS (S5): with api.tls_cert and tls_key the phone API is HTTPS
// only, TLS 1.2 or newer: a TLS 1.1 client is refused in the handshake, a TLS 1.2
// client logs in and opens the phone's WebSocket (wss).
func TestSecurityAPITLS(t *testing.T) {
	var certPath, keyPath string
	var roots *x509.CertPool
	s := writeSecSite(t, secOpts{edit: func(y string) string {
		dir := t.TempDir()
		certPEM, keyPEM, r := testCA(t)
		roots = r
		certPath, keyPath = filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
		if err := os.WriteFile(certPath, []byte(certPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, []byte(keyPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		return strings.Replace(y, "  see_all_roles: [nurse-lead]\n", fmt.Sprintf("  see_all_roles: [nurse-lead]\n  tls_cert: %s\n  tls_key: %s\n", certPath, keyPath), 1)
	}})
	// startChild waits for "gateway ready" in the log, not for a plain HTTP answer.
	startChild(t, s.path, s.apiPort, s.env...)
	base := fmt.Sprintf("https://127.0.0.1:%d", s.apiPort)
	login := `{"staff_id":"lead-1","secret":"` + secLeadSecret + `"}`
	post := func(tc *tls.Config) (*http.Response, error) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: waitLimit}
		return hc.Post(base+"/api/v1/sessions", "application/json", strings.NewReader(login))
	}
	if resp, err := post(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		resp.Body.Close()
		t.Fatal("a TLS 1.1 client reached the phone API")
	}
	if resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/v1/sessions", s.apiPort), "application/json", strings.NewReader(login)); err == nil {
		if resp.StatusCode == http.StatusCreated {
			t.Error("a plain HTTP login succeeded on the TLS listener")
		}
		resp.Body.Close()
	}
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}
	resp, err := post(tc)
	if err != nil {
		t.Fatalf("TLS 1.2 login: %v", err)
	}
	var r struct{ Token string }
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil || r.Token == "" {
		t.Fatalf("TLS 1.2 login: %d %v", resp.StatusCode, err)
	}
	d := websocket.Dialer{TLSClientConfig: tc, HandshakeTimeout: waitLimit}
	ws, _, err := d.Dial(fmt.Sprintf("wss://127.0.0.1:%d/api/v1/stream?token=%s", s.apiPort, r.Token), nil)
	if err != nil {
		t.Fatalf("wss: %v", err)
	}
	ws.Close()
}

// TestSecurityBrokerPlaintextWarning (S5, documented in docs/configuration.md): a
// production broker listening beyond loopback without TLS starts, and warns at each
// start naming the keys to set; with TLS, or on loopback, it does not warn.
func TestSecurityBrokerPlaintextWarning(t *testing.T) {
	const warning = "embedded broker listens beyond loopback without TLS"
	for _, c := range []struct {
		name string
		tls  bool
		all  bool // listen on 0.0.0.0
		warn bool
	}{
		{"every interface, plain", false, true, true},
		{"every interface, TLS", true, true, false},
		{"loopback, plain", false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := writeSecSite(t, secOpts{brokerTLS: c.tls, edit: func(y string) string {
				if c.all {
					return strings.Replace(y, `listen: "127.0.0.1:`, `listen: "0.0.0.0:`, 1)
				}
				return y
			}})
			gw, logs := startLoggedChild(t, s)
			gw.stop(t)
			if got := strings.Contains(logs.String(), warning) && strings.Contains(logs.String(), "drivers.broker.tls_cert"); got != c.warn {
				t.Errorf("warned: %v, want %v; log:\n%s", got, c.warn, grepLines(logs.String(), "broker"))
			}
		})
	}
}
