package main

import (
	"context"
	"os"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
)

// ingest submits ev to the running gateway's engine and waits for its commit.
func ingest(t *testing.T, m *Main, ev vakt.Event) {
	t.Helper()
	errc := make(chan error, 1)
	if err := m.Engine.Ingest(ev, func(err error) { errc <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestCloudBacklogCap: with the cloud away the outbox grows past its cap. Health
// samples are compacted to the newest per transmitter; every alarm and audit entry
// stays; the technician is offered the "gateway-sync-backlog" technical alarm; once
// the cloud is back and the backlog drained, the alarm closes.
func TestCloudBacklogCap(t *testing.T) {
	cl := &cloud{t: t, port: freePort(t), dbPath: t.TempDir() + "/cloud.db"} // not started: the cloud is away
	t.Cleanup(cl.stop)
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "  backlog_max_entries: 14\n")
	noLinger(t, cfg) // each check-in its own commit, so each battery level is a sample
	m, c := startGatewayLog(t, cfg, &lockedBuffer{})
	ctx := context.Background()

	for i := range 30 { // a transmitter reporting a falling battery: 30 health samples
		bat := 100 - i
		ingest(t, m, vakt.Event{Transmitter: "room-101-sos", Kind: vakt.EventCheckIn, Battery: &bat, Source: "test"})
	}
	for _, tx := range []vakt.TransmitterID{"room-201-sos", "room-202-fall", "room-102-sos"} {
		ingest(t, m, vakt.Event{Transmitter: tx, Kind: vakt.EventEmergency, Source: "test"})
	}
	before, err := m.DB.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[int64]string{}
	health := 0
	for _, e := range before {
		if e.Kind == vakt.OutboxKindHealth {
			health++
		} else {
			kept[e.Seq] = e.Kind
		}
	}
	// The gateway checks its backlog on its own too: it may have compacted the
	// samples already (then fewer than 30 are left); the others must all be there.
	if len(kept) < 12 { // the warning level is 80 % of 14
		t.Fatalf("setup: %d health and %d other entries; want the others alone over the cap", health, len(kept))
	}

	m.Cloud.CheckBacklog()
	technicianSees(t, c, "gateway-sync-backlog")
	after, err := m.DB.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range after {
		delete(kept, e.Seq)
	}
	if len(kept) > 0 {
		t.Errorf("entries other than health samples were dropped: %v", kept)
	}
	st, err := m.DB.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.HealthEntries != st.HealthTransmitters {
		t.Errorf("%d health entries for %d transmitters after compaction, want one each", st.HealthEntries, st.HealthTransmitters)
	}

	cl.start() // the cloud is back
	m.Cloud.Retry()
	eventually(t, "the backlog drained", func() bool {
		s, err := m.Cloud.Stats(ctx)
		return err == nil && s.Backlog < 10 && !s.Upload.Outage
	})
	m.Cloud.CheckBacklog()
	eventually(t, "the backlog alarm closed", func() bool { return !containsAlarm(openAlarms(t, c), "gateway-sync-backlog") })
}

// TestCloudBacklogOnMetrics: with cloud sync on, /metrics shows the backlog.
func TestCloudBacklogOnMetrics(t *testing.T) {
	cl := &cloud{t: t, port: freePort(t), dbPath: t.TempDir() + "/cloud.db"} // away
	brokerPort, apiPort := freePort(t), freePort(t)
	m, c := startGatewayLog(t, cloudDemoConfig(t, apiPort, brokerPort, cl.url(), ""), &lockedBuffer{})
	ingest(t, m, vakt.Event{Transmitter: "room-201-sos", Kind: vakt.EventEmergency, Source: "test"})
	code, body := c.do("GET", "/metrics", "", nil)
	if code != 200 || !strings.Contains(string(body), "vakt_sync_backlog ") || strings.Contains(string(body), "vakt_sync_backlog 0\n") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
}

// noLinger sets storage.checkin_linger to 0 in the configuration file at path.
func noLinger(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "\nstorage:\n", "\nstorage:\n  checkin_linger: 0s\n", 1)
	if s == string(b) {
		t.Fatal("the configuration has no storage section")
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
