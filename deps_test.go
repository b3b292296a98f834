package vakt_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces the layout of architecture.md with `go list`, as
// tailscale's deptest does: each outside dependency is imported by exactly one
// package, the root package uses only the standard library, and routing does no I/O.
func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,Standard", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/vakt/vakt"
	// dependency → the one package of the gateway allowed to import it; the reference
	// cloud (cmd/cloudsim) is another program and keeps its SQLite in sync/cloudsim/sqlitestore.
	owner := map[string]string{
		"github.com/eclipse/paho.mqtt.golang": mod + "/drivers/mqtt",
		"modernc.org/sqlite":                  mod + "/store",
		"github.com/tarm/serial":              mod + "/drivers/serial",
		"github.com/kellydunn/golang-geo":     mod + "/routing",
		"github.com/mochi-mqtt/server/v2":     mod + "/broker",
		"github.com/gorilla/websocket":        mod + "/api",
		"github.com/goccy/go-yaml":            mod + "/config",
		"github.com/prometheus/client_golang": mod + "/metrics",
		"golang.org/x/crypto/bcrypt":          "", // checked below: api, cmd/gateway and config
	}
	noIO := map[string]bool{"net": true, "net/http": true, "os": true, "database/sql": true, "os/exec": true}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, imp := range p.Imports {
			for dep, allowed := range owner {
				// cmd/loadgen is a separate tool that drives the gateway from outside: phones (gorilla) and reading the result file (modernc sqlite).
				if p.ImportPath == mod+"/cmd/loadgen" && (dep == "github.com/gorilla/websocket" || dep == "modernc.org/sqlite") {
					continue
				}
				if imp == dep || strings.HasPrefix(imp, dep+"/") {
					if dep == "golang.org/x/crypto/bcrypt" {
						if p.ImportPath != mod+"/api" && p.ImportPath != mod+"/cmd/gateway" && p.ImportPath != mod+"/config" {
							t.Errorf("%s imports %s; only api, cmd/gateway and config (sample-secret hashes) may", p.ImportPath, imp)
						}
						continue
					}
					if p.ImportPath != allowed && !(dep == "modernc.org/sqlite" && p.ImportPath == mod+"/sync/cloudsim/sqlitestore") {
						t.Errorf("%s imports %s; only %s may", p.ImportPath, imp, allowed)
					}
				}
			}
			if p.ImportPath == mod && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("root package imports %s; it must use the standard library only", imp)
			}
			if p.ImportPath == mod+"/routing" && noIO[imp] {
				t.Errorf("routing imports %s; routing is pure logic", imp)
			}
			// Drivers are plug-ins: the MQTT transport knows the dialect interface, never
			// a dialect; the registry and the dialects know neither transport nor config.
			if p.ImportPath == mod+"/drivers/mqtt" && strings.HasPrefix(imp, mod+"/drivers/") {
				t.Errorf("drivers/mqtt imports %s; it takes dialects as drivers.Dialect", imp)
			}
			if p.ImportPath == mod+"/drivers" && imp != mod && strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("drivers imports %s; the registry uses the standard library and the root package only", imp)
			}
			if strings.HasPrefix(p.ImportPath, mod+"/drivers/") && p.ImportPath != mod+"/drivers/all" &&
				(imp == mod+"/config" || imp == mod+"/engine" || imp == mod+"/drivers/mqtt" && p.ImportPath != mod+"/drivers/mqtt") {
				t.Errorf("%s imports %s; a driver owns its options and knows only the registry", p.ImportPath, imp)
			}
			if p.ImportPath == mod+"/engine" && strings.HasPrefix(imp, mod+"/") &&
				imp != mod+"/routing" {
				t.Errorf("engine imports %s; it knows only the root package's interfaces and routing's decisions", imp)
			}
		}
	}
}
