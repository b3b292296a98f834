package dc09_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/vakt/vakt/outbound/dc09"
)

var fuzzKey = []byte("AAAAAAAAAAAAAAAA")

// FuzzParse feeds arbitrary bytes to the frame splitter and the parser (with and
// without a key). Nothing may panic, nothing longer than MaxFrame comes out of
// the splitter, and whatever parses re-encodes to a frame that parses the same.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.bin"))
	for _, p := range files {
		f.Add(readFile(f, p))
	}
	f.Add([]byte("\n05BB0076\"*SIA-DCS\"7654L0#1111[C07DA1EB73C617857476EE5D79436CEE5E0084485E79EC56B0D5D1F3F6E648B278050BBCCBC8FE5DCA7E3C80DBDD4945\r"))
	f.Add(wire(`"SIA-DCS"0042R1L232#78919[#78919|Nri1/BA012][X012W34.1][Y045N12.2]_14:12:04,09-25-2026`))
	f.Add(wire(`"NAK"0000R0L0A0[]_10:00:00,12-01-2026`))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufioReader(in)
		for {
			b, err := dc09.ReadFrame(br)
			if err != nil && err != dc09.ErrTooLong {
				break
			}
			if len(b) > dc09.MaxFrame {
				t.Fatalf("ReadFrame returned %d bytes", len(b))
			}
		}
		for _, key := range [][]byte{nil, fuzzKey} {
			fr, err := dc09.Parse(in, key)
			if err != nil {
				continue
			}
			out, err := dc09.Encode(fr, key)
			if err != nil {
				t.Fatalf("parsed %+v but cannot encode it: %v", fr, err)
			}
			again, err := dc09.Parse(out, key)
			if err != nil || !sameFrame(again, fr) {
				t.Fatalf("re-encoded %q parses as %+v, %v; want %+v", out, again, err, fr)
			}
			if !fr.Encrypted && !bytes.Equal(out[9:], in[9:]) && bytes.EqualFold(in[1:9], out[1:9]) {
				t.Fatalf("plain frame re-encodes differently:\n%q\n%q", in, out)
			}
		}
	})
}
