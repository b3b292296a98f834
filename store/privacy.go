package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	vakt "github.com/vakt/vakt"
)

// Privacy operations (G1, G3, G4). Erasure is a Batch field applied by Commit
// (vakt.Erasure); PurgePositions, which the engine's loop runs after such a commit,
// ends with a TRUNCATE checkpoint so the removed bytes are gone from
// the main file (secure_delete zeroes freed space in the pages written back) and
// from the WAL (truncated to zero bytes). What the file system or the SD card's
// flash translation layer keep of blocks SQLite overwrote is beyond SQLite's reach;
// full-disk encryption covers that.

const clearPosition = `pos_lat = NULL, pos_lon = NULL, pos_floor = NULL, pos_accuracy_m = NULL, pos_at = NULL`

// PurgePositions clears every position taken before olderThan (and any without a
// time) and returns how many it cleared. The checkpoint runs even when none was
// cleared: it is also what removes superseded positions (each position update
// leaves the previous one in an older WAL frame) from the WAL, so call it at
// least once per position TTL.
func (db *DB) PurgePositions(ctx context.Context, olderThan time.Time) (int, error) {
	if err := db.writable(); err != nil {
		return 0, err
	}
	res, err := db.w.ExecContext(ctx, `UPDATE staff_state SET `+clearPosition+`
		WHERE pos_lat IS NOT NULL AND (pos_at IS NULL OR pos_at < ?)`, olderThan.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store: purge positions: %w", err)
	}
	n, _ := res.RowsAffected()
	if db.deferCheckpoint() {
		// The start's outbox count holds a read transaction, and a TRUNCATE
		// checkpoint waits for every reader: run now, it would hold the engine's
		// loop (and the gateway's readiness) until the count ends, up to a second
		// on a large backlog. The count runs it when done, off the loop.
		return int(n), nil
	}
	if err := db.checkpoint(ctx); err != nil {
		return int(n), fmt.Errorf("store: purge positions: %w", err)
	}
	if n > 0 {
		db.log.Info("positions purged", "count", n)
	}
	return int(n), nil
}

// StaffExportFormat names the version of the StaffExport JSON document.
const StaffExportFormat = "vakt-staff-export/1"

// StaffExport is everything the gateway holds about one member of staff (G3), as a
// JSON document. Times are RFC 3339 UTC; absent times are left out. Every list is
// present, empty when there is nothing.
//
//	format        "vakt-staff-export/1"
//	staff_id      the id the export is for
//	exported_at   when the export was made
//	directory     name, phone, email, roles, zone; credential_set tells whether a
//	              credential hash is held (the hash itself is not disclosed: it is
//	              a security credential, and a leaked export must not help anyone
//	              guess the secret); null when not in the directory
//	state         on duty, availability, last offered time and the current
//	              position if one is held; null when none is held
//	visits        registered visits
//	epr_records   EPR-sent records: visit, system, time (there is no content)
//	alarms        alarms this person was offered or accepted, with their own
//	              offers only (distance at offer time included)
//	audit         audit entries with actor or subject "staff:<id>"
type StaffExport struct {
	Format     string          `json:"format"`
	StaffID    vakt.StaffID    `json:"staff_id"`
	ExportedAt time.Time       `json:"exported_at"`
	Directory  *ExportedStaff  `json:"directory"`
	State      *ExportedState  `json:"state"`
	Visits     []ExportedVisit `json:"visits"`
	EPR        []ExportedEPR   `json:"epr_records"`
	Alarms     []ExportedAlarm `json:"alarms"`
	Audit      []ExportedAudit `json:"audit"`
}

// ExportedStaff is a directory entry in a StaffExport.
type ExportedStaff struct {
	Name          string   `json:"name"`
	Phone         string   `json:"phone"`
	Email         string   `json:"email"`
	Roles         []string `json:"roles"`
	Zone          string   `json:"zone"`
	CredentialSet bool     `json:"credential_set"`
}

// ExportedState is the live state in a StaffExport.
type ExportedState struct {
	OnDuty        bool              `json:"on_duty"`
	Availability  string            `json:"availability"`
	LastOfferedAt time.Time         `json:"last_offered_at,omitzero"`
	Position      *ExportedPosition `json:"position"`
}

// ExportedPosition is a held position in a StaffExport.
type ExportedPosition struct {
	Lat       float64   `json:"lat"`
	Lon       float64   `json:"lon"`
	Floor     int       `json:"floor"`
	AccuracyM float64   `json:"accuracy_m"`
	At        time.Time `json:"at,omitzero"`
}

// ExportedVisit is a visit in a StaffExport.
type ExportedVisit struct {
	ID       vakt.VisitID `json:"id"`
	Room     string       `json:"room"`
	Resident string       `json:"resident"`
	Start    time.Time    `json:"start,omitzero"`
	End      time.Time    `json:"end,omitzero"`
	Alarm    vakt.AlarmID `json:"alarm,omitempty"`
	Note     string       `json:"note,omitempty"`
}

// ExportedEPR is an EPR-sent record in a StaffExport.
type ExportedEPR struct {
	Visit  vakt.VisitID `json:"visit"`
	System string       `json:"system"`
	SentAt time.Time    `json:"sent_at,omitzero"`
}

// ExportedAlarm is an alarm in a StaffExport, with only this person's offers.
type ExportedAlarm struct {
	ID         vakt.AlarmID    `json:"id"`
	Kind       string          `json:"kind"`
	Priority   int             `json:"priority"`
	State      string          `json:"state"`
	RaisedAt   time.Time       `json:"raised_at,omitzero"`
	Accepted   bool            `json:"accepted"`
	AcceptedAt time.Time       `json:"accepted_at,omitzero"`
	Offers     []ExportedOffer `json:"offers"`
}

// ExportedOffer is one offer of an alarm to this person.
type ExportedOffer struct {
	Tier      int       `json:"tier"`
	Status    string    `json:"status"`
	OfferedAt time.Time `json:"offered_at,omitzero"`
	DistanceM float64   `json:"distance_m"`
}

// ExportedAudit is an audit entry in a StaffExport.
type ExportedAudit struct {
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Subject string    `json:"subject"`
}

// alarmsOfStaff selects alarms a staff member accepted or was offered.
const alarmsOfStaff = `SELECT ` + alarmColumns + ` FROM alarms WHERE assignee = ?1
	OR EXISTS (SELECT 1 FROM json_each(alarms.offers) WHERE json_extract(value, '$.staff') = ?1)`

// ExportStaff returns everything held about one staff member, read in one
// snapshot. It returns vakt.ErrNotFound only when nothing at all is held.
func (db *DB) ExportStaff(ctx context.Context, id vakt.StaffID) (StaffExport, error) {
	x := StaffExport{Format: StaffExportFormat, StaffID: id, ExportedAt: db.now().UTC(),
		Visits: []ExportedVisit{}, EPR: []ExportedEPR{}, Alarms: []ExportedAlarm{}, Audit: []ExportedAudit{}}
	fail := func(what string, err error) (StaffExport, error) {
		return StaffExport{}, fmt.Errorf("store: export staff %s: %s: %w", id, what, err)
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail("begin", err)
	}
	defer tx.Rollback()

	st, err := scanStaff(tx.QueryRowContext(ctx, `SELECT `+staffColumns+` FROM staff WHERE id = ?`, id))
	switch {
	case err == nil:
		x.Directory = &ExportedStaff{Name: st.Name, Phone: st.Phone, Email: st.Email, Roles: st.Roles,
			Zone: st.Zone, CredentialSet: st.SecretHash != ""}
		if x.Directory.Roles == nil {
			x.Directory.Roles = []string{}
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fail("directory", err)
	}

	state, err := scanState(tx.QueryRowContext(ctx, `SELECT `+stateColumns+` FROM staff_state WHERE staff_id = ?`, id))
	switch {
	case err == nil:
		x.State = &ExportedState{OnDuty: state.OnDuty, Availability: string(state.Availability),
			LastOfferedAt: state.LastOfferedAt}
		if p := state.Position; p != nil {
			x.State.Position = &ExportedPosition{Lat: p.Lat, Lon: p.Lon, Floor: p.Floor, AccuracyM: p.AccuracyM, At: p.At}
		}
	case !errors.Is(err, sql.ErrNoRows):
		return fail("state", err)
	}

	visits, err := collect(scanVisit)(tx.QueryContext(ctx, `SELECT `+visitColumns+` FROM visits
		WHERE staff_id = ? ORDER BY start_at, id`, id))
	if err != nil {
		return fail("visits", err)
	}
	for _, v := range visits {
		x.Visits = append(x.Visits, ExportedVisit{ID: v.ID, Room: v.Room, Resident: v.Resident,
			Start: v.Start, End: v.End, Alarm: v.Alarm, Note: v.Note})
	}

	epr, err := collect(scanEPR)(tx.QueryContext(ctx, `SELECT `+eprColumns+` FROM epr_records
		WHERE staff_id = ? ORDER BY sent_at, visit_id`, id))
	if err != nil {
		return fail("epr records", err)
	}
	for _, r := range epr {
		x.EPR = append(x.EPR, ExportedEPR{Visit: r.Visit, System: r.System, SentAt: r.SentAt})
	}

	alarms, err := collect(scanAlarm)(tx.QueryContext(ctx, alarmsOfStaff+` ORDER BY raised_at, id`, id))
	if err != nil {
		return fail("alarms", err)
	}
	for _, a := range alarms {
		xa := ExportedAlarm{ID: a.ID, Kind: string(a.Kind), Priority: int(a.Priority), State: string(a.State),
			RaisedAt: a.RaisedAt, Accepted: a.Assignee == id, Offers: []ExportedOffer{}}
		if xa.Accepted {
			xa.AcceptedAt = a.AcceptedAt
		}
		for _, o := range a.Offers {
			if o.Staff == id {
				xa.Offers = append(xa.Offers, ExportedOffer{Tier: o.Tier, Status: string(o.Status),
					OfferedAt: o.OfferedAt, DistanceM: o.DistanceM})
			}
		}
		x.Alarms = append(x.Alarms, xa)
	}

	actor := "staff:" + string(id)
	audit, err := collect(scanAudit)(tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit
		WHERE actor = ?1 OR subject = ?1 ORDER BY seq`, actor))
	if err != nil {
		return fail("audit", err)
	}
	for _, e := range audit {
		x.Audit = append(x.Audit, ExportedAudit{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject})
	}

	if x.Directory == nil && x.State == nil && len(x.Visits) == 0 && len(x.EPR) == 0 &&
		len(x.Alarms) == 0 && len(x.Audit) == 0 {
		return StaffExport{}, fmt.Errorf("store: export staff %s: %w", id, vakt.ErrNotFound)
	}
	return x, nil
}

// erase applies one vakt.Erasure inside the commit's transaction (see its doc).
// Entries already in the outbox are left as they are: they carry ids only, never a
// name, phone number, e-mail address or position, and the cloud applies the same
// erasure. Erasing an id that holds nothing is not an error. The checkpoint that
// scrubs the old bytes from the files runs after the commit (PurgePositions).
func erase(ctx context.Context, tx *sql.Tx, id, pseudonym vakt.StaffID) error {
	for _, q := range []struct{ what, query string }{
		{"directory", `DELETE FROM staff WHERE id = ?1`},
		{"state", `DELETE FROM staff_state WHERE staff_id = ?1`},
		{"sessions", `DELETE FROM sessions WHERE staff_id = ?1`},
		{"visits", `UPDATE visits SET staff_id = ?2 WHERE staff_id = ?1`},
		{"epr records", `UPDATE epr_records SET staff_id = ?2 WHERE staff_id = ?1`},
		{"alarms", `UPDATE alarms SET assignee = ?2 WHERE assignee = ?1`},
	} {
		if _, err := tx.ExecContext(ctx, q.query, string(id), string(pseudonym)); err != nil {
			return fmt.Errorf("%s: %w", q.what, err)
		}
	}

	alarms, err := collect(scanAlarm)(tx.QueryContext(ctx, alarmsOfStaff, string(id)))
	if err != nil {
		return fmt.Errorf("offers: %w", err)
	}
	for _, a := range alarms {
		for i := range a.Offers {
			if a.Offers[i].Staff == id {
				a.Offers[i].Staff = pseudonym
			}
		}
		offers, err := encodeOffers(a.Offers)
		if err != nil {
			return fmt.Errorf("offers of alarm %s: %w", a.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alarms SET offers = ? WHERE id = ?`, offers, a.ID); err != nil {
			return fmt.Errorf("offers of alarm %s: %w", a.ID, err)
		}
	}
	return nil
}
