package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// TestNoPositionFields walks every wire type: positions never leave the gateway (G1),
// so no field may look like a coordinate, a floor or a distance.
func TestNoPositionFields(t *testing.T) {
	banned := []string{"lat", "lon", "lng", "position", "floor", "distance", "accuracy", "coord", "geo"}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		// The bodies live in the root package (aliased here): walk both.
		if ty.Kind() != reflect.Struct || seen[ty] || (ty.PkgPath() != reflect.TypeFor[Envelope]().PkgPath() &&
			ty.PkgPath() != reflect.TypeFor[vakt.OutboxAlarm]().PkgPath()) {
			return
		}
		seen[ty] = true
		for f := range ty.Fields() {
			name := strings.ToLower(f.Name + " " + f.Tag.Get("json"))
			for _, b := range banned {
				if strings.Contains(name, b) {
					t.Errorf("%s.%s looks like position data (%q)", path, f.Name, b)
				}
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	for _, v := range []any{Envelope{}, Ack{}, Error{}, State{}, Alarm{}, Visit{}, EPR{}, Health{}, Audit{}, DirectoryPage{}} {
		walk(reflect.TypeOf(v), reflect.TypeOf(v).Name())
	}
	if len(seen) < 12 {
		t.Fatalf("walked only %d types", len(seen))
	}
}

func TestBatchRoundTrip(t *testing.T) {
	body, _ := json.Marshal(Alarm{ID: "a-1", Transition: "alarm.raised", Transmitter: "t-1", Kind: "call", Priority: 3,
		State: "raised", RaisedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)})
	in := []Envelope{
		{Seq: 1, Kind: KindAlarm, V: 1, At: time.Unix(12, 0).UTC(), Boot: "b1", Body: body},
		{Seq: 3, Kind: KindAlarm, V: 1, At: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), ClockSynced: true, Boot: "b1", SinceBootMS: 40, Body: body},
	}
	var buf bytes.Buffer
	if err := AppendBatch(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := DecodeBatch(&buf, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestDecodeBatchRefuses(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       "{nope\n",
		"seq zero":       `{"seq":0,"kind":"alarm","v":1,"body":{}}`,
		"no kind":        `{"seq":1,"v":1,"body":{}}`,
		"body not obj":   `{"seq":1,"kind":"alarm","v":1,"body":[1]}`,
		"seq decreasing": `{"seq":2,"kind":"alarm","v":1,"body":{}}` + "\n" + `{"seq":2,"kind":"alarm","v":1,"body":{}}`,
	} {
		if _, err := DecodeBatch(strings.NewReader(body), false); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := DecodeBatch(strings.NewReader("plain"), true); !errors.Is(err, ErrMalformed) {
		t.Errorf("not gzip: err = %v", err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"seq":1,"kind":"alarm","v":1,"at":"2026-12-01T10:00:00Z","boot":"b","body":{"id":"a-1"}}` + "\n"))
	f.Add([]byte("\n\n{\"seq\":9,\"kind\":\"x\",\"v\":2,\"body\":{}}\n{\"seq\":8}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := DecodeBatch(bytes.NewReader(b), false)
		if err != nil {
			return
		}
		for i := 1; i < len(out); i++ {
			if out[i].Seq <= out[i-1].Seq {
				t.Fatalf("accepted non-increasing seqs")
			}
		}
	})
}
