package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// siteSpec is the load site: n Zigbee2MQTT buttons and m staff on duty spread over
// one floor of a building (about 125 m × 50 m), demo mode for secrets.
type siteSpec struct {
	Dir          string // the site's folder: site.yaml, vakt.db, site.json
	Transmitters int
	Staff        int
	APIPort      int
	BrokerPort   int
	Embedded     bool // the embedded broker on BrokerPort, else an external one there
}

type point struct {
	ID  string  `json:"id"`
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// siteJSON is the same site for other tools (the Node-RED flow's staff table).
type siteJSON struct {
	Transmitters []point `json:"transmitters"`
	Staff        []point `json:"staff"`
}

const baseLat, baseLon = 59.9139, 10.7522

// grid places i of n points on a rows×cols grid over the building's floor.
func grid(i, n, cols int) (lat, lon float64) {
	rows := (n + cols - 1) / cols
	r, c := i/cols, i%cols
	// 50 m north-south, 125 m east-west (1e-5 deg lat ≈ 1.11 m, lon ≈ 0.56 m here).
	return baseLat + 0.00045*float64(r)/float64(max(rows-1, 1)), baseLon + 0.00225*float64(c)/float64(max(cols-1, 1))
}

func txID(i int) string        { return fmt.Sprintf("tx-%d", i) }
func txAddr(i int) string      { return fmt.Sprintf("b%d/sos", i) }
func staffID(i int) string     { return fmt.Sprintf("s-%d", i) }
func sitePath(d string) string { return filepath.Join(d, "site.yaml") }
func dbPath(d string) string   { return filepath.Join(d, "vakt.db") }

// writeSite writes site.yaml (the gateway's configuration) and site.json.
func writeSite(s siteSpec) error {
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return err
	}
	s.Dir = dir
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return err
	}
	var sb strings.Builder
	url := ""
	if !s.Embedded {
		url = fmt.Sprintf("url: \"tcp://127.0.0.1:%d\", client_id: vakt-loadgen-gw, ", s.BrokerPort)
	}
	fmt.Fprintf(&sb, `# Written by cmd/loadgen: %d Zigbee2MQTT buttons, %d staff on duty (demo mode).
site: {id: loadgen, name: Load site, demo: true, lat: %f, lon: %f}
zones: [{id: floor1, name: Floor 1, floor: 1}]
roles: [nurse]
storage: {path: %q}
api: {listen: "127.0.0.1:%d"}
drivers:
  broker: {enabled: %t, listen: "127.0.0.1:%d"}
  mqtt: {enabled: true, %sbase_topic: zigbee2mqtt}
privacy: {nearest_routing: true, position_ttl: 15m}
routing: {offer_confirm: 10s}
policies:
  - name: all
    tiers: [{target: nearest, count: 1, wait: 30s}, {target: site, wait: 60s}]
transmitters:
`, s.Transmitters, s.Staff, baseLat, baseLon, dbPath(s.Dir), s.APIPort, s.Embedded, s.BrokerPort, url)
	var js siteJSON
	for i := range s.Transmitters {
		lat, lon := grid(i, s.Transmitters, 25)
		fmt.Fprintf(&sb, "  - {id: %s, kind: button, driver: zigbee2mqtt, address: %s, room: \"%d\", zone: floor1, floor: 1, lat: %.6f, lon: %.6f, actions: {emergency: emergency, reset: cancel}}\n",
			txID(i), txAddr(i), i, lat, lon)
		js.Transmitters = append(js.Transmitters, point{txID(i), lat, lon})
	}
	sb.WriteString("staff:\n")
	for i := range s.Staff {
		lat, lon := grid(i, s.Staff, 20)
		fmt.Fprintf(&sb, "  - {id: %s, name: Staff %d, roles: [nurse], zone: floor1, secret: demo, on_duty: true, availability: available, position: {lat: %.6f, lon: %.6f, floor: 1}}\n",
			staffID(i), i, lat, lon)
		js.Staff = append(js.Staff, point{staffID(i), lat, lon})
	}
	if err := os.WriteFile(sitePath(s.Dir), []byte(sb.String()), 0o600); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(js, "", " ")
	return os.WriteFile(filepath.Join(s.Dir, "site.json"), b, 0o644)
}
