package espa

import (
	"errors"
	"fmt"
	"strings"
)

// TokenType says what a Token is.
type TokenType uint8

const (
	TokenENQ     TokenType = iota + 1 // <address> ENQ: poll or selection (Addr 0: bare ENQ)
	TokenACK                          // ACK
	TokenNAK                          // [digit] NAK
	TokenEOT                          // EOT
	TokenBlock                        // an intact block that parsed
	TokenBadBCC                       // a block whose BCC did not match: answer '1' NAK
	TokenInvalid                      // an intact block that did not parse: answer '3' NAK
	TokenNoise                        // bytes discarded: line noise, a half frame, an oversize block
)

var tokenNames = [...]string{
	TokenENQ: "ENQ", TokenACK: "ACK", TokenNAK: "NAK", TokenEOT: "EOT", TokenBlock: "BLOCK",
	TokenBadBCC: "BCC ERROR", TokenInvalid: "INVALID", TokenNoise: "NOISE",
}

func (t TokenType) String() string {
	if int(t) < len(tokenNames) && tokenNames[t] != "" {
		return tokenNames[t]
	}
	return fmt.Sprintf("TokenType(%d)", t)
}

// Reasons carried by TokenNoise.
var (
	ErrNoise     = errors.New("espa: line noise")
	ErrTruncated = errors.New("espa: half frame")
	ErrOversize  = errors.New("espa: oversize block")
)

// Token is one thing the framer recognised on the line.
type Token struct {
	Type  TokenType
	Addr  byte // TokenENQ: '0'..'9', or 0 for a bare ENQ (a request to repeat the reply)
	Digit byte // TokenNAK: the reason digit, 0 when bare
	Block Block
	// Raw is the frame as received (TokenBlock, TokenBadBCC, TokenInvalid) or the first
	// bytes discarded (TokenNoise, at most maxNoiseShown).
	Raw       []byte
	N         int  // TokenNoise: how many bytes were discarded
	Want, Got byte // TokenBadBCC
	Err       error
}

func (t Token) String() string {
	switch t.Type {
	case TokenENQ:
		if t.Addr == 0 {
			return "ENQ (bare)"
		}
		return fmt.Sprintf("ENQ addr=%c", t.Addr)
	case TokenNAK:
		if t.Digit == 0 {
			return "NAK"
		}
		return fmt.Sprintf("NAK '%c'", t.Digit)
	case TokenBlock:
		return "BLOCK " + describe(t.Block)
	case TokenBadBCC:
		return fmt.Sprintf("BCC ERROR want=%02X got=%02X raw=%s", t.Want, t.Got, Hex(t.Raw))
	case TokenInvalid:
		return fmt.Sprintf("INVALID %v raw=%s", t.Err, Hex(t.Raw))
	case TokenNoise:
		what := "NOISE"
		switch t.Err {
		case ErrTruncated:
			what = "HALF FRAME"
		case ErrOversize:
			what = "OVERSIZE BLOCK"
		}
		s := fmt.Sprintf("%s %d bytes: %s", what, t.N, Hex(t.Raw))
		if t.N > len(t.Raw) {
			s += " ..."
		}
		return s
	}
	return t.Type.String()
}

func describe(b Block) string {
	c, err := ParseCall(b)
	if err != nil {
		var sb strings.Builder
		fmt.Fprintf(&sb, "hdr=%c", b.Header)
		for _, r := range b.Records {
			fmt.Fprintf(&sb, " %s=%q", r.ID, DecodeLatin1(r.Data))
		}
		return sb.String()
	}
	return c.String()
}

// String shows the call the way the serial monitor prints it.
func (c Call) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "hdr=%c call=%q", c.Header, DecodeLatin1(c.CallAddress))
	if c.Message != "" {
		fmt.Fprintf(&sb, " msg=%q", DecodeLatin1(c.Message))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"beep", c.Beep}, {"type", c.CallType}, {"tx", c.Transmissions}, {"prio", c.Priority}, {"status", c.Status}, {"system", c.SystemStatus}} {
		if f.v != 0 {
			fmt.Fprintf(&sb, " %s=%d", f.name, f.v)
		}
	}
	return sb.String()
}

// Hex formats bytes as space-separated upper-case hex, as in the test vectors.
func Hex(p []byte) string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 0, 3*len(p))
	for i, c := range p {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[c>>4], digits[c&15])
	}
	return string(b)
}

const (
	maxNoiseShown = 64
	// noiseReport is how many discarded bytes are reported together, so a noisy line
	// shows up in the monitor even when no valid token follows.
	noiseReport = 256
)

type framerState uint8

const (
	hunting framerState = iota // between blocks
	inBlock                    // after SOH, before ETX
	wantBCC                    // after ETX: the next byte is the BCC, whatever it is
)

// Framer turns the byte stream of an ESPA line into tokens. Feed it bytes as they
// arrive; it keeps at most one block (MaxBlock bytes) and a little noise, so it never
// grows. The zero value is ready to use.
//
// It resynchronises on SOH after noise, reads exactly one byte after ETX as the BCC
// even when it equals a control character, and drops a half frame when a link
// character (SOH, EOT, ENQ, ACK, NAK) shows that the sender started over.
type Framer struct {
	state  framerState
	buf    []byte // the block so far, from SOH
	prefix byte   // a digit that may be the address of an ENQ or the reason of a NAK
	noise  []byte
	noiseN int
}

// Feed processes p, calling emit for every token completed, in order. Tokens do not
// refer to the framer's buffers and may be kept.
func (f *Framer) Feed(p []byte, emit func(Token)) {
	for _, c := range p {
		f.feed(c, emit)
	}
}

// Flush reports a pending half frame or noise, as at the end of input or after the
// line went quiet, and starts over.
func (f *Framer) Flush(emit func(Token)) {
	if f.state != hunting {
		f.discard(f.buf, ErrTruncated, emit)
		f.buf = f.buf[:0]
		f.state = hunting
	}
	f.dropPrefix()
	f.flushNoise(emit)
}

// Reset forgets everything without reporting it.
func (f *Framer) Reset() {
	f.state = hunting
	f.buf = f.buf[:0]
	f.prefix = 0
	f.noise = f.noise[:0]
	f.noiseN = 0
}

// Busy reports whether the framer holds part of a token.
func (f *Framer) Busy() bool { return f.state != hunting || f.prefix != 0 || f.noiseN > 0 }

func (f *Framer) feed(c byte, emit func(Token)) {
	switch f.state {
	case wantBCC:
		f.endBlock(c, emit)
		return
	case inBlock:
		switch c {
		case SOH, EOT, ENQ, ACK, NAK:
			// The sender started over: what we hold is half a frame. A digit just
			// before ENQ or NAK is the address or reason that belongs to it.
			part := f.buf
			var digit byte
			if (c == ENQ || c == NAK) && len(part) > 1 && isDigit(part[len(part)-1]) {
				digit = part[len(part)-1]
				part = part[:len(part)-1]
			}
			f.discard(part, ErrTruncated, emit)
			f.buf = f.buf[:0]
			f.state = hunting
			f.prefix = digit
			f.feed(c, emit)
			return
		}
		if len(f.buf) >= MaxBlock-1 { // room for the BCC
			f.discard(f.buf, ErrOversize, emit)
			f.buf = f.buf[:0]
			f.state = hunting
			f.feed(c, emit)
			return
		}
		f.buf = append(f.buf, c)
		if c == ETX {
			f.state = wantBCC
		}
		return
	}

	// hunting
	switch c {
	case SOH:
		f.dropPrefix()
		f.flushNoise(emit)
		if f.buf == nil {
			f.buf = make([]byte, 0, MaxBlock)
		}
		f.buf = append(f.buf[:0], SOH)
		f.state = inBlock
	case ENQ, NAK:
		p := f.prefix
		f.prefix = 0
		f.flushNoise(emit)
		if c == ENQ {
			emit(Token{Type: TokenENQ, Addr: p})
		} else {
			emit(Token{Type: TokenNAK, Digit: p})
		}
	case ACK, EOT:
		f.dropPrefix()
		f.flushNoise(emit)
		if c == ACK {
			emit(Token{Type: TokenACK})
		} else {
			emit(Token{Type: TokenEOT})
		}
	default:
		f.dropPrefix()
		if isDigit(c) {
			f.prefix = c
			return
		}
		f.addNoise(c, emit)
	}
}

func (f *Framer) endBlock(bcc byte, emit func(Token)) {
	f.buf = append(f.buf, bcc)
	raw := append([]byte(nil), f.buf...)
	f.buf = f.buf[:0]
	f.state = hunting
	body := raw[1 : len(raw)-1] // after SOH through ETX
	if want := BCC(body); want != bcc {
		emit(Token{Type: TokenBadBCC, Raw: raw, Want: want, Got: bcc})
		return
	}
	b, err := parseBody(body[:len(body)-1])
	if err != nil {
		emit(Token{Type: TokenInvalid, Raw: raw, Err: err})
		return
	}
	emit(Token{Type: TokenBlock, Block: b, Raw: raw})
}

// dropPrefix turns a pending digit that no ENQ or NAK followed into noise.
func (f *Framer) dropPrefix() {
	if f.prefix != 0 {
		p := f.prefix
		f.prefix = 0
		f.addNoise(p, nil)
	}
}

func (f *Framer) addNoise(c byte, emit func(Token)) {
	if len(f.noise) < maxNoiseShown {
		f.noise = append(f.noise, c)
	}
	f.noiseN++
	if f.noiseN >= noiseReport && emit != nil {
		f.flushNoise(emit)
	}
}

func (f *Framer) flushNoise(emit func(Token)) {
	if f.noiseN == 0 {
		return
	}
	emit(Token{Type: TokenNoise, Raw: append([]byte(nil), f.noise...), N: f.noiseN, Err: ErrNoise})
	f.noise = f.noise[:0]
	f.noiseN = 0
}

func (f *Framer) discard(part []byte, why error, emit func(Token)) {
	f.flushNoise(emit)
	if len(part) == 0 {
		return
	}
	shown := part
	if len(shown) > maxNoiseShown {
		shown = shown[:maxNoiseShown]
	}
	emit(Token{Type: TokenNoise, Raw: append([]byte(nil), shown...), N: len(part), Err: why})
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
