// Package espa speaks ESPA 4.4.4, the serial protocol nurse call systems and paging
// systems use to hand calls to each other: block encoding, an incremental framer for
// the byte stream, the call view of a block, and the rules that map calls to Vakt
// transmitters. It is pure protocol: no I/O, standard library and the root package only.
// The serial line itself lives in drivers/serial.
package espa

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Control characters of the protocol (ISO 1745 basic mode, IA5).
const (
	SOH byte = 0x01 // start of header
	STX byte = 0x02 // start of text, ends the header
	ETX byte = 0x03 // end of text; the BCC follows
	EOT byte = 0x04 // end of transaction
	ENQ byte = 0x05 // <address> ENQ polls or selects a station
	ACK byte = 0x06 // positive reply
	NAK byte = 0x15 // negative reply, optionally prefixed by a reason digit
	US  byte = 0x1F // between data identifier and data
	RS  byte = 0x1E // between records
)

// NAK reasons, sent as the digit before NAK.
const (
	NAKTransmission byte = '1' // bad character or BCC: send the block again
	NAKBusy         byte = '2' // queue full: try later
	NAKInvalid      byte = '3' // type or content not understood
)

// Block headers.
const (
	HeaderCall           byte = '1' // call to pager
	HeaderStatus         byte = '2' // status information
	HeaderStatusRequest  byte = '3' // status request
	HeaderSubscriberCall byte = '4' // call to subscriber line
	HeaderManufacturer   byte = '5' // manufacturer specific
)

// Data identifiers of the records.
const (
	RecordCallAddress   = "1" // up to 16 characters
	RecordMessage       = "2" // display message, up to 128 characters
	RecordBeep          = "3" // beep coding 1..9
	RecordCallType      = "4" // 1 reset, 2 speech, 3 standard
	RecordTransmissions = "5" // number of transmissions
	RecordPriority      = "6" // 1 alarm, 2 high, 3 normal
	RecordStatus        = "7" // call status, see Status*
	RecordSystemStatus  = "8" // 1 transmitter failure
)

// Call types (record 4).
const (
	CallReset    = 1
	CallSpeech   = 2
	CallStandard = 3
)

// Call status values (record 7).
const (
	StatusBusy         = 1
	StatusQueued       = 2
	StatusPaged        = 3
	StatusAbsent       = 4
	StatusTerminated   = 5
	StatusAcknowledged = 6
	StatusSpeech       = 7
	StatusOpenPaged    = 71
	StatusOpenAbsent   = 72
	StatusFault        = 8
)

// Field limits from the specification.
const (
	MaxCallAddress = 16
	MaxMessage     = 128
	// MaxBlock bounds a block from SOH to BCC. The largest legal block is about 200
	// bytes; anything longer is noise or a runaway sender, and the framer resyncs.
	MaxBlock = 512
)

// ErrInvalid marks a block that arrived intact but cannot be understood: the receiver
// answers '3' NAK.
var ErrInvalid = errors.New("espa: invalid block")

// Record is one data identifier and its data. Data holds the bytes as sent
// (Latin-1 in practice); see DecodeLatin1 for display.
type Record struct {
	ID   string
	Data string
}

// Block is one ESPA data block.
type Block struct {
	Header  byte
	Records []Record
}

// Get returns the data of the last record with the given id.
func (b Block) Get(id string) (string, bool) {
	for i := len(b.Records) - 1; i >= 0; i-- {
		if b.Records[i].ID == id {
			return b.Records[i].Data, true
		}
	}
	return "", false
}

// BCC is the block check character: the XOR of p, which must be every byte after
// SOH up to and including ETX.
func BCC(p []byte) byte {
	var x byte
	for _, c := range p {
		x ^= c
	}
	return x
}

// Encode returns the block as sent on the line: SOH header STX id US data RS ... ETX
// BCC, records in the order given and no trailing RS. ESPA has no escaping: the
// builders (CallBlock, StatusBlock) keep control characters out of the data.
func Encode(b Block) []byte {
	n := 5
	for _, r := range b.Records {
		n += len(r.ID) + len(r.Data) + 2
	}
	out := make([]byte, 0, n)
	out = append(out, SOH, b.Header, STX)
	for i, r := range b.Records {
		if i > 0 {
			out = append(out, RS)
		}
		out = append(out, r.ID...)
		out = append(out, US)
		out = append(out, r.Data...)
	}
	out = append(out, ETX)
	return append(out, BCC(out[1:]))
}

// BCCError reports a block whose check character does not match.
type BCCError struct {
	Want, Got byte
}

func (e *BCCError) Error() string {
	return fmt.Sprintf("espa: bad BCC: want %02X, got %02X", e.Want, e.Got)
}

// Decode parses one complete frame, SOH through BCC. It returns a *BCCError for a
// bad check character and an error wrapping ErrInvalid for a malformed block.
func Decode(frame []byte) (Block, error) {
	if len(frame) < 4 || frame[0] != SOH || frame[len(frame)-2] != ETX {
		return Block{}, fmt.Errorf("%w: not a frame", ErrInvalid)
	}
	body := frame[1 : len(frame)-1]
	if want, got := BCC(body), frame[len(frame)-1]; want != got {
		return Block{}, &BCCError{Want: want, Got: got}
	}
	return parseBody(body[:len(body)-1])
}

// parseBody parses the bytes between SOH and ETX. It tolerates what real senders do:
// spaces around the header and record ids (Zenitel puts one after STX) and empty
// records (a trailing RS before ETX).
func parseBody(body []byte) (Block, error) {
	header, text, ok := strings.Cut(string(body), string(STX))
	if !ok {
		return Block{}, fmt.Errorf("%w: no STX", ErrInvalid)
	}
	header = strings.Trim(header, " ")
	if len(header) != 1 {
		return Block{}, fmt.Errorf("%w: header %q", ErrInvalid, header)
	}
	b := Block{Header: header[0]}
	n := 0
	for rec := range strings.SplitSeq(text, string(RS)) {
		n++
		if strings.Trim(rec, " ") == "" {
			continue
		}
		id, data, ok := strings.Cut(rec, string(US))
		if !ok {
			// Position and length only: a record's text can hold a resident's name,
			// and this error reaches the log.
			return Block{}, fmt.Errorf("%w: record %d (%d bytes) without US", ErrInvalid, n, len(rec))
		}
		id = strings.Trim(id, " ")
		if id == "" {
			return Block{}, fmt.Errorf("%w: record without identifier", ErrInvalid)
		}
		b.Records = append(b.Records, Record{ID: id, Data: data})
	}
	return b, nil
}

// DecodeLatin1 converts Latin-1 bytes (as sent on the line) to UTF-8.
func DecodeLatin1(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		sb.WriteRune(rune(s[i]))
	}
	return sb.String()
}

// EncodeLatin1 converts UTF-8 text to Latin-1 bytes for the line; characters Latin-1
// cannot hold become '?'.
func EncodeLatin1(s string) string {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xFF {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return string(b)
}

// Call is the meaning of a call or status block. Numeric fields are 0 when the
// record is absent (0 is reserved in the specification).
type Call struct {
	Header        byte
	CallAddress   string
	Message       string // as sent (Latin-1); DecodeLatin1 for display
	Beep          int
	CallType      int
	Transmissions int
	Priority      int
	Status        int // record 7
	SystemStatus  int // record 8
}

// ParseCall reads the call (or status information) a block carries. Blocks it cannot
// understand return an error wrapping ErrInvalid: an unknown or manufacturer-specific
// header, or a call without a call address.
//
// A numeric record that is not a number is left at 0 rather than refused: a call with
// a garbled beep code or priority is still a call, and a '3' NAK would make the call
// system give up on it.
func ParseCall(b Block) (Call, error) {
	switch b.Header {
	case HeaderCall, HeaderStatus, HeaderStatusRequest, HeaderSubscriberCall:
	default:
		return Call{}, fmt.Errorf("%w: header %q not understood", ErrInvalid, b.Header)
	}
	c := Call{Header: b.Header}
	for _, r := range b.Records {
		switch r.ID {
		case RecordCallAddress:
			c.CallAddress = strings.Trim(r.Data, " ")
		case RecordMessage:
			c.Message = r.Data
		case RecordBeep:
			c.Beep = number(r.Data)
		case RecordCallType:
			c.CallType = number(r.Data)
		case RecordTransmissions:
			c.Transmissions = number(r.Data)
		case RecordPriority:
			c.Priority = number(r.Data)
		case RecordStatus:
			c.Status = number(r.Data)
		case RecordSystemStatus:
			c.SystemStatus = number(r.Data)
		}
	}
	if (c.Header == HeaderCall || c.Header == HeaderSubscriberCall) && c.CallAddress == "" {
		return Call{}, fmt.Errorf("%w: call without call address", ErrInvalid)
	}
	return c, nil
}

func number(s string) int {
	n, err := strconv.Atoi(strings.Trim(s, " "))
	if err != nil || n < 0 || n > 999 {
		return 0
	}
	return n
}

// CallBlock builds the block for c: header c.Header (call to pager when 0), records in
// the canonical order 1..8, absent fields left out. The call address and message are
// cut to their limits and control characters become spaces, so the block always frames.
// Message is taken as Latin-1 bytes: convert with EncodeLatin1 first.
func CallBlock(c Call) Block {
	h := c.Header
	if h == 0 {
		h = HeaderCall
	}
	b := Block{Header: h}
	add := func(id, data string) { b.Records = append(b.Records, Record{ID: id, Data: data}) }
	addNum := func(id string, n int) {
		if n > 0 {
			add(id, strconv.Itoa(n))
		}
	}
	if c.CallAddress != "" {
		add(RecordCallAddress, sanitize(c.CallAddress, MaxCallAddress))
	}
	if c.Message != "" {
		add(RecordMessage, sanitize(c.Message, MaxMessage))
	}
	addNum(RecordBeep, c.Beep)
	addNum(RecordCallType, c.CallType)
	addNum(RecordTransmissions, c.Transmissions)
	addNum(RecordPriority, c.Priority)
	addNum(RecordStatus, c.Status)
	addNum(RecordSystemStatus, c.SystemStatus)
	return b
}

// StatusBlock builds a status-information block (header 2) telling the call system
// what became of the call to callAddress (status: StatusPaged, StatusAcknowledged, ...).
func StatusBlock(callAddress string, status int) Block {
	return Block{Header: HeaderStatus, Records: []Record{
		{ID: RecordCallAddress, Data: sanitize(callAddress, MaxCallAddress)},
		{ID: RecordStatus, Data: strconv.Itoa(status)},
	}}
}

func sanitize(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7F {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] == 0x7F {
					b[j] = ' '
				}
			}
			return string(b)
		}
	}
	return s
}
