package espa

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/vakt/vakt"
)

// Rule maps calls to a transmitter. A rule matches when its CallAddress is empty or
// equals the call address, and its Text is nil or finds a match in the display message
// (unanchored; the message is matched as UTF-8). Transmitter is a template: $1, ${1}
// and ${name} refer to Text's groups (regexp.Expand), ${call} to the call address.
type Rule struct {
	CallAddress string
	Text        *regexp.Regexp
	Transmitter string
}

// NewRule compiles a rule from configuration.
func NewRule(callAddress, text, transmitter string) (Rule, error) {
	r := Rule{CallAddress: callAddress, Transmitter: transmitter}
	if strings.TrimSpace(transmitter) == "" {
		return r, fmt.Errorf("transmitter: empty")
	}
	if text != "" {
		re, err := regexp.Compile(text)
		if err != nil {
			return r, fmt.Errorf("text: %w", err)
		}
		r.Text = re
	}
	return r, nil
}

// Mapper chooses the transmitter for a call: the first rule that matches wins, and a
// call no rule maps goes to Fallback, so no call is ever dropped.
type Mapper struct {
	Rules    []Rule
	Fallback vakt.TransmitterID
	// Known, when set, rejects a rule result that names no configured transmitter
	// (say "room-999" from a display text): the next rule is tried, then Fallback,
	// instead of raising an alarm nobody can place.
	Known func(vakt.TransmitterID) bool
}

// Map returns the transmitter for c and whether it is the fallback.
func (m Mapper) Map(c Call) (vakt.TransmitterID, bool) {
	msg := DecodeLatin1(c.Message)
	call := DecodeLatin1(c.CallAddress)
	for _, r := range m.Rules {
		if r.CallAddress != "" && r.CallAddress != call {
			continue
		}
		tmpl := strings.ReplaceAll(r.Transmitter, "${call}", strings.ReplaceAll(call, "$", "$$"))
		var id string
		if r.Text != nil {
			loc := r.Text.FindStringSubmatchIndex(msg)
			if loc == nil {
				continue
			}
			id = string(r.Text.ExpandString(nil, tmpl, msg, loc))
		} else {
			id = strings.ReplaceAll(tmpl, "$$", "$")
		}
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		tid := vakt.TransmitterID(id)
		if m.Known != nil && !m.Known(tid) {
			continue
		}
		return tid, false
	}
	return m.Fallback, true
}

// EventFor is the event a call raises on transmitter id: call type 1 (reset) cancels;
// priority 1 is an emergency, 2 a high-priority call, 3 or none a normal call. Text is
// the display message in UTF-8 and Raw a copy of the frame. The caller fills in
// Source, SourceID and the receive times.
func EventFor(c Call, id vakt.TransmitterID, raw []byte) vakt.Event {
	ev := vakt.Event{
		Transmitter: id,
		Kind:        vakt.EventCall,
		Text:        DecodeLatin1(c.Message),
		Raw:         append([]byte(nil), raw...),
	}
	switch {
	case c.CallType == CallReset:
		ev.Kind = vakt.EventCancel
	case c.Priority == 1:
		ev.Kind = vakt.EventEmergency
		ev.Priority = vakt.PriorityEmergency
	case c.Priority == 2:
		ev.Priority = vakt.PriorityHigh
	case c.Priority == 3:
		ev.Priority = vakt.PriorityNormal
	}
	return ev
}
