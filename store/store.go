// Package store keeps the gateway's durable state in one SQLite file and implements
// vakt.Store. It is the only package that imports modernc.org/sqlite.
//
// Rule 3 of architecture.md, "one writer", means one writing goroutine, not one
// connection: the engine's loop is the only caller of Commit and of PurgePositions
// (the scrub it runs right after some commits), and every change to state the
// engine holds in memory (alarms, the directory, staff state and positions, visits,
// logins, erasures, removals, outbox acknowledgements, the directory cursor) is a
// field of the vakt.Batch it commits. No other method writes. If something wrote
// beside the engine, the engine's memory would write the old row back with its
// next change, as an erasure made here used to be undone by the next offer.
//
// Two database/sql pools share the file: a writer with exactly one connection (so
// a write never waits on SQLite's lock for another of ours) and a read-only pool
// for the API, the status page, exports and sync. WAL mode lets readers run while
// the writer commits.
//
// Every time is stored as INTEGER unix nanoseconds in UTC, NULL for a zero time.
// Values read back are in UTC and carry no monotonic reading. A record made while
// the box's clock was unsynced (it boots at 1970 without an RTC) is not flagged by a
// column: ClockUnsynced recognises it by its time.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	vakt "github.com/vakt/vakt"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// ClockUnsynced reports whether a stored time was taken before the clock was set
// (R5): a synced clock never shows a time before 2020. Such a time should be read
// as "unknown wall time"; the order of events and audit entries (id, seq) is still
// right.
func ClockUnsynced(t time.Time) bool {
	return t.Before(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
}

// Options configure Open. The zero value is usable.
type Options struct {
	// Now is the wall clock used for defaults (audit and outbox times left zero,
	// Load's redelivery window, export time). Default time.Now.
	Now func() time.Time
	// Logger gets ids and counts only, never personal data. Default: discard.
	Logger *slog.Logger
	// Readers is the size of the read-only pool. Default 4.
	Readers int
	// SeenWindow is how far back Load collects (Source, SourceID) keys for
	// recognising redeliveries. Default 24 h. Load reads at most the newest
	// 65,536 events however long the window (see seenMaxEvents).
	SeenWindow time.Duration
	// LocalOnly: no cloud is configured, so nothing is queued for one. Commit
	// writes no outbox rows (neither the batch's entries nor the audit entries'
	// copies; the audit log itself is written as ever): entries no cloud will
	// ever take were a second copy of every alarm transition and audit entry on
	// the SD card — a third of an alarm's pages (P6) — kept until retention
	// deleted them. Entries queued while a cloud was configured stay until the
	// cloud acknowledges them or retention's period ends.
	LocalOnly bool
}

// DB is the SQLite store.
//
// Checkpoint policy: the writer runs in WAL mode with autocheckpoint at 4096 pages
// (a PASSIVE checkpoint once the WAL holds ≈4 MB of 1 KB pages, as SQLite's default
// 1000 pages did with 4 KB ones, run by the committing connection: a checkpoint
// writes each page changed since the last one once, so a longer WAL writes a hot
// page such as meta's fewer times, P6) and journal_size_limit caps the WAL file at 8 MB
// after a checkpoint resets it, so a storm's WAL does not stay large on the SD card.
// PurgePositions, which the engine runs after a commit that removed a position or
// erased a person, ends with wal_checkpoint(TRUNCATE): with secure_delete on, freed cells are zeroed in the
// pages the checkpoint writes back to the main file, and the truncate removes the
// WAL frames that still held the old bytes (G1, G4). Close runs a TRUNCATE
// checkpoint too. A TRUNCATE checkpoint waits up to busy_timeout (5 s) for readers
// and reports an error if one still holds an old snapshot; the caller retries.
//
// All methods are safe for concurrent use; Commit is meant to be called by the
// engine's one writer goroutine.
type DB struct {
	path string
	lock *os.File // flock on <path>.lock while open; nil when read-only
	// readOnly: opened by OpenReadOnly (no writer pool).
	readOnly bool
	w        *sql.DB // one connection: every write goes through it
	r        *sql.DB // read-only pool
	now      func() time.Time
	log      *slog.Logger

	seenWindow time.Duration
	localOnly  bool  // Options.LocalOnly
	seenMax    int   // seenMaxEvents; smaller in tests
	maxPending int64 // maxPendingCheck; smaller in tests

	st statements

	// mu serialises Commit and guards the cached values below, which change only
	// when a transaction that changed them committed.
	mu      sync.Mutex
	head    auditHead
	counter int64 // alarm id counter (meta.alarm_counter)
	// outboxSeq is the highest outbox seq assigned or deleted so far; the next
	// entry gets one more (see outboxFloor).
	outboxSeq int64

	outboxLen atomic.Int64
	counting  chan struct{} // closed when Open's outbox count is in outboxLen
	loaded    chan struct{} // closed by the first Load: the count waits for it
	loadOnce  sync.Once
	closing   chan struct{} // closed by Close: a count not started yet is skipped
	// pendingCheckpoint: a TRUNCATE checkpoint asked for while the count ran
	// (deferCheckpoint), run by the count when it is done.
	countMu           sync.Mutex
	counted           bool
	pendingCheckpoint bool
	closed            atomic.Bool
}

type auditHead struct {
	seq  int64
	hash string
}

var _ vakt.Store = (*DB)(nil)

// Per-connection settings belong in the DSN: a pool opens connections by itself and
// a pragma run once with Exec would reach only one of them. _txlock=immediate
// makes every write transaction BEGIN IMMEDIATE, so it takes the write lock up
// front instead of failing with SQLITE_BUSY half-way.
//
// page_size (P6, SD-card wear): every commit writes each page it touches whole to
// the WAL, so smaller pages write fewer bytes per commit. It takes effect only on a
// brand-new file, before its first table and before journal_mode=WAL (a WAL
// database cannot change its page size). modernc runs the _pragma list sorted by
// name, which would put journal_mode before page_size, so journal_mode is given by
// the _journal_mode key, which the driver applies after the whole _pragma list. An
// existing database keeps the page size it was created with (open logs it):
// changing it would take leaving WAL mode for a VACUUM, which Open never does.
//
// Not psow=0 (tried for P6, to pad each commit to a 4 KB boundary of the WAL so the
// kernel would not flush a commit's last block twice): it also makes the pager treat
// a 4 KB sector as the unit of a write, so every changed 1 KB page took its three
// neighbours into the WAL with it, four times the frames.
const (
	writerParams = "_pragma=busy_timeout(5000)&_pragma=page_size(1024)&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)&_pragma=secure_delete(1)&_pragma=journal_size_limit(8388608)" +
		"&_pragma=wal_autocheckpoint(4096)" +
		"&_journal_mode=WAL&_txlock=immediate"
	// A reader's page cache is 512 KiB (SQLite's default is 2 MB a connection, up to
	// 8 MB for the pool): reads are the API's, the status page's and sync's, and the
	// OS's page cache holds the file anyway (P4, memory).
	readerParams = "mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)&_pragma=cache_size(-512)"
)

// readerIdle is how long an unused read connection stays open.
const readerIdle = time.Minute

// dsn builds an SQLite URI for path. '?', '#' and '%' would end or garble the path
// part of a URI, so they are escaped.
func dsn(path, params string) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + params
}

// Open opens (creating if needed) the database at path, applies pending migrations
// and loads the cached audit head, alarm counter and outbox length. The folder is
// created with mode 0700 and a new database file with 0600 (the WAL and shared
// memory files inherit it): the file holds personal data.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if opts.SeenWindow <= 0 {
		opts.SeenWindow = 24 * time.Hour
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create folder: %w", err)
	}
	lock, err := lockFile(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	f.Close()

	db := &DB{path: path, now: opts.Now, log: opts.Logger, seenWindow: opts.SeenWindow, seenMax: seenMaxEvents,
		maxPending: maxPendingCheck, lock: lock, localOnly: opts.LocalOnly}
	if err := db.open(ctx, opts.Readers); err != nil {
		db.closeAll()
		return nil, err
	}
	return db, nil
}

// ErrInUse: another process (a running gateway, or a person command) holds the
// database's lock.
var ErrInUse = errors.New("in use: another gateway runs on this database")

// lockFile takes an exclusive flock on <path>.lock, held until the returned file is
// closed (Close, or the process's end: the kernel drops it even after SIGKILL). A
// second writer on one database would break the one-writer rule and the cached
// audit head and alarm counter, so it is refused with what to do.
func lockFile(path string) (*os.File, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("store: %s: %w (it holds %s); stop it first, or give this one another storage.path", path, ErrInUse, name)
		}
		return nil, fmt.Errorf("store: lock %s: %w", name, err)
	}
	return f, nil
}

// OpenReadOnly opens an existing database for reading only (verify-audit, exports
// beside a running gateway): it creates nothing, migrates nothing, takes no lock and
// fails when the file does not exist, so a mistyped path is an error rather than an
// empty database. Commit and the other writes fail on it.
func OpenReadOnly(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s read-only: %w (check storage.path)", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("store: open %s read-only: not a database file (check storage.path)", path)
	}
	db := &DB{path: path, now: opts.Now, log: opts.Logger, seenWindow: opts.SeenWindow, seenMax: seenMaxEvents}
	db.closed.Store(true) // writes report vakt.ErrClosed
	if db.r, err = sql.Open("sqlite", dsn(path, readerParams)); err != nil {
		return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	db.r.SetMaxOpenConns(1)
	var version int
	if err := db.r.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		db.r.Close()
		return nil, fmt.Errorf("store: open %s read-only: %w", path, err)
	}
	if version == 0 {
		db.r.Close()
		return nil, fmt.Errorf("store: %s is not a Vakt database (no schema; check storage.path)", path)
	}
	if db.head, err = readAuditHead(ctx, db.r); err != nil {
		db.r.Close()
		return nil, err
	}
	db.readOnly = true
	return db, nil
}

// readAuditHead returns the audit head recorded in meta, or for a database written
// before the head was recorded there, the table's last entry.
func readAuditHead(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (auditHead, error) {
	var h auditHead
	var seq sql.NullInt64
	var hash []byte
	err := q.QueryRowContext(ctx, `SELECT (SELECT value FROM meta WHERE key = 'audit_head_seq'),
		(SELECT value FROM meta WHERE key = 'audit_head_hash')`).Scan(&seq, &hash)
	if err != nil {
		return h, fmt.Errorf("store: read audit head: %w", err)
	}
	if seq.Valid {
		return auditHead{seq: seq.Int64, hash: string(hash)}, nil
	}
	err = q.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&h.seq, &h.hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, fmt.Errorf("store: read audit head: %w", err)
	}
	return h, nil
}

// outboxFloor returns the highest outbox seq ever used, which no new entry may
// reuse (the cloud drops repeats by gateway and seq): the largest seq in the table,
// or when the entries above it were deleted, the highest seq deleted. Every delete
// records it in the same transaction: the acknowledgement path in outbox_acked (it
// deletes up to that seq), retention in outbox_floor (it may empty the table with
// sync off), and migration 0006 moved AUTOINCREMENT's counter there. Compaction of
// health samples never deletes the table's last entry (a newer one exists).
//
// The outbox has no AUTOINCREMENT (0006) because its sqlite_sequence row was one
// more page written by every commit (P6).
func outboxFloor(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT max(coalesce((SELECT max(seq) FROM outbox), 0),
		coalesce((SELECT value FROM meta WHERE key = 'outbox_acked'), 0),
		coalesce((SELECT value FROM meta WHERE key = 'outbox_floor'), 0))`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: read outbox seq: %w", err)
	}
	return n, nil
}

func (db *DB) open(ctx context.Context, readers int) error {
	var err error
	if db.w, err = sql.Open("sqlite", dsn(db.path, writerParams)); err != nil {
		return fmt.Errorf("store: open writer: %w", err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	var journal string
	var pageBytes int
	if err := db.w.QueryRowContext(ctx, `SELECT (SELECT journal_mode FROM pragma_journal_mode),
		(SELECT page_size FROM pragma_page_size)`).Scan(&journal, &pageBytes); err != nil {
		return fmt.Errorf("store: open writer: %w", err)
	}
	if journal != "wal" {
		return fmt.Errorf("store: open writer: journal mode is %q, not wal: check that %s is on a local file system", journal, db.path)
	}
	if pageBytes != 1024 {
		// A file made with other pages (before P6's page_size): keep the WAL at
		// ≈4 MB between checkpoints, within journal_size_limit.
		if _, err := db.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, max(4<<20/pageBytes, 1))); err != nil {
			return fmt.Errorf("store: open writer: %w", err)
		}
	}
	if err := db.migrate(ctx); err != nil {
		return err
	}
	// The reader pool opens after the writer made the file a WAL database.
	if db.r, err = sql.Open("sqlite", dsn(db.path, readerParams)); err != nil {
		return fmt.Errorf("store: open readers: %w", err)
	}
	db.r.SetMaxOpenConns(readers)
	db.r.SetMaxIdleConns(readers)
	// A reader left idle this long is closed, with its page cache: at a quiet site the
	// pool shrinks to nothing, and a read after it opens a connection again (~1 ms).
	db.r.SetConnMaxIdleTime(readerIdle)
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open readers: %w", err)
	}
	if err := db.st.prepare(ctx, db.w); err != nil {
		return fmt.Errorf("store: prepare: %w", err)
	}

	if db.head, err = readAuditHead(ctx, db.w); err != nil {
		return err
	}
	if err := db.w.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'alarm_counter'`).
		Scan(&db.counter); err != nil {
		return fmt.Errorf("store: read alarm counter: %w", err)
	}
	if db.outboxSeq, err = outboxFloor(ctx, db.w); err != nil {
		return err
	}
	if err := db.countOutbox(ctx); err != nil {
		return err
	}
	db.log.Info("store open", "audit_seq", db.head.seq, "alarm_counter", db.counter,
		"outbox_seq", db.outboxSeq, "page_size", pageBytes)
	return nil
}

// countOutbox sets outboxLen to the outbox's row count without holding up the
// start: count(*) reads every leaf page of the table, ~0.5 s for the 1.8 million
// entries a site without a cloud gathers in two months (1 KB pages), which kept
// the gateway from being ready (R1). The count runs on a reader in a read
// transaction whose snapshot is taken here, before Open returns and so before any
// commit of this process: every later change moves outboxLen by its delta (Commit,
// retention), and the snapshot's count is added to them when it is known. Until
// then OutboxLen is low by the rows counted so far (metrics and the status page,
// for a moment after start; retention's first run is minutes later).
func (db *DB) countOutbox(ctx context.Context) error {
	conn, err := db.r.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: count outbox: %w", err)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		conn.Close()
		return fmt.Errorf("store: count outbox: %w", err)
	}
	// A deferred BEGIN takes its snapshot at the first read: this one.
	var any int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM outbox WHERE seq > `+ackedSeq+` LIMIT 1)`).Scan(&any); err != nil {
		tx.Rollback()
		conn.Close()
		return fmt.Errorf("store: count outbox: %w", err)
	}
	db.counting, db.loaded, db.closing = make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(db.counting)
		defer db.runDeferredCheckpoint()
		defer conn.Close()
		defer tx.Rollback()
		// After the start's Load: run beside it, the count (1.8 million rows: ~0.5 s
		// of one core and the page cache) slowed Load from ~200 to 400–530 ms on the
		// crash loop's file, and Load is on the way to ready. A store nobody loads
		// (a person command) counts after a second.
		select {
		case <-db.loaded:
		case <-time.After(time.Second):
		case <-db.closing:
			return
		}
		if beforeCount != nil {
			beforeCount()
		}
		var n int64
		if any > 0 {
			if err := tx.QueryRow(`SELECT count(*) FROM outbox WHERE seq > ` + ackedSeq).Scan(&n); err != nil {
				db.log.Error("outbox not counted: its length is shown low until a restart", "err", err)
				return
			}
		}
		db.outboxLen.Add(n)
		db.log.Info("outbox counted", "entries", n)
	}()
	return nil
}

// deferCheckpoint reports whether a TRUNCATE checkpoint asked for now must wait for
// the start's outbox count, and if so leaves it to the count (runDeferredCheckpoint).
func (db *DB) deferCheckpoint() bool {
	db.countMu.Lock()
	defer db.countMu.Unlock()
	if db.counting == nil || db.counted {
		return false
	}
	db.pendingCheckpoint = true
	return true
}

// runDeferredCheckpoint marks the count done (its read transaction is over) and runs
// the checkpoint a PurgePositions deferred meanwhile.
func (db *DB) runDeferredCheckpoint() {
	db.countMu.Lock()
	db.counted = true
	pending := db.pendingCheckpoint
	db.pendingCheckpoint = false
	db.countMu.Unlock()
	if pending && !db.closed.Load() {
		if err := db.checkpoint(context.Background()); err != nil {
			db.log.Error("checkpoint after the outbox count", "err", err)
		}
	}
}

// beforeCount, when set by a test, runs before Open's outbox count.
var beforeCount func()

// OutboxCounted is closed once the outbox's length counted at Open is in OutboxLen.
func (db *DB) OutboxCounted() <-chan struct{} { return db.counting }

// migrate applies the embedded migrations the file has not seen yet, all in one
// transaction, and records the count in PRAGMA user_version (which is part of the
// file header and so commits or rolls back with them).
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	sort.Strings(names)
	for i, name := range names {
		prefix, _, _ := strings.Cut(filepath.Base(name), "_")
		if n, err := strconv.Atoi(prefix); err != nil || n != i+1 {
			return fmt.Errorf("store: migration %s: want number %04d", name, i+1)
		}
	}

	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("store: migrate: read version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("store: database schema version %d is newer than this gateway (%d): install the newer release or restore a backup",
			version, len(names))
	}
	if version == len(names) {
		return nil
	}
	for _, name := range names[version:] {
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(names))); err != nil {
		return fmt.Errorf("store: migrate: set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	db.log.Info("store migrated", "from", version, "to", len(names))
	return nil
}

// checkpoint runs wal_checkpoint(TRUNCATE) on the writer connection. It fails when
// a reader kept the WAL in use past busy_timeout: then old frames may remain.
func (db *DB) checkpoint(ctx context.Context) error {
	var busy, logFrames, done int
	err := db.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("checkpoint: readers kept the WAL busy (%d of %d frames copied); retry", done, logFrames)
	}
	return nil
}

// Close checkpoints the WAL into the main file and closes both pools. Commit and
// the other writes return vakt.ErrClosed afterwards.
func (db *DB) Close() error {
	if db.readOnly {
		db.readOnly = false
		return db.r.Close()
	}
	if !db.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Wait for a Commit in flight.
	db.mu.Lock()
	defer db.mu.Unlock()
	// Readers first, so the writer's checkpoint finds the WAL unused and the
	// writer is the last connection. Open's count holds a reader until it is done.
	if db.counting != nil {
		close(db.closing)
		<-db.counting
	}
	errs := []error{db.r.Close()}
	if err := db.checkpoint(context.Background()); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, db.closeAll())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// closeAll closes whatever open got to; closing twice is harmless.
func (db *DB) closeAll() error {
	errs := []error{db.st.close()}
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if db.w != nil {
		errs = append(errs, db.w.Close())
	}
	if db.lock != nil {
		// After the writer closed: the next gateway may open the file at once.
		errs = append(errs, db.lock.Close())
		db.lock = nil
	}
	return errors.Join(errs...)
}

// writable reports vakt.ErrClosed once Close began.
func (db *DB) writable() error {
	if db.closed.Load() {
		return vakt.ErrClosed
	}
	return nil
}

// Path is the database file's path.
func (db *DB) Path() string { return db.path }
