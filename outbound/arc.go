// Package outbound holds the targets of the engine's outbound seam (vakt.Outbound):
// the alarm receiving centre over SIA DC-09 and the ESPA paging system. The engine
// owns the durable queue and decides when; a target decides how.
package outbound

import (
	"context"
	"fmt"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/outbound/dc09"
)

// ARC delivers forwards and restores to an alarm receiving centre over a dc09.Link.
// Only the account (the Link's), the event code, the group and the zone go out (G7):
// the message is built from numbers, so no name can reach it.
type ARC struct {
	Link   *dc09.Link
	Format string // "adm-cid" (default) or "sia-dcs"
	Group  int
}

// Deliver sends d and returns once the centre ACKed it ("ACK seq 0042"). The Link
// retries with d.Seq until the ACK or ctx ends; a DUH is a refusal for good.
func (a *ARC) Deliver(ctx context.Context, d vakt.Delivery) (string, error) {
	m, err := Message(d, a.Format, a.Group)
	if err != nil {
		return "", err
	}
	seq, err := a.Link.Send(ctx, m)
	if err != nil {
		return "", fmt.Errorf("arc: delivery %s: %w", d.ID, err)
	}
	return fmt.Sprintf("ACK seq %04d", seq), nil
}

// Message is the DC-09 message of a forward or restore (docs/arc.md's mapping).
func Message(d vakt.Delivery, format string, group int) (dc09.Message, error) {
	if d.Zone < 0 || d.Zone > 999 {
		return dc09.Message{}, fmt.Errorf("arc: delivery %s: zone %d outside 0-999: set arc.zones for the room", d.ID, d.Zone)
	}
	cid, sia := codes(d.Kind)
	var m dc09.Message
	switch format {
	case "", "adm-cid":
		q := dc09.NewEvent
		if d.Restore {
			q = dc09.Restore
		}
		m = dc09.ContactID{Qualifier: q, Event: cid, Group: group, Zone: d.Zone}.Message()
	case "sia-dcs":
		code := sia[0]
		if d.Restore {
			code = sia[1]
		}
		m = dc09.SIAEvent{Group: group, Code: code, Zone: fmt.Sprintf("%03d", d.Zone)}.Message()
	default:
		return dc09.Message{}, fmt.Errorf("arc: format %q: use adm-cid or sia-dcs", format)
	}
	m.Seq = d.Seq
	return m, nil
}

// codes maps an alarm kind to its Contact ID event and SIA new/restore codes.
func codes(k vakt.EventKind) (int, [2]string) {
	switch k {
	case vakt.EventEmergency, vakt.EventFall:
		return dc09.PersonalEmergency, [2]string{"QA", "QH"}
	case vakt.EventLowBattery:
		return dc09.LowBattery, [2]string{"YT", "YR"}
	case vakt.EventOffline:
		return dc09.SupervisionLoss, [2]string{"YC", "YK"}
	default:
		return dc09.Medical, [2]string{"MA", "MH"}
	}
}
