package vakt_test

import (
	"strings"
	"testing"

	"github.com/vakt/vakt/internal/deptest"
)

const mod = "github.com/vakt/vakt"

// TestImportRules enforces the layout of architecture.md for the linux/arm64 build
// (internal/deptest): each outside dependency is imported by exactly one package of
// the gateway; tarm/serial by drivers/serial alone, tests included.
func TestImportRules(t *testing.T) {
	// dependency → the one package of the gateway allowed to import it; the reference
	// cloud (cmd/cloudsim) is another program and keeps its SQLite in sync/cloudsim/sqlitestore.
	owner := map[string][]string{
		"github.com/eclipse/paho.mqtt.golang": {mod + "/drivers/mqtt"},
		"modernc.org/sqlite":                  {mod + "/store", mod + "/sync/cloudsim/sqlitestore"},
		"github.com/tarm/serial":              {mod + "/drivers/serial"},
		"github.com/kellydunn/golang-geo":     {mod + "/routing"},
		"github.com/mochi-mqtt/server/v2":     {mod + "/broker"},
		"github.com/gorilla/websocket":        {mod + "/api"},
		"github.com/goccy/go-yaml":            {mod + "/config"},
		"github.com/prometheus/client_golang": {mod + "/metrics"},
		// sample-secret hashes (config), logins (api), the hash command (cmd/gateway)
		"golang.org/x/crypto/bcrypt": {mod + "/api", mod + "/cmd/gateway", mod + "/config"},
	}
	check := func(imps map[string][]string, only map[string]bool) {
		for pkg, list := range imps {
			for _, imp := range list {
				for dep, allowed := range owner {
					// cmd/loadgen is a separate tool that drives the gateway from outside:
					// phones (gorilla) and reading the result file (modernc sqlite).
					if pkg == mod+"/cmd/loadgen" && (dep == "github.com/gorilla/websocket" || dep == "modernc.org/sqlite") {
						continue
					}
					if (only != nil && !only[dep]) || (imp != dep && !strings.HasPrefix(imp, dep+"/")) {
						continue
					}
					if !contains(allowed, pkg) {
						t.Errorf("%s imports %s; only %s may", pkg, imp, strings.Join(allowed, ", "))
					}
				}
			}
		}
	}
	check(deptest.Importers(t, "./...", false), nil)
	// The serial library stays behind drivers/serial even in tests (they drive a pty
	// through drivers/serial, never tarm/serial directly).
	check(deptest.Importers(t, "./...", true), map[string]bool{"github.com/tarm/serial": true})
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestRootStandardLibraryOnly: the root package (the shared types and interfaces)
// reaches nothing outside the standard library.
func TestRootStandardLibraryOnly(t *testing.T) {
	deptest.Check(t, mod, deptest.Rule{Allow: []string{mod}})
}

// golangGeo is a documented exception: routing uses one function of golang-geo, and
// that package also holds SQL mappers, so it links database/sql, net, net/http and
// the lib/pq and mymysql drivers (registered by init) into the gateway binary.
// Reported in issue 7; replacing it with routing's own haversine removes the
// boundary (the check then fails until this line is deleted).
const golangGeo = "github.com/kellydunn/golang-geo"

// TestRoutingIsPureLogic: routing does no I/O, directly or through a library.
func TestRoutingIsPureLogic(t *testing.T) {
	deptest.Check(t, mod+"/routing", deptest.Rule{
		Allow:    []string{mod, mod + "/routing", golangGeo},
		Deny:     []string{"net", "net/http", "os/exec", "database/sql"},
		Boundary: []string{golangGeo},
	})
}

// TestEngineKnowsOnlyInterfaces: the engine reaches the root package's interfaces and
// routing's decisions, never a concrete store, driver, API or broker.
func TestEngineKnowsOnlyInterfaces(t *testing.T) {
	deptest.Check(t, mod+"/engine", deptest.Rule{
		Allow:    []string{mod, mod + "/engine", mod + "/routing", golangGeo},
		Deny:     []string{"database/sql", "net/http"},
		Boundary: []string{golangGeo},
	})
}

// TestDriversArePlugIns: the MQTT transport knows the dialect interface, never a
// dialect; the registry knows only the root package; a driver owns its options and
// knows neither config, the engine nor the MQTT transport.
func TestDriversArePlugIns(t *testing.T) {
	deptest.Check(t, mod+"/drivers", deptest.Rule{Allow: []string{mod, mod + "/drivers"}})
	for pkg, imps := range deptest.Importers(t, "./drivers/...", false) {
		for _, imp := range imps {
			switch {
			case pkg == mod+"/drivers/mqtt" && strings.HasPrefix(imp, mod+"/drivers/"):
				t.Errorf("drivers/mqtt imports %s; it takes dialects as drivers.Dialect", imp)
			case pkg != mod+"/drivers/all" && pkg != mod+"/drivers/mqtt" &&
				(imp == mod+"/config" || imp == mod+"/engine" || imp == mod+"/drivers/mqtt"):
				t.Errorf("%s imports %s; a driver owns its options and knows only the registry", pkg, imp)
			}
		}
	}
}
