package dc09_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/shared"
	"github.com/vakt/vakt/outbound/dc09"
)

// golden lists each vector of the shared protocol notes with the meaning it states.
var golden = []struct {
	file  string
	frame dc09.Frame
}{
	{"adm-cid-emergency.bin", dc09.Frame{ID: dc09.ADMCID, Seq: 1, Receiver: "0", Line: "0", Account: "1234", Data: "#1234|1101 01 015"}},
	{"adm-cid-restore.bin", dc09.Frame{ID: dc09.ADMCID, Seq: 2, Receiver: "0", Line: "0", Account: "1234", Data: "#1234|3101 01 015"}},
	{"null-link-test.bin", dc09.Frame{ID: dc09.Null, Seq: 0, Receiver: "0", Line: "0", Account: "1234"}},
	{"ack-0001.bin", dc09.Frame{ID: dc09.Ack, Seq: 1, Receiver: "0", Line: "0", Account: "1234"}},
	{"sia-dcs-medical.bin", dc09.Frame{ID: dc09.SIADCS, Seq: 3, Receiver: "0", Line: "0", Account: "1234", Data: "#1234|Nri1/MA015"}},
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range golden {
		want := readFile(t, filepath.Join("testdata", "golden", g.file))
		got, err := dc09.Encode(g.frame, nil)
		if err != nil {
			t.Fatalf("%s: encode: %v", g.file, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoder gives\n%q\nwant\n%q", g.file, got, want)
		}
	}
}

func TestGoldenParse(t *testing.T) {
	for _, g := range golden {
		f, err := dc09.Parse(readFile(t, filepath.Join("testdata", "golden", g.file)), nil)
		if err != nil {
			t.Fatalf("%s: parse: %v", g.file, err)
		}
		if !sameFrame(f, g.frame) {
			t.Errorf("%s: parsed %+v, want %+v", g.file, f, g.frame)
		}
	}
}

// TestGoldenMeaning reads the events back out of the data fields.
func TestGoldenMeaning(t *testing.T) {
	parse := func(file string) dc09.Frame {
		f, err := dc09.Parse(readFile(t, filepath.Join("testdata", "golden", file)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	acct, c, err := dc09.ParseContactID(parse("adm-cid-emergency.bin").Data)
	if err != nil || acct != "1234" || c != (dc09.ContactID{Qualifier: dc09.NewEvent, Event: dc09.PersonalEmergency, Group: 1, Zone: 15}) {
		t.Errorf("emergency: %q %+v %v", acct, c, err)
	}
	_, c, err = dc09.ParseContactID(parse("adm-cid-restore.bin").Data)
	if err != nil || c != (dc09.ContactID{Qualifier: dc09.Restore, Event: dc09.PersonalEmergency, Group: 1, Zone: 15}) {
		t.Errorf("restore: %+v %v", c, err)
	}
	acct, e, err := dc09.ParseSIA(parse("sia-dcs-medical.bin").Data)
	if err != nil || acct != "1234" || e != (dc09.SIAEvent{Group: 1, Code: "MA", Zone: "015"}) {
		t.Errorf("sia: %q %+v %v", acct, e, err)
	}
	if got := (dc09.ContactID{Qualifier: 1, Event: 101, Group: 1, Zone: 15}).String(); got != "1101 01 015" {
		t.Errorf("contact id string %q", got)
	}
	if got := (dc09.SIAEvent{Group: 1, Code: "MA", Zone: "015"}).String(); got != "Nri1/MA015" {
		t.Errorf("sia string %q", got)
	}
}

// TestGoldenMatchesShared keeps the package's copy equal to the shared vectors,
// when the shared folder sits beside the checkout (skipped in a bare clone).
func TestGoldenMatchesShared(t *testing.T) {
	shared.MatchDir(t, filepath.Join("testdata", "golden"), "*.bin", "testdata", "sia-dc09")
}

func TestCRCCheckValue(t *testing.T) {
	if got := dc09.CRC([]byte("123456789")); got != 0xBB3D {
		t.Fatalf("CRC(123456789) = %04X, want BB3D", got)
	}
}

func TestParseRejects(t *testing.T) {
	good := readFile(t, filepath.Join("testdata", "golden", "adm-cid-emergency.bin"))
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"crc", mut(func(b []byte) []byte { b[1] = '1'; return b }), dc09.ErrCRC},
		{"data changed", mut(func(b []byte) []byte { b[len(b)-3] = '6'; return b }), dc09.ErrCRC},
		{"length", mut(func(b []byte) []byte { b[8] = 'A'; return b }), dc09.ErrLength},
		{"length not 0LLL", mut(func(b []byte) []byte { b[5] = '1'; return b }), dc09.ErrFormat},
		{"no CR", good[:len(good)-1], dc09.ErrFormat},
		{"truncated", good[:20], dc09.ErrFormat},
		{"too long", append(append([]byte{'\n'}, bytes.Repeat([]byte("A"), dc09.MaxFrame)...), '\r'), dc09.ErrTooLong},
		{"unknown id", frame(`"XYZ"0001R0L0#1234[]`), dc09.ErrUnknownID},
		{"encrypted without key", frame(`"*SIA-DCS"0001R0L0#1234[00112233445566778899AABBCCDDEEFF`), dc09.ErrNoKey},
		{"bad timestamp", frame(`"NULL"0000R0L0#1234[]_25:00:00,01-01-2026`), dc09.ErrFormat},
		{"trailing", frame(`"NULL"0000R0L0#1234[]x`), dc09.ErrFormat},
	}
	for _, c := range cases {
		if _, err := dc09.Parse(c.in, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

func TestTimestampAndExtended(t *testing.T) {
	f := dc09.Frame{ID: dc09.SIADCS, Seq: 42, Receiver: "1", Line: "232", Account: "78919", Data: "#78919|Nri1/BA012",
		Extended: []string{"X012W34.1", "Y045N12.2"}, Time: time.Date(2026, 9, 25, 14, 12, 4, 0, time.UTC)}
	b, err := dc09.Encode(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"SIA-DCS"0042R1L232#78919[#78919|Nri1/BA012][X012W34.1][Y045N12.2]_14:12:04,09-25-2026`; string(b[9:len(b)-1]) != want {
		t.Fatalf("body %q, want %q", b[9:len(b)-1], want)
	}
	got, err := dc09.Parse(b, nil)
	if err != nil || !sameFrame(got, f) {
		t.Fatalf("round trip %+v, %v", got, err)
	}
}

func TestReadFrameSkipsNoise(t *testing.T) {
	good := readFile(t, filepath.Join("testdata", "golden", "null-link-test.bin"))
	var in []byte
	in = append(in, "garbage\r"...)
	in = append(in, good[:12]...) // half a frame, then a new LF restarts
	in = append(in, '\n')
	in = append(in, bytes.Repeat([]byte("B"), 2*dc09.MaxFrame)...)
	in = append(in, '\r')
	in = append(in, good...)
	br := bufioReader(in)
	if _, err := dc09.ReadFrame(br); !errors.Is(err, dc09.ErrTooLong) {
		t.Fatalf("first read: %v, want ErrTooLong", err)
	}
	b, err := dc09.ReadFrame(br)
	if err != nil || !bytes.Equal(b, good) {
		t.Fatalf("second read %q, %v; want the good frame", b, err)
	}
}

func frame(body string) []byte {
	return []byte("\n" + crcHeader([]byte(body)) + body + "\r")
}

func sameFrame(a, b dc09.Frame) bool {
	if len(a.Extended) != len(b.Extended) {
		return false
	}
	for i := range a.Extended {
		if a.Extended[i] != b.Extended[i] {
			return false
		}
	}
	return a.ID == b.ID && a.Encrypted == b.Encrypted && a.Seq == b.Seq && a.Receiver == b.Receiver &&
		a.Line == b.Line && a.Account == b.Account && a.Data == b.Data && a.Time.Equal(b.Time)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
