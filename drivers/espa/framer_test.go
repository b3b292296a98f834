package espa

import (
	"bytes"
	"reflect"
	"testing"
)

func frame(body string) []byte {
	f := append([]byte{SOH}, body...)
	f = append(f, ETX)
	return append(f, BCC(f[1:]))
}

// withBCC finds a call block whose BCC equals want, by varying the call address.
func withBCC(t *testing.T, want byte) []byte {
	t.Helper()
	for x := byte(0x20); x < 0x7F; x++ {
		for y := byte(0x20); y < 0x7F; y++ {
			f := Encode(CallBlock(Call{CallAddress: "R", Message: "ROOM " + string([]byte{x, y})}))
			if f[len(f)-1] == want {
				return f
			}
		}
	}
	t.Fatalf("no block with BCC %02X", want)
	return nil
}

func types(toks []Token) []TokenType {
	var out []TokenType
	for _, t := range toks {
		out = append(out, t.Type)
	}
	return out
}

func TestFramerTolerance(t *testing.T) {
	good := Encode(CallBlock(Call{CallAddress: "101", Message: "ROOM 101"}))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name string
		in   []byte
		want []TokenType
		// call address of the block tokens, in order
		calls []string
	}{
		{"trailing RS", frame("1\x021\x1f101\x1e2\x1fROOM 101\x1e"), []TokenType{TokenBlock}, []string{"101"}},
		{"space after STX", frame("1\x02 1\x1f101"), []TokenType{TokenBlock}, []string{"101"}},
		{"Latin-1 text", frame("1\x021\x1f7\x1e2\x1fROM \xe6\xf8\xe5"), []TokenType{TokenBlock}, []string{"7"}},
		{"BCC equals SOH", withBCC(t, SOH), []TokenType{TokenBlock}, nil},
		{"BCC equals EOT", withBCC(t, EOT), []TokenType{TokenBlock}, nil},
		{"BCC equals ENQ", withBCC(t, ENQ), []TokenType{TokenBlock}, nil},
		{"BCC equals NAK", withBCC(t, NAK), []TokenType{TokenBlock}, nil},
		{"BCC equals a digit", withBCC(t, '2'), []TokenType{TokenBlock}, nil},
		{"noise before frame", cat([]byte("\xff\x00garbage\x1e\x1f\x03"), good), []TokenType{TokenNoise, TokenBlock}, []string{"101"}},
		{"half frame then frame", cat(good[:7], good), []TokenType{TokenNoise, TokenBlock}, []string{"101"}},
		{"half frame then EOT", cat(good[:7], []byte{EOT}), []TokenType{TokenNoise, TokenEOT}, nil},
		{"half frame then select", cat(good[:5], []byte{'2', ENQ}, good), []TokenType{TokenNoise, TokenENQ, TokenBlock}, []string{"101"}},
		{"bad BCC then good", cat(good[:len(good)-1], []byte{good[len(good)-1] ^ 1}, good), []TokenType{TokenBadBCC, TokenBlock}, []string{"101"}},
		{"no STX", frame("11\x1fA"), []TokenType{TokenInvalid}, nil},
		{"record without US", frame("1\x02A"), []TokenType{TokenInvalid}, nil},
		{"digit noise before ENQ", []byte("12\x05"), []TokenType{TokenNoise, TokenENQ}, nil},
		{"prefixed ACK", []byte("1\x06"), []TokenType{TokenNoise, TokenACK}, nil},
		{"oversize then good", cat([]byte{SOH, '1', STX}, bytes.Repeat([]byte("x"), 600), good), []TokenType{TokenNoise, TokenNoise, TokenBlock}, []string{"101"}},
		{"two blocks back to back", cat(good, good), []TokenType{TokenBlock, TokenBlock}, []string{"101", "101"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, len(tt.in)} {
				toks := feedChunks(tt.in, chunk)
				if got := types(toks); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("chunk %d: got %v, want %v (%v)", chunk, got, tt.want, toks)
				}
				var calls []string
				for _, tok := range toks {
					if tok.Type == TokenBlock && tt.calls != nil {
						c, err := ParseCall(tok.Block)
						if err != nil {
							t.Fatal(err)
						}
						calls = append(calls, c.CallAddress)
					}
				}
				if tt.calls != nil && !reflect.DeepEqual(calls, tt.calls) {
					t.Errorf("chunk %d: calls %v, want %v", chunk, calls, tt.calls)
				}
			}
		})
	}
}

func TestFramerDetails(t *testing.T) {
	good := Encode(CallBlock(Call{CallAddress: "101"}))
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0x04
	toks := feedChunks(bad, 1)
	if len(toks) != 1 || toks[0].Want != good[len(good)-1] || toks[0].Got != bad[len(bad)-1] || !bytes.Equal(toks[0].Raw, bad) {
		t.Fatalf("bad BCC token %+v", toks)
	}

	// A half frame cut by "2 ENQ": the digit is the address, not part of the frame.
	toks = feedChunks(append(good[:5:5], '2', ENQ), 1)
	if len(toks) != 2 || toks[0].Err != ErrTruncated || toks[0].N != 5 || toks[1].Addr != '2' {
		t.Fatalf("half frame + select: %+v", toks)
	}

	// Noise is reported in bounded pieces however long it lasts.
	var f Framer
	var n, pieces int
	f.Feed(bytes.Repeat([]byte{0xAA}, 10000), func(t Token) { n += t.N; pieces++ })
	f.Flush(func(t Token) { n += t.N; pieces++ })
	if n != 10000 || pieces != (10000+noiseReport-1)/noiseReport {
		t.Errorf("noise: %d bytes in %d pieces", n, pieces)
	}
	if cap(f.noise) > maxNoiseShown*2 || cap(f.buf) > MaxBlock {
		t.Errorf("framer grew: noise %d buf %d", cap(f.noise), cap(f.buf))
	}

	// Flush reports a pending half frame.
	f.Reset()
	var got []Token
	f.Feed(good[:6], func(t Token) { got = append(got, t) })
	if len(got) != 0 || !f.Busy() {
		t.Fatalf("half frame emitted early: %v", got)
	}
	f.Flush(func(t Token) { got = append(got, t) })
	if len(got) != 1 || got[0].Err != ErrTruncated {
		t.Fatalf("flush: %v", got)
	}
}

func TestTokenString(t *testing.T) {
	raw := Encode(CallBlock(Call{CallAddress: "550", Message: "CALL ME 101", CallType: 3, Priority: 3}))
	toks := feedChunks(append([]byte{EOT, '2', ENQ, '1', NAK}, raw...), 1)
	var lines []string
	for _, tok := range toks {
		lines = append(lines, tok.String())
	}
	want := []string{"EOT", "ENQ addr=2", "NAK '1'", `BLOCK hdr=1 call="550" msg="CALL ME 101" type=3 prio=3`}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got %q want %q", lines, want)
	}
}
