package cloudsim_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/cloudsim/sqlitestore"
	"github.com/vakt/vakt/sync/conformance"
	"github.com/vakt/vakt/sync/wire"
)

// TestConformance runs the contract's conformance suite against the reference
// cloud with a real SQLite file, twice on the same database: the suite must be
// repeatable against a cloud that already holds its earlier entries.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	db, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sim := cloudsim.New(db, cloudsim.Options{MaxBody: 64 << 10,
		Tokens: map[string]string{"tok-conf": "conf-gw", "tok-other": "other-gw"}})
	ts := httptest.NewServer(sim.Handler())
	defer ts.Close()
	target := conformance.Target{URL: ts.URL, Gateway: "conf-gw", Token: "tok-conf", OtherToken: "tok-other", MaxBody: 64 << 10,
		PutStaff:       func(ctx context.Context, s wire.Staff) error { return db.PutStaff(ctx, "conf-gw", s) },
		RemoveStaff:    func(ctx context.Context, id string) error { return db.RemoveStaff(ctx, "conf-gw", id) },
		RequestErasure: func(ctx context.Context, id string) (string, error) { return db.RequestErasure(ctx, "conf-gw", id) }}
	for range 2 {
		conformance.RunConformance(t, target)
	}
	// UNIQUE(gateway_id, seq): every acknowledged seq is one row.
	st, _ := db.State(ctx, "conf-gw")
	n, _ := db.Count(ctx, "conf-gw")
	if n != st.Acked {
		t.Fatalf("%d rows for acked seq %d: something was stored twice or skipped", n, st.Acked)
	}
}
