package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	vakt "github.com/vakt/vakt"
)

// AcknowledgeOutbox records that the cloud holds every outbox entry up to upTo
// durably (the sync uploader's acknowledgement): one commit deletes them and
// stores upTo as the acknowledged seq. Acknowledgements queued together commit
// once, with the highest seq; a lower one than already stored changes nothing.
func (e *Engine) AcknowledgeOutbox(ctx context.Context, upTo int64) error {
	if upTo <= 0 {
		return fmt.Errorf("acknowledge outbox up to %d: the seq must be positive", upTo)
	}
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, _ time.Time) (struct{}, error) {
		b.OutboxAckedUpTo = max(b.OutboxAckedUpTo, upTo)
		return struct{}{}, nil
	})
	return err
}

// alarmRecord is the outbox body for an alarm change: ids and facts only, never
// names or positions (positions never leave the gateway).
type alarmRecord struct {
	ID          vakt.AlarmID       `json:"id"`
	Transmitter vakt.TransmitterID `json:"transmitter"`
	Kind        vakt.EventKind     `json:"kind"`
	Priority    vakt.Priority      `json:"priority"`
	State       vakt.AlarmState    `json:"state"`
	Count       int                `json:"count"`
	Tier        int                `json:"tier"`
	Assignee    vakt.StaffID       `json:"assignee,omitempty"`
	RaisedAt    time.Time          `json:"raised_at"`
	At          time.Time          `json:"at"`
	Forwarded   bool               `json:"forwarded,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are marshalled
	}
	return b
}
