package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestSecurityStartupRefusal (S1, S4): outside demo mode `gateway run` refuses to
// start with each empty or sample secret, and with a secret file others can read;
// the message names the key (and its line), or the file with "chmod 600", and never
// a secret's value. Every case is one change to secSite, which starts as it is
// (TestSecurityBrokerACL and the others run it).
func TestSecurityStartupRefusal(t *testing.T) {
	repl := func(old, new string) func(string) string {
		return func(s string) string {
			if !strings.Contains(s, old) {
				t.Fatalf("secSite has no %q", old)
			}
			return strings.Replace(s, old, new, 1)
		}
	}
	external := func(password string) func(string) string {
		return func(s string) string {
			s = repl("  broker:\n    enabled: true\n", "  broker:\n    enabled: false\n")(s)
			return repl("  mqtt:\n    enabled: true\n", "  mqtt:\n    enabled: true\n    url: tcp://127.0.0.1:1\n    username: vakt-gateway\n    password: "+password+"\n")(s)
		}
	}
	cases := []struct {
		name string
		edit func(string) string
		env  []string                       // added to secSite's environment (later wins)
		file func(t *testing.T, dir string) // changes a file beside the configuration
		want []string                       // all in stderr
	}{
		{name: "staff secret sample inline", edit: repl(`secret: "`+secLeadSecret+`"`, "secret: demo"),
			want: []string{"staff[0].secret: a sample secret", "(line 8)"}},
		{name: "staff secret sample changeme", edit: repl(`secret: "`+secAdminSecret+`"`, "secret: changeme"),
			want: []string{"staff[3].secret: a sample secret", "(line 11)"}},
		{name: "staff secret empty", edit: repl(`secret: "`+secLeadSecret+`"`, `secret: ""`),
			want: []string{"staff[0].secret: required"}},
		{name: "staff secret too short", edit: repl(`secret: "`+secLeadSecret+`"`, `secret: "Xy7-q"`),
			want: []string{"staff[0].secret: the secret", "shorter than 8"}},
		{name: "staff secret sample from the environment", env: []string{secTechEnv + "=password"},
			want: []string{"staff[2].secret: a sample secret (read from the environment variable " + secTechEnv + ")"}},
		{name: "staff secret environment unset", env: []string{secTechEnv + "="},
			want: []string{"staff[2].secret", "environment variable " + secTechEnv + " is empty"}},
		{name: "staff secret sample in its file", file: writeFile("nurse-secret", "changeme\n", 0o600),
			want: []string{"staff[1].secret: a sample secret (read from the file "}},
		{name: "staff secret file 0644", file: chmodFile("nurse-secret", 0o644),
			want: []string{"staff[1].secret", "nurse-secret has mode 0644", "chmod 600"}},
		{name: "staff secret_hash printed in the examples", edit: repl(`secret: "`+secLeadSecret+`"`, "secret_hash: $2a$12$aGbG21dLF87ds.Vuxcqiku73h/Je.EbPwGrzOjutOiAZqgw5a8fLi"),
			want: []string{"staff[0].secret_hash: this hash is printed in Vakt's documentation"}},
		{name: "broker client password sample", edit: repl(`password: "`+secZ2MPass+`"`, "password: secret"),
			want: []string{"drivers.broker.clients[0].password: a sample secret"}},
		{name: "broker client password empty", edit: repl(`        password: "`+secButtonPass+`"`+"\n", ""),
			want: []string{"drivers.broker.clients[1].password: required"}},
		{name: "broker without clients", edit: func(s string) string {
			i, j := strings.Index(s, "    clients:\n"), strings.Index(s, "  mqtt:\n")
			return s[:i] + s[j:]
		}, want: []string{"drivers.broker.clients: outside demo mode the embedded broker needs clients"}},
		{name: "mqtt password sample", edit: external("passw0rd"),
			want: []string{"drivers.mqtt.password: a sample secret"}},
		{name: "mqtt password empty", edit: external(`""`),
			want: []string{"drivers.mqtt.password: required when username is set"}},
		{name: "cloud token sample", file: writeFile("cloud-token", "demo\n", 0o600),
			want: []string{"cloud.token_file: a sample secret"}},
		{name: "cloud token file missing from the configuration", edit: repl("  token_file: cloud-token\n", ""),
			want: []string{"cloud.token_file: required when cloud.enabled"}},
		{name: "cloud token file 0644", file: chmodFile("cloud-token", 0o644),
			want: []string{"cloud-token has mode 0644", "chmod 600"}},
		{name: "cloud token file empty", file: writeFile("cloud-token", "\n", 0o600),
			want: []string{"cloud-token is empty"}},
		{name: "arc key file 0644", file: chmodFile("arc-key", 0o644),
			want: []string{"arc.key_file: the key file is readable by others (mode 0644): chmod 600 it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := writeSecSite(t, secOpts{edit: c.edit})
			if c.file != nil {
				c.file(t, s.dir)
			}
			_, stderr, exit := runGateway(t, append(s.env, c.env...), "run", "-config", s.path)
			if exit != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", exit, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr)
				}
			}
			for _, v := range allSecrets {
				if strings.Contains(stderr, v) {
					t.Errorf("stderr shows the secret %q:\n%s", v, stderr)
				}
			}
		})
	}
}

// TestSecurityStartupRefusalExamples (S1): the secrets shipped in config/examples
// do not start a real site. The demo with site.demo turned off is refused naming
// every staff member's sample secret and the broker without clients; the site
// example naming both printed hashes.
func TestSecurityStartupRefusalExamples(t *testing.T) {
	demo, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	site, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	demoPath := filepath.Join(dir, "demo.yaml")
	body := strings.Replace(string(demo), "  demo: true\n", "  demo: false\n", 1)
	if err := os.WriteFile(demoPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, exit := runGateway(t, nil, "run", "-config", demoPath)
	if exit != 1 {
		t.Fatalf("the demo with site.demo: false: exit %d; stderr %q", exit, stderr)
	}
	n := strings.Count(string(demo), "    secret: demo\n")
	if n < 2 {
		t.Fatalf("demo.yaml has %d sample staff secrets; the test expects them", n)
	}
	for i := range n {
		if w := "staff[" + itoa(i) + "].secret: a sample secret"; !strings.Contains(stderr, w) {
			t.Errorf("the demo with site.demo: false: stderr does not say %q:\n%s", w, stderr)
		}
	}
	if w := "drivers.broker.clients: outside demo mode"; !strings.Contains(stderr, w) {
		t.Errorf("stderr does not say %q:\n%s", w, stderr)
	}

	sitePath := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(sitePath, site, 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, exit = runGateway(t, []string{"VAKT_TECH_SECRET=Tq9-real-tech-x", "CREDENTIALS_DIRECTORY=" + dir}, "run", "-config", sitePath)
	for _, w := range []string{"staff[0].secret_hash: this hash is printed", "staff[1].secret_hash: this hash is printed"} {
		if exit != 1 || !strings.Contains(stderr, w) {
			t.Errorf("site.yaml: exit %d, stderr does not say %q:\n%s", exit, w, stderr)
		}
	}
}

// TestSecurityCheckConfigSampleHash (S1): a secret_hash of a sample secret is found
// by `gateway check-config`, not at every start: comparing each hash with every
// sample costs over a second per staff member (config/hashes.go, P4).
func TestSecurityCheckConfigSampleHash(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("changeme"), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	s := writeSecSite(t, secOpts{edit: func(s string) string {
		return strings.Replace(s, `secret: "`+secLeadSecret+`"`, "secret_hash: "+string(h), 1)
	}})
	out, stderr, exit := runGateway(t, s.env, "check-config", "-config", s.path)
	if exit != 1 || !strings.Contains(out+stderr, "staff[0].secret_hash") {
		t.Fatalf("check-config: exit %d, stdout %q, stderr %q", exit, out, stderr)
	}
}

func writeFile(name, body string, mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func chmodFile(name string, mode os.FileMode) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
