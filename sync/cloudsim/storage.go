package cloudsim

import (
	"context"
	"errors"
	"fmt"

	"github.com/vakt/vakt/sync/wire"
)

// Storage is where the reference cloud keeps what it accepted. The SQLite backend is
// in package sqlitestore; a PostgreSQL one implements the same methods. Every method
// is safe for concurrent use.
type Storage interface {
	// Append stores the entries that follow after in the gateway's sequence, in one
	// transaction, and returns what is now acknowledged. Entries at or below the
	// acknowledged seq are repeats: acknowledged again if their content is the same
	// (never stored twice), a *RefusedError with wire.CodeConflict if it differs.
	// after beyond the acknowledged seq is a *RefusedError with wire.CodeGap.
	// take > 0 stores at most take new entries (the fault "partial").
	Append(ctx context.Context, gateway string, after int64, entries []wire.Envelope, take int) (wire.Ack, error)
	// State is the gateway's acknowledged seq and audit head.
	State(ctx context.Context, gateway string) (wire.State, error)
	// Count is the number of stored entries of the gateway.
	Count(ctx context.Context, gateway string) (int64, error)

	// Directory returns the directory changes after cursor, at most limit.
	Directory(ctx context.Context, gateway, cursor string, limit int) (wire.DirectoryPage, error)
	// PutStaff adds or replaces a staff member; RemoveStaff removes one;
	// RequestErasure queues an erasure request and returns its id.
	PutStaff(ctx context.Context, gateway string, s wire.Staff) error
	RemoveStaff(ctx context.Context, gateway, id string) error
	RequestErasure(ctx context.Context, gateway, id string) (string, error)

	Close() error
}

// RefusedError is a request the cloud refuses by the contract's rules (not a fault
// of the cloud): a gap, a conflicting repeat, a bad cursor.
type RefusedError struct {
	Code    string // wire.CodeGap, wire.CodeConflict, wire.CodeMalformed
	Acked   int64
	Message string
}

func (e *RefusedError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// ErrNotFound is returned for unknown staff ids.
var ErrNotFound = errors.New("cloudsim: not found")
