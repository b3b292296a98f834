// Package dc09 speaks SIA DC-09 to an alarm receiving centre (ARC): the frame codec
// (CRC-16/ARC, length, optional AES-CBC), Contact ID and SIA-DCS data, a client Link
// that retries with the same sequence number until the receiver acknowledges, and a
// small Receiver for demos and tests.
//
// It knows nothing about alarms, staff or rooms beyond the few fields DC-09 carries:
// account, event code, group and zone. The caller maps its own alarm kinds onto those
// (see docs/arc.md); names never pass through here (privacy requirement G7).
//
// A frame on the wire:
//
//	LF <crc 4 hex> <0LLL 4 hex> "<id>" <seq 4 digits> [R<receiver>] L<line> #<account> [<data>] [<extended>]... [_HH:MM:SS,MM-DD-YYYY] CR
//
// The CRC and the length cover the bytes from the opening '"' up to, not including, CR.
package dc09

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Message ids. A leading '*' on the wire marks an encrypted frame; Frame.Encrypted
// carries that flag and ID never includes the '*'.
const (
	SIADCS = "SIA-DCS"
	ADMCID = "ADM-CID"
	Null   = "NULL"
	Ack    = "ACK"
	Nak    = "NAK"
	Duh    = "DUH"
)

// Bounds. The length field is "0LLL", so a body is at most 0x0FFF bytes; a whole
// frame adds LF, 8 header characters and CR.
const (
	MaxBody  = 0x0FFF
	MaxFrame = MaxBody + 10
	// MaxSeq is the highest sequence number; a Link wraps from MaxSeq to 1.
	MaxSeq = 9999
)

// Errors a parser returns; they are wrapped with detail, test with errors.Is.
var (
	ErrFormat    = errors.New("dc09: malformed frame")
	ErrCRC       = errors.New("dc09: crc mismatch")
	ErrLength    = errors.New("dc09: length mismatch")
	ErrTooLong   = errors.New("dc09: frame too long")
	ErrUnknownID = errors.New("dc09: unknown message id")
	ErrNoKey     = errors.New("dc09: encrypted frame but no key configured")
	ErrDecrypt   = errors.New("dc09: cannot decrypt frame (wrong key?)")
)

// Frame is one DC-09 message, decoded. Empty Receiver or Account means the field is
// absent on the wire; Line is always present (an empty Line encodes as "L0").
type Frame struct {
	ID        string
	Encrypted bool
	Seq       int
	Receiver  string // without the 'R'
	Line      string // without the 'L'
	Account   string // without the '#'
	// Data is what stands inside the first brackets, e.g. "#1234|1101 01 015".
	Data string
	// Extended holds further bracketed fields, without their brackets.
	Extended []string
	// Time is the optional timestamp (UTC, whole seconds); zero means absent.
	// Encrypted frames always carry one.
	Time time.Time
}

// Known reports whether id is one this package understands.
func Known(id string) bool {
	switch id {
	case SIADCS, ADMCID, Null, Ack, Nak, Duh:
		return true
	}
	return false
}

// CRC returns the CRC-16/ARC of b (reflected polynomial 0xA001, init 0).
func CRC(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc>>8 ^ crcTable[byte(crc)^c]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// Encode returns the frame's bytes, LF to CR. key is required when f.Encrypted
// (16, 24 or 32 bytes: AES-128/192/256) and ignored otherwise.
func Encode(f Frame, key []byte) ([]byte, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	body := make([]byte, 0, 64+len(f.Data))
	body = append(body, '"')
	if f.Encrypted {
		body = append(body, '*')
	}
	body = append(body, f.ID...)
	body = append(body, '"')
	body = fmt.Appendf(body, "%04d", f.Seq)
	if f.Receiver != "" {
		body = append(body, 'R')
		body = append(body, f.Receiver...)
	}
	body = append(body, 'L')
	if f.Line == "" {
		body = append(body, '0')
	} else {
		body = append(body, f.Line...)
	}
	if f.Account != "" {
		body = append(body, '#')
		body = append(body, f.Account...)
	}
	body = append(body, '[')
	content := f.content()
	if f.Encrypted {
		if f.Time.IsZero() {
			return nil, fmt.Errorf("%w: an encrypted frame needs a timestamp", ErrFormat)
		}
		hexed, err := encrypt(key, content)
		if err != nil {
			return nil, err
		}
		body = append(body, hexed...)
	} else {
		body = append(body, content...)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrTooLong, len(body), MaxBody)
	}
	out := make([]byte, 0, len(body)+10)
	out = append(out, '\n')
	out = fmt.Appendf(out, "%04X%04X", CRC(body), len(body))
	out = append(out, body...)
	return append(out, '\r'), nil
}

// content is everything after the opening '[': data, ']', extended fields, timestamp.
// It is also exactly what gets encrypted.
func (f Frame) content() []byte {
	b := make([]byte, 0, len(f.Data)+32)
	b = append(b, f.Data...)
	b = append(b, ']')
	for _, x := range f.Extended {
		b = append(b, '[')
		b = append(b, x...)
		b = append(b, ']')
	}
	if !f.Time.IsZero() {
		b = append(b, '_')
		t := f.Time.UTC()
		b = fmt.Appendf(b, "%02d:%02d:%02d,%02d-%02d-%04d", t.Hour(), t.Minute(), t.Second(), t.Month(), t.Day(), t.Year())
	}
	return b
}

func (f Frame) check() error {
	switch {
	case f.ID == "" || len(f.ID) > 16 || !printable(f.ID, `"*[]`):
		return fmt.Errorf("%w: id %q", ErrFormat, f.ID)
	case f.Seq < 0 || f.Seq > MaxSeq:
		return fmt.Errorf("%w: sequence %d outside 0..%d", ErrFormat, f.Seq, MaxSeq)
	case len(f.Receiver) > 6 || !isHex(f.Receiver):
		return fmt.Errorf("%w: receiver %q must be 1-6 hex digits", ErrFormat, f.Receiver)
	case len(f.Line) > 6 || !isHex(f.Line):
		return fmt.Errorf("%w: line %q must be 1-6 hex digits", ErrFormat, f.Line)
	case len(f.Account) > 16 || !alnum(f.Account):
		return fmt.Errorf("%w: account %q must be 3-16 letters or digits", ErrFormat, f.Account)
	case !printable(f.Data, "[]"):
		return fmt.Errorf("%w: data must be printable ASCII without brackets", ErrFormat)
	}
	for _, x := range f.Extended {
		if !printable(x, "[]") {
			return fmt.Errorf("%w: extended data must be printable ASCII without brackets", ErrFormat)
		}
	}
	return nil
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func printable(s, except string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		for j := 0; j < len(except); j++ {
			if c == except[j] {
				return false
			}
		}
	}
	return true
}

// Parse decodes one whole frame (LF to CR). key decrypts '*' frames; with no key an
// encrypted frame yields ErrNoKey. On ErrUnknownID, ErrNoKey and ErrDecrypt the
// returned Frame still holds the header (id, sequence, receiver, line, account) so a
// receiver can answer DUH or NAK to the right sequence. It never panics.
func Parse(b []byte, key []byte) (Frame, error) {
	var f Frame
	if len(b) > MaxFrame {
		return f, fmt.Errorf("%w: %d bytes", ErrTooLong, len(b))
	}
	if len(b) < 10 || b[0] != '\n' || b[len(b)-1] != '\r' {
		return f, fmt.Errorf("%w: a frame runs from LF to CR", ErrFormat)
	}
	crc, err1 := strconv.ParseUint(string(b[1:5]), 16, 16)
	n, err2 := strconv.ParseUint(string(b[5:9]), 16, 16)
	if err1 != nil || err2 != nil || b[5] != '0' {
		return f, fmt.Errorf("%w: header %q is not <crc 4 hex><0LLL>", ErrFormat, b[1:9])
	}
	body := b[9 : len(b)-1]
	if int(n) != len(body) {
		return f, fmt.Errorf("%w: header says %d bytes, body has %d", ErrLength, n, len(body))
	}
	if got := CRC(body); uint16(crc) != got {
		return f, fmt.Errorf("%w: header says %04X, body gives %04X", ErrCRC, crc, got)
	}
	return parseBody(body, key)
}

func parseBody(body []byte, key []byte) (Frame, error) {
	var f Frame
	s := string(body)
	bad := func(what string) (Frame, error) { return f, fmt.Errorf("%w: %s", ErrFormat, what) }
	if len(s) < 2 || s[0] != '"' {
		return bad("body must start with '\"'")
	}
	end := 1
	for end < len(s) && s[end] != '"' {
		end++
	}
	if end == len(s) || end == 1 {
		return bad("unterminated id")
	}
	id := s[1:end]
	if id[0] == '*' {
		f.Encrypted = true
		id = id[1:]
	}
	if id == "" || !printable(id, "[]") {
		return bad("bad id")
	}
	f.ID = id
	s = s[end+1:]
	if len(s) < 4 || !digits(s[:4]) {
		return bad("sequence must be 4 digits")
	}
	f.Seq, _ = strconv.Atoi(s[:4])
	s = s[4:]
	field := func(prefix byte, ok func(string) bool) (string, bool) {
		if len(s) == 0 || s[0] != prefix {
			return "", false
		}
		i := 1
		for i < len(s) && i <= 16 && ok(s[i:i+1]) {
			i++
		}
		v := s[1:i]
		s = s[i:]
		return v, true
	}
	if v, ok := field('R', isHex); ok {
		if v == "" || len(v) > 6 {
			return bad("receiver must be 1-6 characters")
		}
		f.Receiver = v
	}
	v, ok := field('L', isHex)
	if !ok || v == "" || len(v) > 6 {
		return bad("line must be L followed by 1-6 characters")
	}
	f.Line = v
	if v, ok := field('#', alnum); ok {
		if v == "" {
			return bad("empty account")
		}
		f.Account = v
	}
	// A receiver's NAK carries "A0" after the line where an account would stand
	// ("NAK"0000R0L0A0[]...); it reads as line "0A0", which nothing relies on.
	if len(s) == 0 || s[0] != '[' {
		return bad("missing '['")
	}
	s = s[1:]
	if !Known(f.ID) {
		return f, fmt.Errorf("%w: %q", ErrUnknownID, f.ID)
	}
	if f.Encrypted {
		if len(key) == 0 {
			return f, ErrNoKey
		}
		plain, err := decrypt(key, s)
		if err != nil {
			return f, err
		}
		s = plain
	}
	if err := f.parseContent(s); err != nil {
		return f, err
	}
	if f.Encrypted && f.Time.IsZero() {
		return f, fmt.Errorf("%w: encrypted frame without timestamp", ErrFormat)
	}
	return f, nil
}

// parseContent reads "data]" [ "[x]" ... ] [ "_HH:MM:SS,MM-DD-YYYY" ].
func (f *Frame) parseContent(s string) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrFormat, what) }
	i := 0
	for i < len(s) && s[i] != ']' {
		i++
	}
	if i == len(s) {
		return bad("missing ']' after data")
	}
	if !printable(s[:i], "[") {
		return bad("data is not printable ASCII")
	}
	f.Data = s[:i]
	s = s[i+1:]
	for len(s) > 0 && s[0] == '[' {
		j := 1
		for j < len(s) && s[j] != ']' {
			j++
		}
		if j == len(s) || !printable(s[1:j], "[") {
			return bad("bad extended data")
		}
		if len(f.Extended) == 16 {
			return bad("more than 16 extended fields")
		}
		f.Extended = append(f.Extended, s[1:j])
		s = s[j+1:]
	}
	if len(s) == 0 {
		return nil
	}
	if s[0] != '_' || len(s) != 20 {
		return bad("trailing bytes after data")
	}
	t, ok := parseTime(s[1:])
	if !ok {
		return bad("timestamp is not _HH:MM:SS,MM-DD-YYYY")
	}
	f.Time = t
	return nil
}

// parseTime reads HH:MM:SS,MM-DD-YYYY by position: time.Parse takes ",0" in that
// layout for a fractional second.
func parseTime(s string) (time.Time, bool) {
	if len(s) != 19 || s[2] != ':' || s[5] != ':' || s[8] != ',' || s[11] != '-' || s[14] != '-' {
		return time.Time{}, false
	}
	n := func(a, b int) int {
		if !digits(s[a:b]) {
			return -1
		}
		v, _ := strconv.Atoi(s[a:b])
		return v
	}
	hh, mi, ss, mo, dd, yy := n(0, 2), n(3, 5), n(6, 8), n(9, 11), n(12, 14), n(15, 19)
	if hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59 || mo < 1 || mo > 12 || dd < 1 || dd > 31 || yy < 0 {
		return time.Time{}, false
	}
	t := time.Date(yy, time.Month(mo), dd, hh, mi, ss, 0, time.UTC)
	if t.Day() != dd {
		return time.Time{}, false // 02-31 and the like
	}
	return t, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ReadFrame returns the next frame from r, LF to CR, skipping bytes before an LF.
// A second LF before CR restarts the frame (half frames cost nothing but themselves);
// a frame longer than MaxFrame is discarded up to its CR and reported as ErrTooLong,
// after which reading can go on.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == '\n' {
			break
		}
	}
	buf := []byte{'\n'}
	over := false
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		switch c {
		case '\n':
			buf, over = buf[:1], false
			continue
		case '\r':
			if over {
				return nil, ErrTooLong
			}
			return append(buf, '\r'), nil
		}
		if over {
			continue
		}
		if len(buf) >= MaxFrame-1 {
			over = true
			continue
		}
		buf = append(buf, c)
	}
}
