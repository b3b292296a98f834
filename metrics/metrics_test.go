package metrics_test

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/metrics"
	"github.com/vakt/vakt/routing"
	"github.com/vakt/vakt/status"
	"github.com/vakt/vakt/store"
)

type noPhones struct{}

func (noPhones) Notify(vakt.StaffID, vakt.Notice) {}

// documented reads the metric names from docs/metrics.md's table; absent marks those
// documented as absent until something is wired.
func documented(t *testing.T) (names []string, absent map[string]bool) {
	t.Helper()
	f, err := os.Open("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	absent = map[string]bool{}
	row := regexp.MustCompile("^\\| `(vakt_[a-z_]+)` \\|")
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			names = append(names, m[1])
			if strings.Contains(sc.Text(), "Absent until") {
				absent[m[1]] = true
			}
		}
	}
	if len(names) < 10 {
		t.Fatalf("docs/metrics.md lists only %d metrics", len(names))
	}
	return names, absent
}

// TestEveryDocumentedMetricServed: a real engine commits a press through the metrics'
// store wrapper and observer; /metrics parses with the Prometheus text parser and has
// every metric docs/metrics.md lists, with the press counted — and nothing for sync,
// which is not wired.
func TestEveryDocumentedMetricServed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "vakt.db")
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	router, err := routing.New(routing.Config{OfferConfirm: 10 * time.Second, Policies: []routing.Policy{{Name: "care",
		Tiers: []routing.Tier{{Target: routing.TargetSite, Wait: time.Minute}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var eng *engine.Engine
	m := metrics.New(metrics.Options{
		Engine: engineFunc{func() *engine.Engine { return eng }},
		DBPath: path,
		Drivers: func() status.Drivers {
			return status.Drivers{MQTT: &status.MQTTLink{Connected: true, Received: 3},
				Serial: []status.SerialPort{{Name: "espa-1", Open: true, BadBCC: 2}},
				Broker: &status.EmbeddedMQTT{Clients: []string{"zigbee2mqtt"}}}
		},
	})
	eng, err = engine.New(ctx, engine.Options{Store: m.Store(db), Router: router, Notifier: noPhones{},
		Observers: []vakt.Observer{m}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Transmitters: []vakt.Transmitter{{ID: "room-101"}},
		Directory:    []vakt.Staff{{ID: "n1", Roles: []string{"nurse"}}},
		InitialStaff: []vakt.StaffState{{Staff: "n1", OnDuty: true, Availability: vakt.Available}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Run(ctx) }()
	done := make(chan error, 1)
	if err := eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "test"}, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for ch := eng.ViewChanged(); len(eng.View().Alarms) == 0; ch = eng.ViewChanged() {
		<-ch
	}

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	names, absent := documented(t)
	for _, n := range names {
		_, ok := fams[n]
		if absent[n] && ok {
			t.Errorf("%s is served although docs/metrics.md says it is absent until wired", n)
		}
		if !absent[n] && !ok {
			t.Errorf("%s is documented in docs/metrics.md but not served", n)
		}
	}
	for n := range fams {
		if strings.HasPrefix(n, "vakt_") && !contains(names, n) {
			t.Errorf("%s is served but not documented in docs/metrics.md", n)
		}
	}
	if h := fams["vakt_trigger_offer_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() != 1 {
		t.Errorf("trigger → offer observed %d times, want 1 (one press, one first offer)", h.GetSampleCount())
	}
	if h := fams["vakt_commit_seconds"].GetMetric()[0].GetHistogram(); h.GetSampleCount() < 1 {
		t.Error("no commit measured")
	}
	found := false
	for _, mt := range fams["vakt_alarms_open"].GetMetric() {
		var kind, state string
		for _, l := range mt.GetLabel() {
			switch l.GetName() {
			case "kind":
				kind = l.GetValue()
			case "state":
				state = l.GetValue()
			}
		}
		if kind == "call" && state == "offered" && mt.GetGauge().GetValue() == 1 {
			found = true
		}
	}
	if !found {
		t.Error(`vakt_alarms_open{kind="call",state="offered"} is not 1`)
	}
	if v := fams["vakt_db_size_bytes"].GetMetric()[0].GetGauge().GetValue(); v <= 0 {
		t.Errorf("db size %v", v)
	}
}

type engineFunc struct{ f func() *engine.Engine }

func (e engineFunc) Stats() engine.Stats { return e.f().Stats() }
func (e engineFunc) QueueDepth() int     { return e.f().QueueDepth() }
func (e engineFunc) View() *engine.View  { return e.f().View() }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
