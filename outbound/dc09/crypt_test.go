package dc09_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt/outbound/dc09"
)

// TestPublicEncryptedVector decrypts a frame produced by another implementation
// (published in the test suite of an open-source DC-09 codec, key
// "AAAAAAAAAAAAAAAA" as ASCII bytes): a water alarm, zone 000, sent 16:04:02 UTC.
func TestPublicEncryptedVector(t *testing.T) {
	const frame = "\n05BB0076\"*SIA-DCS\"7654L0#1111[C07DA1EB73C617857476EE5D79436CEE5E0084485E79EC56B0D5D1F3F6E648B278050BBCCBC8FE5DCA7E3C80DBDD4945\r"
	f, err := dc09.Parse([]byte(frame), []byte("AAAAAAAAAAAAAAAA"))
	if err != nil {
		t.Fatal(err)
	}
	want := dc09.Frame{ID: dc09.SIADCS, Encrypted: true, Seq: 7654, Line: "0", Account: "1111", Data: "Nri1/WA000",
		Time: time.Date(2020, 7, 9, 16, 4, 2, 0, time.UTC)}
	if !sameFrame(f, want) {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
	if _, err := dc09.Parse([]byte(frame), []byte("BBBBBBBBBBBBBBBB")); !errors.Is(err, dc09.ErrDecrypt) {
		t.Errorf("wrong key: %v, want ErrDecrypt", err)
	}
	if _, err := dc09.Parse([]byte(frame), nil); !errors.Is(err, dc09.ErrNoKey) {
		t.Errorf("no key: %v, want ErrNoKey", err)
	}
}

func TestEncryptRoundTrip(t *testing.T) {
	ts := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, key := range []string{
		"000102030405060708090A0B0C0D0E0F",
		"000102030405060708090A0B0C0D0E0F1011121314151617",
		"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
	} {
		k, err := dc09.ParseKey(" " + key + "\n")
		if err != nil {
			t.Fatal(err)
		}
		// Data of every length across a block boundary.
		for n := range 40 {
			f := dc09.Frame{ID: dc09.SIADCS, Encrypted: true, Seq: 12, Receiver: "1", Line: "2", Account: "ABC123",
				Data: "#ABC123|Nri1/MA" + strings.Repeat("7", n), Time: ts}
			b, err := dc09.Encode(f, k)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "MA7") || strings.Contains(string(b), "10:00:00") {
				t.Fatalf("AES-%d: data or time in clear: %q", 8*len(k), b)
			}
			got, err := dc09.Parse(b, k)
			if err != nil || !sameFrame(got, f) {
				t.Fatalf("AES-%d n=%d: %+v, %v", 8*len(k), n, got, err)
			}
		}
	}
	if _, err := dc09.Encode(dc09.Frame{ID: dc09.Null, Encrypted: true, Line: "0", Account: "1234"}, make([]byte, 16)); err == nil {
		t.Error("encrypted frame without timestamp encoded")
	}
	for _, bad := range []string{"", "0011", "zz0102030405060708090A0B0C0D0E0F"} {
		if _, err := dc09.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}
