package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestSecuritySecretsNeverShown (S4): a production-mode gateway configured with every
// kind of secret (staff secrets inline, from a file and from the environment, broker
// client passwords, the broker's TLS key, the cloud token, the ARC key, and an MQTT
// password in a refused configuration) is used the way a site uses it: logins good
// and bad (also a secret typed into the staff id field), MQTT logins good and bad,
// a press handled to the end, the status page and its JSON, /metrics, the admin
// export and `export-person`, `verify-audit`, a configuration error naming a secret
// key. None of the secret values appears in any of it, nor in the log (stdout and
// stderr at debug level), the audit rows, or the raw database file and its WAL.
func TestSecuritySecretsNeverShown(t *testing.T) {
	s := writeSecSite(t, secOpts{brokerTLS: true})
	keyPEM, err := os.ReadFile(filepath.Join(s.dir, "broker.key"))
	if err != nil {
		t.Fatal(err)
	}
	// The base64 body of the broker's TLS private key is a secret too.
	keyLines := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")
	secrets := append(append([]string(nil), allSecrets...), keyLines[1])

	var seen strings.Builder // everything the gateway showed, to scan at the end
	show := func(what string, b []byte) { fmt.Fprintf(&seen, "\n== %s\n%s", what, b) }

	gw, logs := startLoggedChild(t, s)
	c := secClient(t, s)

	// Phone logins: each staff member, with their secret from each source.
	lead := c.login("lead-1", secLeadSecret)
	c.login("nurse-1", secNurseSecret)
	tech := c.login("tech-1", secTechSecret)
	admin := c.login("admin-1", secAdminSecret)
	for _, bad := range []map[string]string{
		{"staff_id": "lead-1", "secret": secNurseSecret},     // another's secret
		{"staff_id": secLeadSecret, "secret": secLeadSecret}, // the secret typed as the id
		{"staff_id": "nobody-9", "secret": secAdminSecret},
	} {
		code, body := c.do("POST", "/api/v1/sessions", "", bad)
		if code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
			t.Errorf("bad login %s: %d %s", bad["staff_id"], code, body)
		}
		show("bad login", body)
	}
	if code, body := c.do("PUT", "/api/v1/me/duty", lead, map[string]bool{"on_duty": true}); code/100 != 2 {
		t.Fatalf("duty: %d %s", code, body)
	}
	ph := c.phone("lead-1", lead)

	// MQTT: a wrong password (another client's), then a press over TLS.
	tc := tlsConfigFor(s)
	if _, err := dialBroker(t, s.brokerPort, tc, "button-102", secZ2MPass, "button-102"); err == nil {
		t.Error("the broker accepted another client's password")
	} else {
		show("mqtt login error", []byte(err.Error()))
	}
	btn, err := dialBroker(t, s.brokerPort, tc, "button-102", secButtonPass, "button-102")
	if err != nil {
		t.Fatal(err)
	}
	if err := btn.pub("zigbee2mqtt/room102/button", `{"action":"single"}`); err != nil {
		t.Fatal(err)
	}
	offer := ph.expect("offer")
	id := offer.id()
	if code, body := c.do("GET", "/api/v1/alarms/"+id, lead, nil); code != http.StatusOK {
		t.Errorf("GET the alarm: %d %s", code, body)
	} else {
		show("GET the alarm", body)
	}
	for _, verb := range []string{"accept", "presence", "complete"} {
		code, body := c.do("POST", "/api/v1/alarms/"+id+"/"+verb, lead, nil)
		if code/100 != 2 {
			t.Fatalf("%s: %d %s", verb, code, body)
		}
		show(verb, body)
	}

	// Everything a technician, an admin and a monitoring system read.
	for _, r := range []struct{ path, token string }{
		{"/status", ""}, {"/status/data", tech}, {"/status/data", admin}, {"/metrics", ""},
		{"/api/v1/me", lead}, {"/api/v1/alarms", lead},
		{"/api/v1/admin/staff/lead-1/export", admin}, {"/api/v1/admin/staff/tech-1/export", admin},
		{"/api/v1/admin/staff/nurse-1/export", admin}, {"/readyz", ""}, {"/healthz", ""},
	} {
		code, body := c.do("GET", r.path, r.token, nil)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", r.path, code, body)
		}
		show("GET "+r.path, body)
	}
	if code, body := c.do("DELETE", "/api/v1/sessions/current", tech, nil); code/100 != 2 {
		t.Errorf("logout: %d %s", code, body)
	}
	gw.stop(t)

	// The commands a technician runs with the gateway stopped.
	for _, args := range [][]string{
		{"export-person", "-config", s.path, "-staff", "lead-1"},
		{"export-person", "-config", s.path, "-staff", "nurse-1"},
		{"verify-audit", "-config", s.path},
		{"check-config", "-config", s.path},
	} {
		out, errOut, exit := runGateway(t, s.env, args...)
		if exit != 0 {
			t.Errorf("%s: exit %d: %s", args[0], exit, errOut)
		}
		show(args[0], []byte(out+errOut))
	}
	// A configuration error that names a secret key (the MQTT password is not used
	// beside the embedded broker), and a start refused for it.
	bad := writeSecSite(t, secOpts{edit: func(y string) string {
		return strings.Replace(y, "  mqtt:\n    enabled: true\n", "  mqtt:\n    enabled: true\n    password: "+secMQTTPassword+"\n", 1)
	}})
	for _, cmd := range []string{"check-config", "run"} {
		out, errOut, exit := runGateway(t, bad.env, cmd, "-config", bad.path)
		if exit != 1 || !strings.Contains(errOut+out, "drivers.mqtt.password") {
			t.Errorf("%s with drivers.mqtt.password beside the embedded broker: exit %d, %s%s", cmd, exit, out, errOut)
		}
		show(cmd+" (bad)", []byte(out+errOut))
	}

	// The audit rows, and the raw database bytes.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.dir, "vakt.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT * FROM audit")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		show("audit row", fmt.Appendf(nil, "%s", vals))
		n++
	}
	rows.Close()
	db.Close()
	if n < 5 {
		t.Errorf("only %d audit rows: logins, failed logins, the alarm and the exports should be there", n)
	}
	for _, f := range []string{"vakt.db", "vakt.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(s.dir, f)); err == nil {
			show(f, b)
		}
	}
	show("log", []byte(logs.String()))

	all := seen.String()
	for _, sec := range secrets {
		for _, part := range strings.Split(all, "\n== ")[1:] {
			what, body, _ := strings.Cut(part, "\n")
			if i := strings.Index(strings.ToLower(body), strings.ToLower(sec)); i >= 0 {
				t.Errorf("the secret %q appears in %s: …%s…", sec, what, body[max(0, i-200):min(len(body), i+len(sec)+40)])
			}
		}
	}
	if !strings.Contains(logs.String(), `"msg":"gateway ready"`) {
		t.Error("the log capture holds no start: the scan saw nothing")
	}
}

// loggedChild is the gateway binary with its whole log kept.
type loggedChild struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) add(l string) {
	s.mu.Lock()
	s.b.WriteString(l + "\n")
	s.mu.Unlock()
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLoggedChild runs `gateway run -log-level debug` on s, keeping every line of
// stdout and stderr, and returns once it logged that it is ready.
func startLoggedChild(t *testing.T, s *secSite) (*loggedChild, *syncBuf) {
	t.Helper()
	cmd := exec.Command(gatewayBinary(t), "run", "-log-level", "debug", "-config", s.path)
	cmd.Env = append(os.Environ(), s.env...)
	outPipe, _ := cmd.StdoutPipe()
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuf{}
	ready := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(outPipe)
		sc.Buffer(nil, 1<<20)
		once := false
		for sc.Scan() {
			logs.add(sc.Text())
			if !once && strings.Contains(sc.Text(), `"msg":"gateway ready"`) {
				once = true
				close(ready)
			}
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			logs.add(sc.Text())
		}
	}()
	c := &loggedChild{cmd: cmd, exited: make(chan struct{})}
	go func() { readers.Wait(); _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); <-c.exited })
	select {
	case <-ready:
	case <-c.exited:
		t.Fatalf("gateway exited during start:\n%s", logs.String())
	case <-time.After(waitLimit):
		t.Fatalf("gateway not ready within %v:\n%s", waitLimit, logs.String())
	}
	return c, logs
}

// stop ends the gateway the way systemd does (SIGTERM) and waits for it, so its
// shutdown is logged too and the database is closed.
func (c *loggedChild) stop(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(waitLimit):
		t.Fatal("gateway did not stop on SIGTERM")
	}
}
