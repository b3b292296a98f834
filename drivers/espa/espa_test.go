package espa

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vakt/vakt/internal/shared"
)

// sharedFrames returns the folder of ESPA test vectors: a copy of
// ../shared/testdata/espa444 in testdata, so the tests pass in a bare clone.
func sharedFrames(t testing.TB) string {
	t.Helper()
	return filepath.Join("testdata", "espa444")
}

// TestGoldenMatchesShared keeps testdata/espa444 equal to the shared vectors when
// ../shared is beside the clone.
func TestGoldenMatchesShared(t *testing.T) {
	shared.MatchDir(t, sharedFrames(t), "*.hex", "testdata", "espa444")
}

func readHex(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.Join(strings.Fields(string(b)), ""))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw
}

// golden is the documented meaning of every frame in testdata/espa444
// (../shared/protocols/espa444.md, "Test vectors").
var golden = []struct {
	file string
	call Call
	// canonical: Encode of the decoded block gives the same bytes. The Zenitel frame
	// has a space after STX, which a canonical encoder does not produce.
	canonical bool
	// build, when set, constructs the block from its meaning.
	build func() Block
}{
	{
		file: "zenitel-call-550.hex",
		call: Call{Header: '1', CallAddress: "550", Message: "CALL ME 101", Beep: 3, CallType: 3, Transmissions: 3, Priority: 3},
	},
	{
		file:      "spec-example1-call-123.hex",
		call:      Call{Header: '1', CallAddress: "123", Transmissions: 3, Priority: 3},
		canonical: true,
		build:     func() Block { return CallBlock(Call{CallAddress: "123", Transmissions: 3, Priority: 3}) },
	},
	{
		file:      "spec-example1-call-123-high.hex",
		call:      Call{Header: '1', CallAddress: "123", Transmissions: 3, Priority: 2},
		canonical: true,
		build:     func() Block { return CallBlock(Call{CallAddress: "123", Transmissions: 3, Priority: 2}) },
	},
	{
		file:      "spec-example2-status-paged.hex",
		call:      Call{Header: '2', CallAddress: "123", Beep: 1, Message: "4567", Status: StatusPaged},
		canonical: true,
		build: func() Block {
			return Block{Header: HeaderStatus, Records: []Record{{"1", "123"}, {"3", "1"}, {"2", "4567"}, {"7", "3"}}}
		},
	},
	{
		file:      "minimal-call-A.hex",
		call:      Call{Header: '1', CallAddress: "A"},
		canonical: true,
		build:     func() Block { return CallBlock(Call{CallAddress: "A"}) },
	},
}

func TestGolden(t *testing.T) {
	dir := sharedFrames(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no frames in %s: %v", dir, err)
	}
	covered := map[string]bool{}
	for _, g := range golden {
		covered[g.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no documented meaning in this test", filepath.Base(f))
		}
	}
	for _, g := range golden {
		t.Run(g.file, func(t *testing.T) {
			raw := readHex(t, filepath.Join(dir, g.file))

			b, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			c, err := ParseCall(b)
			if err != nil {
				t.Fatalf("ParseCall: %v", err)
			}
			if c != g.call {
				t.Errorf("call\n got %+v\nwant %+v", c, g.call)
			}

			// The framer agrees with Decode, in one piece and byte by byte.
			for _, chunk := range []int{len(raw), 1} {
				toks := feedChunks(raw, chunk)
				if len(toks) != 1 || toks[0].Type != TokenBlock {
					t.Fatalf("chunk %d: tokens %v", chunk, toks)
				}
				if !reflect.DeepEqual(toks[0].Block, b) || !bytes.Equal(toks[0].Raw, raw) {
					t.Errorf("chunk %d: framer block %+v differs from Decode %+v", chunk, toks[0].Block, b)
				}
			}

			if g.canonical {
				if got := Encode(b); !bytes.Equal(got, raw) {
					t.Errorf("Encode(Decode(frame))\n got %s\nwant %s", Hex(got), Hex(raw))
				}
			}
			if g.build != nil {
				if got := Encode(g.build()); !bytes.Equal(got, raw) {
					t.Errorf("Encode(built)\n got %s\nwant %s", Hex(got), Hex(raw))
				}
			}
		})
	}
}

func TestLinkSequences(t *testing.T) {
	// Test vector 5 and the full exchange of the protocol notes.
	tests := []struct {
		in   []byte
		want []Token
	}{
		{[]byte{0x31, 0x05}, []Token{{Type: TokenENQ, Addr: '1'}}},
		{[]byte{0x32, 0x05}, []Token{{Type: TokenENQ, Addr: '2'}}},
		{[]byte{0x06}, []Token{{Type: TokenACK}}},
		{[]byte{0x31, 0x15}, []Token{{Type: TokenNAK, Digit: '1'}}},
		{[]byte{0x15}, []Token{{Type: TokenNAK}}},
		{[]byte{0x04}, []Token{{Type: TokenEOT}}},
		{[]byte{0x05}, []Token{{Type: TokenENQ}}},
		{[]byte{0x04, 0x31, 0x05, 0x32, 0x05}, []Token{{Type: TokenEOT}, {Type: TokenENQ, Addr: '1'}, {Type: TokenENQ, Addr: '2'}}},
	}
	for _, tt := range tests {
		got := feedChunks(tt.in, 1)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("% X: got %v want %v", tt.in, got, tt.want)
		}
	}
}

func TestEncodeStatusBlock(t *testing.T) {
	raw := Encode(StatusBlock("550", StatusAcknowledged))
	want := []byte{SOH, '2', STX, '1', US, '5', '5', '0', RS, '7', US, '6', ETX}
	want = append(want, BCC(want[1:]))
	if !bytes.Equal(raw, want) {
		t.Fatalf("got %s want %s", Hex(raw), Hex(want))
	}
	b, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCall(b)
	if err != nil || c.CallAddress != "550" || c.Status != StatusAcknowledged || c.Header != HeaderStatus {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestCallBlockSanitizes(t *testing.T) {
	c := Call{CallAddress: "12345678901234567890", Message: "A\x03B\x01C" + strings.Repeat("x", 200), CallType: CallReset, Priority: 1}
	raw := Encode(CallBlock(c))
	toks := feedChunks(raw, len(raw))
	if len(toks) != 1 || toks[0].Type != TokenBlock {
		t.Fatalf("tokens %v", toks)
	}
	got, err := ParseCall(toks[0].Block)
	if err != nil {
		t.Fatal(err)
	}
	if got.CallAddress != "1234567890123456" || len(got.Message) != MaxMessage || !strings.HasPrefix(got.Message, "A B C") {
		t.Errorf("got %+v", got)
	}
	if got.CallType != CallReset || got.Priority != 1 {
		t.Errorf("got %+v", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(CallBlock(Call{CallAddress: "1"}))
	bad := slices.Clone(good)
	bad[len(bad)-1] ^= 0x40
	var be *BCCError
	if _, err := Decode(bad); !errors.As(err, &be) || be.Want != good[len(good)-1] {
		t.Errorf("bad BCC: %v", err)
	}
	for _, body := range []string{"1", "12\x021\x1fA", "1\x021A", "1\x02\x1fA"} {
		frame := append([]byte{SOH}, body...)
		frame = append(frame, ETX)
		frame = append(frame, BCC(frame[1:]))
		if _, err := Decode(frame); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: got %v, want ErrInvalid", body, err)
		}
	}
}

func TestParseCall(t *testing.T) {
	tests := []struct {
		name    string
		b       Block
		want    Call
		invalid bool
	}{
		{"unknown header", Block{Header: '9', Records: []Record{{"1", "5"}}}, Call{}, true},
		{"manufacturer header", Block{Header: '5', Records: []Record{{"1", "5"}}}, Call{}, true},
		{"call without address", Block{Header: '1', Records: []Record{{"2", "ROOM 1"}}}, Call{}, true},
		{"subscriber call without address", Block{Header: '4'}, Call{}, true},
		{"status without address", Block{Header: '2', Records: []Record{{"8", "1"}}}, Call{Header: '2', SystemStatus: 1}, false},
		{"reset", Block{Header: '1', Records: []Record{{"1", "7"}, {"4", "1"}}}, Call{Header: '1', CallAddress: "7", CallType: 1}, false},
		{"garbled priority is still a call", Block{Header: '1', Records: []Record{{"1", "7"}, {"6", "x"}}}, Call{Header: '1', CallAddress: "7"}, false},
		{"open paged", Block{Header: '2', Records: []Record{{"1", "7"}, {"7", "71"}}}, Call{Header: '2', CallAddress: "7", Status: 71}, false},
		{"unknown record ignored", Block{Header: '1', Records: []Record{{"1", "7"}, {"9", "?"}}}, Call{Header: '1', CallAddress: "7"}, false},
		{"1 is not 01", Block{Header: '1', Records: []Record{{"1", "01"}}}, Call{Header: '1', CallAddress: "01"}, false},
	}
	for _, tt := range tests {
		got, err := ParseCall(tt.b)
		if tt.invalid {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: got %v, want ErrInvalid", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %+v %v, want %+v", tt.name, got, err, tt.want)
		}
	}
}

func TestLatin1(t *testing.T) {
	raw := "ROM \xe6\xf8\xe5 \xc6\xd8\xc5"
	if got := DecodeLatin1(raw); got != "ROM æøå ÆØÅ" {
		t.Errorf("DecodeLatin1: %q", got)
	}
	if got := EncodeLatin1("ROM æøå ÆØÅ €"); got != raw+" ?" {
		t.Errorf("EncodeLatin1: %q", got)
	}
}

func feedChunks(p []byte, size int) []Token {
	var f Framer
	var toks []Token
	emit := func(t Token) { toks = append(toks, t) }
	for len(p) > 0 {
		n := min(size, len(p))
		f.Feed(p[:n], emit)
		p = p[n:]
	}
	f.Flush(emit)
	return toks
}
