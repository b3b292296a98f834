package dc09

import (
	"fmt"
	"strconv"
	"strings"
)

// Contact ID qualifiers.
const (
	NewEvent = 1
	Restore  = 3
)

// Contact ID event codes a care facility needs (see docs/arc.md for the mapping
// from Vakt's alarm kinds).
const (
	Medical           = 100
	PersonalEmergency = 101
	LowBattery        = 302
	SupervisionLoss   = 381
	PeriodicTest      = 602
)

// ContactID is the data of an ADM-CID message: "QEEE GG ZZZ".
type ContactID struct {
	Qualifier int // 1 new event, 3 restore
	Event     int // 3 digits, e.g. 101 personal emergency
	Group     int // 2 digits, partition or group
	Zone      int // 3 digits, zone or user, e.g. the room
}

// String is the data field without the account, e.g. "1101 01 015".
func (c ContactID) String() string {
	return fmt.Sprintf("%d%03d %02d %03d", c.Qualifier, c.Event, c.Group, c.Zone)
}

// Message is the ADM-CID message carrying c.
func (c ContactID) Message() Message { return Message{ID: ADMCID, Data: c.String()} }

func (c ContactID) check() error {
	if c.Qualifier < 1 || c.Qualifier > 9 || c.Event < 0 || c.Event > 999 || c.Group < 0 || c.Group > 99 || c.Zone < 0 || c.Zone > 999 {
		return fmt.Errorf("dc09: contact id %d/%d/%d/%d out of range (Q 1-9, event 0-999, group 0-99, zone 0-999)", c.Qualifier, c.Event, c.Group, c.Zone)
	}
	return nil
}

// ParseContactID reads an ADM-CID data field, "#<account>|QEEE GG ZZZ" or without
// the account, and returns the account ("" if absent) and the event.
func ParseContactID(data string) (string, ContactID, error) {
	acct, rest := splitAccount(data)
	var c ContactID
	if len(rest) != 11 || rest[4] != ' ' || rest[7] != ' ' || !digits(rest[:4]) || !digits(rest[5:7]) || !digits(rest[8:]) {
		return acct, c, fmt.Errorf("%w: contact id %q is not QEEE GG ZZZ", ErrFormat, rest)
	}
	c.Qualifier = int(rest[0] - '0')
	c.Event, _ = strconv.Atoi(rest[1:4])
	c.Group, _ = strconv.Atoi(rest[5:7])
	c.Zone, _ = strconv.Atoi(rest[8:])
	return acct, c, nil
}

// SIAEvent is the data of a SIA-DCS message: "Nri<group>/<code><zone>", e.g.
// "Nri1/MA015" for a medical alarm in zone 15 of group 1.
type SIAEvent struct {
	Group int    // ri, 0 omits it
	Code  string // two letters, e.g. "MA" medical alarm, "MH" medical restore
	Zone  string // address digits, e.g. "015"
}

// String is the data field without the account.
func (e SIAEvent) String() string {
	if e.Group > 0 {
		return fmt.Sprintf("Nri%d/%s%s", e.Group, e.Code, e.Zone)
	}
	return "N" + e.Code + e.Zone
}

// Message is the SIA-DCS message carrying e.
func (e SIAEvent) Message() Message { return Message{ID: SIADCS, Data: e.String()} }

// ParseSIA reads a SIA-DCS data field holding one event ("#1234|Nri1/MA015").
func ParseSIA(data string) (string, SIAEvent, error) {
	acct, rest := splitAccount(data)
	var e SIAEvent
	bad := fmt.Errorf("%w: sia data %q is not N[ri<group>/]<code><zone>", ErrFormat, rest)
	if !strings.HasPrefix(rest, "N") {
		return acct, e, bad
	}
	rest = rest[1:]
	if g, ok := strings.CutPrefix(rest, "ri"); ok {
		i := strings.IndexByte(g, '/')
		if i <= 0 || !digits(g[:i]) || i > 4 {
			return acct, e, bad
		}
		e.Group, _ = strconv.Atoi(g[:i])
		rest = g[i+1:]
	}
	if len(rest) < 2 || !isUpper(rest[0]) || !isUpper(rest[1]) || !digits(rest[2:]) {
		return acct, e, bad
	}
	e.Code, e.Zone = rest[:2], rest[2:]
	return acct, e, nil
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

func splitAccount(data string) (acct, rest string) {
	if a, r, ok := strings.Cut(data, "|"); ok && strings.HasPrefix(a, "#") {
		return a[1:], r
	}
	return "", data
}
