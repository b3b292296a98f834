// Package conformance checks a cloud against docs/sync-protocol.md, at the level of
// HTTP requests and bytes, the way litestream's RunWithReplicaClient checks every
// replica client. The reference cloud runs it in its tests; anyone can run it against
// another implementation:
//
//	func TestOurCloud(t *testing.T) {
//		conformance.RunConformance(t, conformance.Target{URL: "https://staging.example/vakt",
//			Gateway: "conformance-" + strconv.FormatInt(time.Now().Unix(), 10), Token: os.Getenv("TOKEN")})
//	}
//
// It only adds entries under Target.Gateway (use an id no real site has) and starts
// from whatever that gateway's acknowledged seq is, so it can run again.
package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt/sync/wire"
)

// Target is the cloud under test.
type Target struct {
	URL     string // base URL, without the /v1 paths
	Gateway string
	Token   string
	// OtherToken, if set, is a valid token of another gateway: it must get 403.
	OtherToken string
	Client     *http.Client // default http.DefaultClient
	// MaxBody, if > 0, is the cloud's upload limit: a larger body must get 413.
	MaxBody int64
	// Directory hooks, optional: the contract has no write side for the directory, so
	// the suite edits it through these to check that changes come down. Without them
	// only the feed's shape and cursor rules are checked.
	PutStaff       func(ctx context.Context, s wire.Staff) error
	RemoveStaff    func(ctx context.Context, id string) error
	RequestErasure func(ctx context.Context, id string) (string, error)
}

type suite struct {
	t *testing.T
	Target
}

// RunConformance runs every check as a subtest of t.
func RunConformance(t *testing.T, target Target) {
	if target.Client == nil {
		target.Client = http.DefaultClient
	}
	target.URL = strings.TrimSuffix(target.URL, "/")
	s := &suite{t: t, Target: target}
	t.Run("Auth", s.auth)
	t.Run("State", s.state)
	t.Run("Upload", s.upload)
	t.Run("Repeats", s.repeats)
	t.Run("Gap", s.gap)
	t.Run("Conflict", s.conflict)
	t.Run("Malformed", s.malformed)
	t.Run("UnknownKind", s.unknownKind)
	t.Run("AuditHead", s.auditHead)
	if target.MaxBody > 0 {
		t.Run("TooLarge", s.tooLarge)
	}
	t.Run("Directory", s.directory)
}

func (s *suite) path(p string) string {
	return s.URL + strings.Replace(p, "{gateway}", url.PathEscape(s.Gateway), 1)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (s *suite) do(t *testing.T, method, url, token string, hdr map[string]string, body []byte) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set(wire.HeaderProtocol, strconv.Itoa(wire.Protocol))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, url, err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("answer %d is not the contract's JSON: %v: %s", a.status, err, a.body)
	}
	return v
}

func (s *suite) expectError(t *testing.T, a answer, status int, code string) wire.Error {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d (%s), want %d %s", a.status, a.body, status, code)
	}
	e := decode[wire.Error](t, a)
	if e.Code != code {
		t.Errorf("error code %q, want %q", e.Code, code)
	}
	if e.Message == "" {
		t.Errorf("error without a message")
	}
	return e
}

func (s *suite) getState(t *testing.T) wire.State {
	t.Helper()
	a := s.do(t, http.MethodGet, s.path(wire.PathState), s.Token, nil, nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET state: %d %s", a.status, a.body)
	}
	return decode[wire.State](t, a)
}

// entry makes a valid envelope; salt changes its content.
func entry(seq int64, kind, salt string) wire.Envelope {
	var body any = map[string]any{"id": "a-" + strconv.FormatInt(seq, 10), "salt": salt}
	if kind == wire.KindAudit {
		body = wire.Audit{Seq: seq, At: "2026-12-01T10:00:00Z", Actor: "system", Action: "conformance." + salt,
			Subject: "alarm:a-1", Prev: "", Hash: fmt.Sprintf("%064x", seq)}
	}
	b, _ := json.Marshal(body)
	return wire.Envelope{Seq: seq, Kind: kind, V: 1, At: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), ClockSynced: true, Boot: "conformance", Body: b}
}

func batch(after int64, n int, kind, salt string) []wire.Envelope {
	out := make([]wire.Envelope, n)
	for i := range out {
		out[i] = entry(after+int64(i)+1, kind, salt)
	}
	return out
}

func gz(t *testing.T, es []wire.Envelope) []byte {
	var buf bytes.Buffer
	if err := wire.AppendBatch(&buf, es); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (s *suite) post(t *testing.T, after int64, body []byte, encoding string) answer {
	hdr := map[string]string{"Content-Type": wire.ContentType, wire.HeaderAfter: strconv.FormatInt(after, 10)}
	if encoding != "" {
		hdr["Content-Encoding"] = encoding
	}
	return s.do(t, http.MethodPost, s.path(wire.PathEntries), s.Token, hdr, body)
}

// send uploads es after `after` until all are acknowledged (a cloud may take a
// prefix), requiring progress on every answer, and returns the last ack.
func (s *suite) send(t *testing.T, after int64, es []wire.Envelope) wire.Ack {
	t.Helper()
	last := es[len(es)-1].Seq
	for range len(es) + 1 {
		a := s.post(t, after, gz(t, es), "gzip")
		if a.status != http.StatusOK {
			t.Fatalf("upload after %d: %d %s", after, a.status, a.body)
		}
		ack := decode[wire.Ack](t, a)
		if ack.Acked < after || ack.Acked > last {
			t.Fatalf("acked %d for a batch after %d up to %d", ack.Acked, after, last)
		}
		if ack.Acked == last {
			return ack
		}
		if ack.Acked == after {
			t.Fatalf("200 without progress after %d", after)
		}
		for len(es) > 0 && es[0].Seq <= ack.Acked {
			es = es[1:]
		}
		after = ack.Acked
	}
	t.Fatal("never fully acknowledged")
	return wire.Ack{}
}

func (s *suite) auth(t *testing.T) {
	body := gz(t, batch(0, 1, wire.KindAlarm, "auth"))
	hdr := map[string]string{"Content-Encoding": "gzip", wire.HeaderAfter: "0"}
	s.expectError(t, s.do(t, http.MethodPost, s.path(wire.PathEntries), "", hdr, body), http.StatusUnauthorized, wire.CodeUnauthorized)
	s.expectError(t, s.do(t, http.MethodPost, s.path(wire.PathEntries), "not-"+s.Token, hdr, body), http.StatusUnauthorized, wire.CodeUnauthorized)
	s.expectError(t, s.do(t, http.MethodGet, s.path(wire.PathState), "", nil, nil), http.StatusUnauthorized, wire.CodeUnauthorized)
	s.expectError(t, s.do(t, http.MethodGet, s.path(wire.PathDirectory), "", nil, nil), http.StatusUnauthorized, wire.CodeUnauthorized)
	if s.OtherToken != "" {
		s.expectError(t, s.do(t, http.MethodPost, s.path(wire.PathEntries), s.OtherToken, hdr, body), http.StatusForbidden, wire.CodeForbidden)
		s.expectError(t, s.do(t, http.MethodGet, s.path(wire.PathState), s.OtherToken, nil, nil), http.StatusForbidden, wire.CodeForbidden)
	}
}

func (s *suite) state(t *testing.T) {
	st := s.getState(t)
	if st.Protocol != wire.Protocol || st.Acked < 0 {
		t.Fatalf("state %+v", st)
	}
}

func (s *suite) upload(t *testing.T) {
	acked := s.getState(t).Acked
	ack := s.send(t, acked, batch(acked, 50, wire.KindAlarm, "upload"))
	if ack.Acked != acked+50 {
		t.Fatalf("acked %d, want %d", ack.Acked, acked+50)
	}
	if st := s.getState(t); st.Acked != acked+50 {
		t.Fatalf("state acked %d after the ack of %d", st.Acked, acked+50)
	}
	// An uncompressed body is accepted too.
	a := s.post(t, acked+50, gz0(batch(acked+50, 3, wire.KindVisit, "identity")), "")
	if a.status != http.StatusOK || decode[wire.Ack](t, a).Acked == acked+50 {
		t.Fatalf("uncompressed batch: %d %s", a.status, a.body)
	}
	s.send(t, s.getState(t).Acked, batch(s.getState(t).Acked, 1, wire.KindVisit, "after-identity"))
}

func gz0(es []wire.Envelope) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range es {
		enc.Encode(&es[i])
	}
	return buf.Bytes()
}

func (s *suite) repeats(t *testing.T) {
	acked := s.getState(t).Acked
	es := batch(acked, 10, wire.KindHealth, "repeat")
	s.send(t, acked, es)
	// The same batch again (its ack was lost): acknowledged again, stored once.
	a := s.post(t, acked, gz(t, es), "gzip")
	if a.status != http.StatusOK {
		t.Fatalf("repeat: %d %s", a.status, a.body)
	}
	ack := decode[wire.Ack](t, a)
	if ack.Acked != acked+10 || ack.Stored != 0 || ack.Repeated != 10 {
		t.Fatalf("repeat ack %+v, want acked %d, stored 0, repeated 10", ack, acked+10)
	}
	// Overlap: the last five again and five new ones.
	over := append(es[5:], batch(acked+10, 5, wire.KindHealth, "repeat")...)
	a = s.post(t, acked+5, gz(t, over), "gzip")
	if a.status != http.StatusOK {
		t.Fatalf("overlap: %d %s", a.status, a.body)
	}
	if ack := decode[wire.Ack](t, a); ack.Acked <= acked+10 || ack.Repeated != 5 {
		t.Fatalf("overlap ack %+v, want progress past %d and 5 repeats", ack, acked+10)
	}
}

func (s *suite) gap(t *testing.T) {
	acked := s.getState(t).Acked
	a := s.post(t, acked+10, gz(t, batch(acked+10, 2, wire.KindAlarm, "gap")), "gzip")
	e := s.expectError(t, a, http.StatusConflict, wire.CodeGap)
	if e.Acked == nil || *e.Acked != acked {
		t.Fatalf("gap answer acked %v, want %d", e.Acked, acked)
	}
	if st := s.getState(t); st.Acked != acked {
		t.Fatalf("a refused batch moved acked to %d", st.Acked)
	}
}

func (s *suite) conflict(t *testing.T) {
	acked := s.getState(t).Acked
	s.send(t, acked, batch(acked, 2, wire.KindAlarm, "first"))
	a := s.post(t, acked, gz(t, batch(acked, 2, wire.KindAlarm, "second")), "gzip")
	s.expectError(t, a, http.StatusConflict, wire.CodeConflict)
}

func (s *suite) malformed(t *testing.T) {
	acked := s.getState(t).Acked
	good := gz(t, batch(acked, 2, wire.KindAlarm, "malformed"))
	s.expectError(t, s.post(t, acked, []byte("not gzip"), "gzip"), http.StatusBadRequest, wire.CodeMalformed)
	s.expectError(t, s.post(t, acked, []byte("{not json\n"), ""), http.StatusBadRequest, wire.CodeMalformed)
	dec := batch(acked, 2, wire.KindAlarm, "malformed")
	dec[0], dec[1] = dec[1], dec[0]
	s.expectError(t, s.post(t, acked, gz(t, dec), "gzip"), http.StatusBadRequest, wire.CodeMalformed)
	notObj := batch(acked, 1, wire.KindAlarm, "x")
	notObj[0].Body = json.RawMessage(`[1,2]`)
	s.expectError(t, s.post(t, acked, gz(t, notObj), "gzip"), http.StatusBadRequest, wire.CodeMalformed)
	future := s.do(t, http.MethodPost, s.path(wire.PathEntries), s.Token,
		map[string]string{"Content-Encoding": "gzip", wire.HeaderAfter: strconv.FormatInt(acked, 10), wire.HeaderProtocol: "99"}, good)
	s.expectError(t, future, http.StatusBadRequest, wire.CodeMalformed)
	noAfter := s.do(t, http.MethodPost, s.path(wire.PathEntries), s.Token, map[string]string{"Content-Encoding": "gzip"}, good)
	s.expectError(t, noAfter, http.StatusBadRequest, wire.CodeMalformed)
	if st := s.getState(t); st.Acked != acked {
		t.Fatalf("a refused batch moved acked to %d", st.Acked)
	}
}

func (s *suite) unknownKind(t *testing.T) {
	acked := s.getState(t).Acked
	s.send(t, acked, batch(acked, 1, "kind-from-the-future", "x"))
}

func (s *suite) auditHead(t *testing.T) {
	acked := s.getState(t).Acked
	es := []wire.Envelope{entry(acked+1, wire.KindAudit, "a"), entry(acked+2, wire.KindAlarm, "a"), entry(acked+3, wire.KindAudit, "b")}
	var a3 wire.Audit
	json.Unmarshal(es[2].Body, &a3)
	s.send(t, acked, es)
	st := s.getState(t)
	if st.AuditHead == nil || st.AuditHead.Seq != a3.Seq || st.AuditHead.Hash != a3.Hash || st.AuditHead.OutboxSeq != acked+3 {
		t.Fatalf("audit head %+v, want seq %d hash %s outbox seq %d", st.AuditHead, a3.Seq, a3.Hash, acked+3)
	}
	// Entries without audit leave the anchor alone.
	s.send(t, acked+3, batch(acked+3, 2, wire.KindAlarm, "after-audit"))
	if st2 := s.getState(t); st2.AuditHead == nil || *st2.AuditHead != *st.AuditHead {
		t.Fatalf("audit head moved to %+v without an audit entry", st2.AuditHead)
	}
}

func (s *suite) tooLarge(t *testing.T) {
	acked := s.getState(t).Acked
	// Incompressible pads, so the gzip'd body really is over the limit.
	pad := make([]byte, max(s.MaxBody/500, 16))
	es := batch(acked, 1100, wire.KindAlarm, "too-large")
	for i := range es {
		rand.Read(pad)
		es[i].Body = json.RawMessage(`{"pad":"` + hex.EncodeToString(pad) + `"}`)
	}
	body := gz(t, es)
	if int64(len(body)) <= s.MaxBody {
		t.Fatalf("test body %d bytes is not over MaxBody %d", len(body), s.MaxBody)
	}
	s.expectError(t, s.post(t, acked, body, "gzip"), http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
}

func (s *suite) page(t *testing.T, cursor string) wire.DirectoryPage {
	t.Helper()
	q := url.Values{"cursor": {cursor}, "limit": {"2"}}
	a := s.do(t, http.MethodGet, s.path(wire.PathDirectory)+"?"+q.Encode(), s.Token, nil, nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET directory cursor %q: %d %s", cursor, a.status, a.body)
	}
	p := decode[wire.DirectoryPage](t, a)
	if len(p.Changes) > 2 {
		t.Fatalf("%d changes for limit 2", len(p.Changes))
	}
	return p
}

// drain follows the feed to its end and returns the changes and the last cursor.
func (s *suite) drain(t *testing.T, cursor string) ([]wire.DirectoryChange, string) {
	t.Helper()
	var all []wire.DirectoryChange
	for range 10000 {
		p := s.page(t, cursor)
		all = append(all, p.Changes...)
		if len(p.Changes) > 0 && p.Cursor == cursor {
			t.Fatalf("cursor %q did not advance over %d changes", cursor, len(p.Changes))
		}
		cursor = p.Cursor
		if !p.More {
			return all, cursor
		}
	}
	t.Fatal("directory feed never ends")
	return nil, ""
}

func (s *suite) directory(t *testing.T) {
	_, cursor := s.drain(t, "")
	if again, c2 := s.drain(t, cursor); len(again) != 0 || c2 != cursor {
		t.Fatalf("from the last cursor: %d changes, cursor %q → %q; want none", len(again), cursor, c2)
	}
	a := s.do(t, http.MethodGet, s.path(wire.PathDirectory)+"?cursor=%00not-issued", s.Token, nil, nil)
	s.expectError(t, a, http.StatusBadRequest, wire.CodeMalformed)
	if s.PutStaff == nil {
		t.Log("no directory hooks: changes not checked")
		return
	}
	ctx := context.Background()
	id := "conf-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutStaff(ctx, wire.Staff{ID: id, Name: "Conformance", Roles: []string{"nurse"}}))
	must(s.PutStaff(ctx, wire.Staff{ID: id + "-2", Name: "Conformance Two", Roles: []string{"nurse"}}))
	must(s.PutStaff(ctx, wire.Staff{ID: id, Name: "Conformance Changed", Roles: []string{"nurse", "nurse-lead"}}))
	got, c2 := s.drain(t, cursor)
	last := map[string]wire.DirectoryChange{}
	for _, c := range got {
		last[c.StaffID] = c
	}
	if c := last[id]; c.Op != wire.OpUpsert || c.Staff == nil || c.Staff.Name != "Conformance Changed" || c.Staff.ID != id {
		t.Fatalf("latest change of %s = %+v, want the changed upsert", id, c)
	}
	if c := last[id+"-2"]; c.Op != wire.OpUpsert {
		t.Fatalf("change of %s-2 = %+v", id, c)
	}
	must(s.RemoveStaff(ctx, id+"-2"))
	req, err := s.RequestErasure(ctx, id)
	must(err)
	got, c3 := s.drain(t, c2)
	last = map[string]wire.DirectoryChange{}
	for _, c := range got {
		last[c.StaffID] = c
	}
	if c := last[id+"-2"]; c.Op != wire.OpRemove {
		t.Fatalf("after removal: %+v", c)
	}
	if c := last[id]; c.Op != wire.OpErase || c.RequestID != req {
		t.Fatalf("after erasure request: %+v, want erase with request id %s", c, req)
	}
	if c3 == c2 {
		t.Fatal("cursor did not advance")
	}
	// A gateway starting from scratch is not handed the erased person's data.
	all, _ := s.drain(t, "")
	for _, c := range all {
		if c.StaffID == id && c.Op == wire.OpUpsert {
			t.Fatalf("an empty cursor still hands out the erased person: %+v", c)
		}
	}
}
