package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
)

// The checkpointer (P5) runs the WAL's PASSIVE checkpoints on a connection of its
// own instead of the writer's. With the writer's autocheckpoint, the commit that
// took the WAL past its threshold also copied ~4 MB into the main file and fsync'd
// it before returning: 5–20 ms on this kind of disk, and a press in that commit, or
// queued behind it, waited for all of it (measured in BenchmarkCloudDrain: ~1 % of
// presses during a drain). A PASSIVE checkpoint never takes the write lock, so
// the writer commits on while it runs. The threshold and what it writes are the
// same as the autocheckpoint's (the checkpoint policy on DB, P6).
//
// The WAL's length is read from the wal-index header in the -shm file (SQLite's
// documented format, https://sqlite.org/walformat.html: mxFrame at byte 16,
// nBackfill at byte 96, native byte order), a 100-byte read after each commit.
// A read that fails or makes no sense falls back to checkpointing at once, which
// costs writes, never correctness.
type checkpointer struct {
	conn      *sql.DB
	shm       *os.File
	threshold uint32 // frames not yet copied that start a checkpoint
	kick      chan struct{}
	stop      chan struct{}
	done      sync.WaitGroup
	// ran, for tests, is told of each checkpoint run (frames in the WAL, frames
	// copied); nil otherwise.
	ran func(log, copied int)
}

// startCheckpointer turns the writer's autocheckpoint off and starts the
// checkpointer; on any failure the writer keeps its autocheckpoint.
func (db *DB) startCheckpointer(ctx context.Context, threshold int) error {
	shm, err := os.Open(db.path + "-shm")
	if err != nil {
		return fmt.Errorf("store: checkpointer: %w", err)
	}
	conn, err := sql.Open("sqlite", dsn(db.path, "_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=wal_autocheckpoint(0)"))
	if err != nil {
		shm.Close()
		return fmt.Errorf("store: checkpointer: %w", err)
	}
	conn.SetMaxOpenConns(1)
	conn.SetMaxIdleConns(1)
	conn.SetConnMaxLifetime(0)
	conn.SetConnMaxIdleTime(0)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		shm.Close()
		return fmt.Errorf("store: checkpointer: %w", err)
	}
	if _, err := db.w.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		conn.Close()
		shm.Close()
		return fmt.Errorf("store: checkpointer: %w", err)
	}
	c := &checkpointer{conn: conn, shm: shm, threshold: uint32(max(threshold, 1)),
		kick: make(chan struct{}, 1), stop: make(chan struct{})}
	db.ckpt = c
	c.done.Add(1)
	go c.run(db)
	return nil
}

// pending reads how many WAL frames the last checkpoint has not copied yet.
func (c *checkpointer) pending() (uint32, bool) {
	var hdr [100]byte
	if _, err := c.shm.ReadAt(hdr[:], 0); err != nil {
		return 0, false
	}
	mx := binary.NativeEndian.Uint32(hdr[16:])
	backfilled := binary.NativeEndian.Uint32(hdr[96:])
	if backfilled > mx {
		return 0, false
	}
	return mx - backfilled, true
}

// notify tells the checkpointer that a commit appended to the WAL; it never blocks.
func (c *checkpointer) notify() {
	if c == nil {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(db *DB) {
	defer c.done.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		if n, ok := c.pending(); ok && n < c.threshold {
			continue
		}
		var busy, log, copied int
		err := c.conn.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied)
		if err != nil {
			db.log.Warn("checkpoint failed; retried after the next commit", "err", err)
			continue
		}
		if c.ran != nil {
			c.ran(log, copied)
		}
	}
}

// close stops the checkpointer (a checkpoint in progress finishes first).
func (c *checkpointer) close() error {
	if c == nil {
		return nil
	}
	close(c.stop)
	c.done.Wait()
	return errors.Join(c.conn.Close(), c.shm.Close())
}
