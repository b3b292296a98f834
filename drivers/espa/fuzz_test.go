package espa

import (
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzFramer feeds arbitrary bytes to the framer, whole and in small pieces: it must
// not panic, must not grow, must give the same tokens however the bytes are split,
// and every block it yields must survive Encode and framing again unchanged.
// The seed corpus is the test vectors (added here) and testdata/fuzz/FuzzFramer.
func FuzzFramer(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(sharedFrames(f), "*.hex"))
	var all []byte
	for _, file := range files {
		raw := readHex(f, file)
		f.Add(raw)
		all = append(all, raw...)
	}
	f.Add(append([]byte{EOT, '1', ENQ, '2', ENQ}, all...))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := feedChunks(data, len(data)+1)
		for _, size := range []int{1, 7} {
			if got := feedChunks(data, size); !reflect.DeepEqual(got, whole) {
				t.Fatalf("chunks of %d give different tokens:\n%v\n%v", size, got, whole)
			}
		}
		var f Framer
		f.Feed(data, func(Token) {})
		if cap(f.buf) > MaxBlock || cap(f.noise) > 2*maxNoiseShown {
			t.Fatalf("framer grew: buf %d noise %d", cap(f.buf), cap(f.noise))
		}
		n := 0
		for _, tok := range whole {
			_ = tok.String()
			switch tok.Type {
			case TokenBlock, TokenBadBCC, TokenInvalid:
				n += len(tok.Raw)
				if len(tok.Raw) > MaxBlock {
					t.Fatalf("frame of %d bytes", len(tok.Raw))
				}
			case TokenNoise:
				n += tok.N
				if len(tok.Raw) > maxNoiseShown || tok.N < len(tok.Raw) {
					t.Fatalf("noise token %d/%d", len(tok.Raw), tok.N)
				}
			case TokenENQ, TokenNAK:
				n++
				if tok.Addr != 0 || tok.Digit != 0 {
					n++
				}
			default:
				n++
			}
			if tok.Type != TokenBlock {
				continue
			}
			if c, err := ParseCall(tok.Block); err == nil {
				_ = c.String()
				_, _ = Mapper{Fallback: "x"}.Map(c)
				_ = EventFor(c, "x", tok.Raw)
			}
			again := feedChunks(Encode(tok.Block), 1)
			if len(again) != 1 || again[0].Type != TokenBlock || !reflect.DeepEqual(again[0].Block, tok.Block) {
				t.Fatalf("block %+v does not survive Encode: %v", tok.Block, again)
			}
			if d, err := Decode(tok.Raw); err != nil || !reflect.DeepEqual(d, tok.Block) {
				t.Fatalf("Decode disagrees with the framer: %+v %v", d, err)
			}
		}
		// Every byte is accounted for exactly once.
		if n != len(data) {
			t.Fatalf("tokens account for %d of %d bytes: %v", n, len(data), whole)
		}
	})
}
