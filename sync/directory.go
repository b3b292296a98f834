package sync

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	stdsync "sync"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/sync/wire"
)

// DirectoryChange is one page of directory changes with the cursor that follows it.
// Apply must apply every change and store Cursor in one transaction (one engine
// operation): after a crash the gateway resumes from the cursor it stored.
type DirectoryChange struct {
	Cursor  string
	Changes []wire.DirectoryChange
}

// ApplyFunc applies one page; the gateway wires it to an engine operation.
type ApplyFunc func(ctx context.Context, c DirectoryChange) error

// DirectoryOptions tune the Directory fetcher; zero values take the defaults.
type DirectoryOptions struct {
	Interval time.Duration // between polls [1m]; Refresh polls at once
	PageSize int           // changes per page [500]
	Backoff  Backoff       // [Base 1s, Max 5m]
	Clock    vakt.Clock
	Log      *slog.Logger
	OnFatal  func(err *Error)
}

// Directory polls the cloud's directory feed and hands each page to Apply.
type Directory struct {
	c       *Client
	apply   ApplyFunc
	opt     DirectoryOptions
	refresh chan struct{}

	mu     stdsync.Mutex
	health DirectoryHealth
}

// DirectoryHealth is the fetcher's part of the status page.
type DirectoryHealth struct {
	Cursor      string
	LastSuccess time.Time // last complete fetch (gateway clock)
	LastError   string
	Reason      string
	Fatal       bool
}

// NewDirectory returns a fetcher through c that hands pages to apply.
func NewDirectory(c *Client, apply ApplyFunc, opt DirectoryOptions) *Directory {
	if opt.Interval <= 0 {
		opt.Interval = time.Minute
	}
	if opt.PageSize <= 0 {
		opt.PageSize = 500
	}
	if opt.Backoff.Base <= 0 {
		opt.Backoff.Base = time.Second
	}
	if opt.Backoff.Max <= 0 {
		opt.Backoff.Max = 5 * time.Minute
	}
	if opt.Backoff.Rand == nil {
		opt.Backoff.Rand = rand.Float64
	}
	if opt.Clock == nil {
		opt.Clock = vakt.SystemClock{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Directory{c: c, apply: apply, opt: opt, refresh: make(chan struct{}, 1)}
}

// Refresh asks for a poll now; it never blocks.
func (d *Directory) Refresh() {
	select {
	case d.refresh <- struct{}{}:
	default:
	}
}

// Health returns the fetcher's state for the status page.
func (d *Directory) Health() DirectoryHealth {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.health
}

// Sync fetches and applies every change after cursor, page by page, and returns
// the cursor after the last page applied (cursor itself if nothing changed). A page
// that fails to apply is not skipped: the returned cursor stops before it.
func (d *Directory) Sync(ctx context.Context, cursor string) (string, error) {
	for {
		page, err := d.c.Directory(ctx, cursor, d.opt.PageSize)
		if err != nil {
			return cursor, err
		}
		if err := validatePage(page); err != nil {
			return cursor, &Error{Op: "directory", Status: 200, Reason: ReasonProtocol, Fatal: true, Err: err}
		}
		if len(page.Changes) > 0 || page.Cursor != cursor {
			if err := d.apply(ctx, DirectoryChange{Cursor: page.Cursor, Changes: page.Changes}); err != nil {
				return cursor, &Error{Op: "directory", Reason: ReasonLocal, Err: fmt.Errorf("apply directory changes: %w", err)}
			}
			cursor = page.Cursor
		}
		d.mu.Lock()
		d.health.Cursor = cursor
		d.mu.Unlock()
		if !page.More {
			return cursor, nil
		}
	}
}

func validatePage(p wire.DirectoryPage) error {
	for i, c := range p.Changes {
		if c.StaffID == "" {
			return fmt.Errorf("directory change %d: staff_id missing", i)
		}
		switch c.Op {
		case wire.OpUpsert:
			if c.Staff == nil || c.Staff.ID != c.StaffID {
				return fmt.Errorf("directory change %d: upsert of %s without a matching staff entry", i, c.StaffID)
			}
			if h := c.Staff.SecretHash; h != "" && !strings.HasPrefix(h, "$2") {
				return fmt.Errorf("directory change %d: staff %s: secret_hash is not a bcrypt hash", i, c.StaffID)
			}
		case wire.OpRemove:
		case wire.OpErase:
			if c.RequestID == "" {
				return fmt.Errorf("directory change %d: erasure of %s without request_id", i, c.StaffID)
			}
		default:
			// Skipping an unknown op could skip an erasure: stop and say so.
			return fmt.Errorf("directory change %d: op %q is unknown to this gateway version; update the gateway", i, c.Op)
		}
	}
	return nil
}

// Run polls from cursor until ctx ends. The cursor it reaches is persisted by Apply.
func (d *Directory) Run(ctx context.Context, cursor string) error {
	attempt := 0
	for {
		next, err := d.Sync(ctx, cursor)
		cursor = next
		wait := d.opt.Interval
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			e, ok := asError(err)
			if !ok {
				e = &Error{Op: "directory", Reason: ReasonUnreachable, Err: err}
			}
			attempt++
			d.mu.Lock()
			was := d.health
			d.health.LastError, d.health.Reason, d.health.Fatal = e.Error(), e.Reason, e.Fatal
			d.mu.Unlock()
			if e.Fatal && (!was.Fatal || was.Reason != e.Reason) {
				d.opt.Log.Error("cloud directory sync stopped", "reason", e.Reason, "err", e.Error())
				if d.opt.OnFatal != nil {
					d.opt.OnFatal(e)
				}
			} else if was.LastError == "" {
				d.opt.Log.Warn("cloud directory unreachable; the last known directory stays in force", "reason", e.Reason, "err", e.Error())
			}
			if !e.Fatal {
				wait = d.opt.Backoff.Delay(attempt, e.RetryAfter)
			}
		} else {
			attempt = 0
			d.mu.Lock()
			d.health.LastSuccess, d.health.LastError, d.health.Reason, d.health.Fatal = d.opt.Clock.Now(), "", "", false
			d.mu.Unlock()
		}
		if !sleep(ctx, d.opt.Clock, wait, d.refresh, nil, nil) {
			return ctx.Err()
		}
	}
}
