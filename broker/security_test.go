package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vakt/vakt/broker"
)

// testCA makes a throwaway CA and a server certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T) (server tls.Certificate, roots *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vakt test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(caCert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots
}

func connectTLS(t *testing.T, b *broker.Broker, c *tls.Config, user, pass, id string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("ssl://" + b.Addr()).SetClientID(id).
		SetUsername(user).SetPassword(pass).SetTLSConfig(c).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(wait)
	cl := paho.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(wait) {
		t.Fatal("tls connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	return cl, nil
}

// TestTLSListener (S5): with Options.TLS the broker speaks TLS only, refuses TLS 1.1
// (even when the caller's config allowed it) and plain MQTT, and a TLS 1.2 or 1.3
// client logs in and publishes.
func TestTLSListener(t *testing.T) {
	cert, roots := testCA(t)
	var mu sync.Mutex
	var got []string
	b := start(t, broker.Options{Clients: clients(),
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10},
		OnPublish: func(topic string, _ []byte) error {
			mu.Lock()
			got = append(got, topic)
			mu.Unlock()
			return nil
		}})

	old := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	if _, err := connectTLS(t, b, old, btnUser, btnPass, "old"); err == nil {
		t.Fatal("a TLS 1.1 client connected")
	}
	if _, err := connect(t, b, btnUser, btnPass, "plain", true); err == nil {
		t.Fatal("a plain MQTT client connected to the TLS listener")
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := connectTLS(t, b, &tls.Config{RootCAs: roots, MinVersion: v, MaxVersion: v}, btnUser, btnPass, "btn-"+tls.VersionName(v))
		if err != nil {
			t.Fatalf("%s: %v", tls.VersionName(v), err)
		}
		if tok := c.Publish(btnTopic, 1, false, `{"action":"single"}`); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("%s publish: %v", tls.VersionName(v), tok.Error())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("handed over %v, want two presses", got)
	}
	if _, err := broker.New(broker.Options{OnPublish: accept, TLS: &tls.Config{InsecureSkipVerify: true}}); err == nil {
		t.Error("New accepted InsecureSkipVerify")
	}
}

// TestRateLimitShedsFlooder (S6): a login that publishes beyond its budget is
// disconnected and counted, what it sent within the budget is handed over, a
// button with its own login still gets its press through, and the flooder that
// reconnects gets no fresh budget until it refills. The limiter's clock moves only
// when the test says, so the budget is exactly the burst.
func TestRateLimitShedsFlooder(t *testing.T) {
	const burst = 20
	var mu sync.Mutex
	handed := map[string]int{}
	b := start(t, broker.Options{Clients: clients(), RateLimit: broker.RateLimit{Rate: 1, Burst: burst},
		OnPublish: func(topic string, _ []byte) error {
			mu.Lock()
			handed[topic]++
			mu.Unlock()
			return nil
		}})
	var clock atomic.Int64 // seconds
	broker.RateLimitClock(b, func() time.Time { return time.Unix(1_800_000_000+clock.Load(), 0) })

	// A raw client: paho's Publish waits up to 30 s on a socket the broker closed.
	flood := rawConnect(t, b, "z2m", "z2m-secret", "z2m-flood")
	btn := mustConnect(t, b, btnUser, btnPass, "btn101", true)
	// QoS 0, as fast as the socket takes it: junk to its own base, and to topics it
	// may not use, until the broker closes the connection.
	for i := 0; i < 10*burst; i++ {
		topic := "zigbee2mqtt/junk"
		if i%2 == 1 {
			topic = "elsewhere/junk"
		}
		if _, err := flood.Write(publishFrame(0, false, 0, topic, "{not json")); err != nil {
			break
		}
	}
	if _, err := io.ReadAll(flood.r); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("the flooding connection was not shed: %v", err)
	}
	if err := btn.publish(t, btnTopic, 1, `{"action":"emergency"}`); err != nil {
		t.Fatalf("the button's press after the flood: %v", err)
	}
	st := b.Stats()
	if st.Shed != 1 {
		t.Errorf("shed = %d, want 1", st.Shed)
	}
	if st.RefusedPublish != burst/2 {
		t.Errorf("refused publishes = %d, want %d (the junk to elsewhere/ within the budget)", st.RefusedPublish, burst/2)
	}
	mu.Lock()
	if handed["zigbee2mqtt/junk"] != burst/2 || handed[btnTopic] != 1 || handed["elsewhere/junk"] != 0 {
		t.Errorf("handed over %v, want %d junk within the budget, none refused, the press", handed, burst/2)
	}
	mu.Unlock()

	// The shed client may log in again, but its budget is still spent: its first
	// publish sheds it again.
	again := mustConnect(t, b, "z2m", "z2m-secret", "z2m-flood", true)
	again.Publish("zigbee2mqtt/room7/button", 0, false, `{}`)
	select {
	case <-again.lost:
	case <-time.After(wait):
		t.Fatal("a reconnected flooder got a fresh budget")
	}
	// A second later one token has come back.
	clock.Add(1)
	third := mustConnect(t, b, "z2m", "z2m-secret", "z2m-flood", true)
	if err := third.publish(t, "zigbee2mqtt/room7/button", 1, `{}`); err != nil {
		t.Fatalf("publish once the budget refilled: %v", err)
	}
	if st := b.Stats(); st.Shed != 2 {
		t.Errorf("shed = %d, want 2", st.Shed)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
