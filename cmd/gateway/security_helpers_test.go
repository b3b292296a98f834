package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The security tests (security_*_test.go) run the gateway binary on secSite: a
// production-mode configuration (site.demo: false) that holds every kind of secret
// the configuration has, each a unique marker, so a test can grep everything the
// gateway shows for all of them.

// The secrets of secSite. Each is long enough and no sample value, so the gateway
// starts; each is unique, so finding one anywhere is a leak of that one.
const (
	secLeadSecret   = "Stf-inline-7Qx2Lm" // lead-1, inline in the file
	secNurseSecret  = "Stf-file-Zr8Kp3w"  // nurse-1, file: (mode 0600)
	secTechSecret   = "Stf-env-Wq4Nh6y"   // tech-1, ${VAKT_TEST_TECH_SECRET}
	secAdminSecret  = "Stf-admin-Ub7Fj1"  // admin-1, inline
	secZ2MPass      = "Brk-z2m-Hx5Tv9q"   // drivers.broker.clients zigbee2mqtt
	secButtonPass   = "Brk-btn-Jd3Rc7s"   // drivers.broker.clients button-102
	secCloudToken   = "Cld-token-Pm6Yb2e" // cloud.token_file
	secARCKey       = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
	secMQTTPassword = "Mqt-pass-Ke2Gs8r" // drivers.mqtt.password (external broker)
	secTechEnv      = "VAKT_TEST_TECH_SECRET"
)

// allSecrets are the values no output of the gateway may contain.
var allSecrets = []string{secLeadSecret, secNurseSecret, secTechSecret, secAdminSecret, secZ2MPass,
	secButtonPass, secCloudToken, secARCKey, secMQTTPassword}

// secOpts varies secSite.
type secOpts struct {
	// brokerTLS: the embedded broker listens with TLS (a throwaway CA's certificate).
	brokerTLS bool
	// rateLimit, rateBurst: drivers.broker.rate_limit and rate_burst (0: defaults).
	rateLimit float64
	rateBurst int
	// edit changes the file's text before it is written (a refusal case).
	edit func(s string) string
}

// secSite is one written configuration and what a test needs to talk to it.
type secSite struct {
	path, dir           string
	apiPort, brokerPort int
	roots               *x509.CertPool // the broker's CA, with brokerTLS
	env                 []string       // the child's environment additions
}

func writeSecSite(t *testing.T, o secOpts) *secSite {
	t.Helper()
	dir := t.TempDir()
	s := &secSite{dir: dir, apiPort: freePort(t), brokerPort: freePort(t), env: []string{secTechEnv + "=" + secTechSecret}}
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("nurse-secret", secNurseSecret+"\n", 0o600)
	write("cloud-token", secCloudToken+"\n", 0o600)
	write("arc-key", secARCKey+"\n", 0o600)
	tlsKeys := ""
	if o.brokerTLS {
		certPEM, keyPEM, roots := testCA(t)
		s.roots = roots
		tlsKeys = fmt.Sprintf("    tls_cert: %s\n    tls_key: %s\n", write("broker.crt", certPEM, 0o600), write("broker.key", keyPEM, 0o600))
	}
	limits := ""
	if o.rateLimit > 0 {
		limits += fmt.Sprintf("    rate_limit: %g\n", o.rateLimit)
	}
	if o.rateBurst > 0 {
		limits += fmt.Sprintf("    rate_burst: %d\n", o.rateBurst)
	}
	body := fmt.Sprintf(`site: {id: sec-site, name: Security site}
zones: [{id: east, name: East wing, floor: 1}]
roles: [nurse, nurse-lead, technician, admin]
transmitters:
  - {id: room-101-sos, kind: sos-pendant, driver: zigbee2mqtt, address: room101/sos, room: "101", zone: east, floor: 1}
  - {id: room-102-button, kind: button, driver: zigbee2mqtt, address: room102/button, room: "102", zone: east, floor: 1}
staff:
  - {id: lead-1, name: Lead, roles: [nurse-lead], zone: east, secret: %q}
  - {id: nurse-1, name: Nurse, roles: [nurse], zone: east, secret: "file:nurse-secret"}
  - {id: tech-1, name: Tech, roles: [technician], secret: "${%s}"}
  - {id: admin-1, name: Admin, roles: [admin], secret: %q}
policies:
  - name: everyone
    tiers: [{target: site, wait: 1m}, {target: arc}]
  - name: technical
    kinds: [low-battery, tamper, offline]
    tiers: [{target: role, roles: [technician], wait: 10m}]
drivers:
  broker:
    enabled: true
    listen: "127.0.0.1:%d"
%s%s    clients:
      - username: zigbee2mqtt
        password: %q
        publish: ["zigbee2mqtt/#"]
        subscribe: ["zigbee2mqtt/#"]
      - username: button-102
        password: %q
        publish: ["zigbee2mqtt/room102/button"]
  mqtt:
    enabled: true
    base_topic: zigbee2mqtt
api:
  listen: 127.0.0.1:%d
  see_all_roles: [nurse-lead]
storage:
  path: %s
arc:
  enabled: true
  address: 127.0.0.1:%d
  account: "1234"
  key_file: arc-key
  link_test: 0s
cloud:
  enabled: true
  url: https://127.0.0.1:%d/vakt
  token_file: cloud-token
`, secLeadSecret, secTechEnv, secAdminSecret, s.brokerPort, tlsKeys, limits, secZ2MPass, secButtonPass,
		s.apiPort, filepath.Join(dir, "vakt.db"), freePort(t), freePort(t))
	if o.edit != nil {
		body = o.edit(body)
	}
	s.path = write("gateway.yaml", body, 0o600)
	return s
}

// testCA makes a throwaway CA and a certificate for 127.0.0.1 signed by it, as PEM.
func testCA(t *testing.T) (certPEM, keyPEM string, roots *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vakt test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})), roots
}

// mqttClient is a paho client of the gateway's embedded broker.
type mqttClient struct {
	paho.Client
	msgs chan paho.Message
	lost chan error
}

// dialBroker logs in to the embedded broker (ssl:// when tc is set).
func dialBroker(t *testing.T, port int, tc *tls.Config, user, pass, id string) (*mqttClient, error) {
	t.Helper()
	url := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	if tc != nil {
		url = fmt.Sprintf("ssl://127.0.0.1:%d", port)
	}
	c := &mqttClient{msgs: make(chan paho.Message, 1024), lost: make(chan error, 1)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetTLSConfig(tc).SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(waitLimit).SetWriteTimeout(waitLimit).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			select {
			case c.msgs <- m:
			default:
			}
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost <- err })
	c.Client = paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, nil
}

// pub sends one QoS 1 message and waits for its PUBACK (sent after the commit).
func (c *mqttClient) pub(topic, payload string) error {
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitLimit) {
		return fmt.Errorf("publish %s: no PUBACK within %v", topic, waitLimit)
	}
	return tok.Error()
}

// runGateway runs the gateway binary with args to its end (bounded: a gateway that
// starts when it should have refused is killed, and that is a failure).
func runGateway(t *testing.T, env []string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gateway %s did not exit within %v (it started?); stdout:\n%s", strings.Join(args, " "), waitLimit, o.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// timeoutC is the hang guard of a wait on a channel.
func timeoutC() <-chan time.Time { return time.After(waitLimit) }

// scrapeMetrics reads the gateway's /metrics.
func scrapeMetrics(t *testing.T, s *secSite) string {
	t.Helper()
	code, body := secClient(t, s).do("GET", "/metrics", "", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	return string(body)
}

// metricValue is the value of the series written exactly as series ("name{labels}"
// or "name"), or -1 when /metrics has no such line.
func metricValue(metrics, series string) float64 {
	for _, l := range strings.Split(metrics, "\n") {
		if rest, ok := strings.CutPrefix(l, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

// grepLines is the lines of s containing sub (for failure messages).
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// tlsConfigFor is a client configuration trusting s's broker (TLS 1.2 or newer).
func tlsConfigFor(s *secSite) *tls.Config {
	return &tls.Config{RootCAs: s.roots, MinVersion: tls.VersionTLS12}
}
