package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	vakt "github.com/vakt/vakt"
)

// nanos encodes t as unix nanoseconds, NULL for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromNanos decodes what nanos stored.
func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func intPtr(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func fromNullInt(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}

// offerJSON is one element of alarms.offers. The JSON names are the stored format:
// changing them needs a migration.
type offerJSON struct {
	Staff     vakt.StaffID     `json:"staff"`
	Tier      int              `json:"tier"`
	Status    vakt.OfferStatus `json:"status"`
	OfferedAt int64            `json:"offered_at,omitempty"` // unix nanoseconds
	DistanceM float64          `json:"distance_m"`
}

func encodeOffers(offers []vakt.Offer) (string, error) {
	out := make([]offerJSON, len(offers))
	for i, o := range offers {
		out[i] = offerJSON{Staff: o.Staff, Tier: o.Tier, Status: o.Status, DistanceM: o.DistanceM}
		if !o.OfferedAt.IsZero() {
			out[i].OfferedAt = o.OfferedAt.UnixNano()
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeOffers(s string) ([]vakt.Offer, error) {
	var in []offerJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]vakt.Offer, len(in))
	for i, o := range in {
		out[i] = vakt.Offer{Staff: o.Staff, Tier: o.Tier, Status: o.Status, DistanceM: o.DistanceM}
		if o.OfferedAt != 0 {
			out[i].OfferedAt = time.Unix(0, o.OfferedAt).UTC()
		}
	}
	return out, nil
}

func encodeRoles(roles []string) (string, error) {
	if roles == nil {
		roles = []string{}
	}
	b, err := json.Marshal(roles)
	return string(b), err
}

func decodeRoles(s string) ([]string, error) {
	var roles []string
	if err := json.Unmarshal([]byte(s), &roles); err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, nil
	}
	return roles, nil
}

type scanner interface {
	Scan(dest ...any) error
}

const alarmColumns = `id, transmitter, kind, priority, state, raised_at, updated_at, count, policy,
	tier, tier_started_at, round, assignee, accepted_at, offers, deadline, forwarded, walk_test, text`

func scanAlarm(s scanner) (vakt.Alarm, error) {
	var (
		a                                                vakt.Alarm
		raised, updated, tierStarted, accepted, deadline sql.NullInt64
		offers                                           string
		forwarded, walkTest                              bool
	)
	err := s.Scan(&a.ID, &a.Transmitter, &a.Kind, &a.Priority, &a.State, &raised, &updated,
		&a.Count, &a.Policy, &a.Tier, &tierStarted, &a.Round, &a.Assignee, &accepted,
		&offers, &deadline, &forwarded, &walkTest, &a.Text)
	if err != nil {
		return a, err
	}
	a.RaisedAt, a.UpdatedAt = fromNanos(raised), fromNanos(updated)
	a.TierStartedAt, a.AcceptedAt, a.Deadline = fromNanos(tierStarted), fromNanos(accepted), fromNanos(deadline)
	a.Forwarded, a.WalkTest = forwarded, walkTest
	if a.Offers, err = decodeOffers(offers); err != nil {
		return a, fmt.Errorf("alarm %s: offers: %w", a.ID, err)
	}
	return a, nil
}

const staffColumns = `id, name, phone, email, roles, zone, secret_hash`

func scanStaff(s scanner) (vakt.Staff, error) {
	var (
		st    vakt.Staff
		roles string
	)
	if err := s.Scan(&st.ID, &st.Name, &st.Phone, &st.Email, &roles, &st.Zone, &st.SecretHash); err != nil {
		return st, err
	}
	var err error
	if st.Roles, err = decodeRoles(roles); err != nil {
		return st, fmt.Errorf("staff %s: roles: %w", st.ID, err)
	}
	return st, nil
}

const stateColumns = `staff_id, on_duty, availability, last_offered_at,
	pos_lat, pos_lon, pos_floor, pos_accuracy_m, pos_at`

func scanState(s scanner) (vakt.StaffState, error) {
	var (
		st          vakt.StaffState
		lastOffered sql.NullInt64
		lat, lon    sql.NullFloat64
		floor       sql.NullInt64
		acc         sql.NullFloat64
		at          sql.NullInt64
	)
	if err := s.Scan(&st.Staff, &st.OnDuty, &st.Availability, &lastOffered,
		&lat, &lon, &floor, &acc, &at); err != nil {
		return st, err
	}
	st.LastOfferedAt = fromNanos(lastOffered)
	if lat.Valid && lon.Valid {
		st.Position = &vakt.Position{Lat: lat.Float64, Lon: lon.Float64, Floor: int(floor.Int64),
			AccuracyM: acc.Float64, At: fromNanos(at)}
	}
	return st, nil
}

const healthColumns = `transmitter_id, last_seen, battery, link_quality, online`

func scanHealth(s scanner) (vakt.TransmitterHealth, error) {
	var (
		h             vakt.TransmitterHealth
		seen          sql.NullInt64
		battery, link sql.NullInt64
	)
	if err := s.Scan(&h.Transmitter, &seen, &battery, &link, &h.Online); err != nil {
		return h, err
	}
	h.LastSeen, h.Battery, h.LinkQuality = fromNanos(seen), fromNullInt(battery), fromNullInt(link)
	return h, nil
}

const visitColumns = `id, staff_id, room, resident, start_at, end_at, alarm_id, note`

func scanVisit(s scanner) (vakt.Visit, error) {
	var (
		v          vakt.Visit
		start, end sql.NullInt64
	)
	if err := s.Scan(&v.ID, &v.Staff, &v.Room, &v.Resident, &start, &end, &v.Alarm, &v.Note); err != nil {
		return v, err
	}
	v.Start, v.End = fromNanos(start), fromNanos(end)
	return v, nil
}

const eventColumns = `transmitter, kind, priority, source, source_id, raw, text, battery,
	link_quality, received_at, alarm_id, duplicate`

func scanEvent(s scanner) (vakt.EventRecord, error) {
	var (
		e             vakt.EventRecord
		battery, link sql.NullInt64
		received      sql.NullInt64
	)
	if err := s.Scan(&e.Transmitter, &e.Kind, &e.Priority, &e.Source, &e.SourceID, &e.Raw, &e.Text,
		&battery, &link, &received, &e.Alarm, &e.Duplicate); err != nil {
		return e, err
	}
	e.Battery, e.LinkQuality, e.ReceivedAt = fromNullInt(battery), fromNullInt(link), fromNanos(received)
	return e, nil
}

const auditColumns = `seq, at, actor, action, subject, prev, hash`

func scanAudit(s scanner) (vakt.AuditEntry, error) {
	var (
		e  vakt.AuditEntry
		at int64
	)
	if err := s.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Subject, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	e.At = time.Unix(0, at).UTC()
	return e, nil
}

const eprColumns = `visit_id, system, sent_at, staff_id`

func scanEPR(s scanner) (vakt.EPRRecord, error) {
	var (
		r    vakt.EPRRecord
		sent sql.NullInt64
	)
	if err := s.Scan(&r.Visit, &r.System, &sent, &r.Staff); err != nil {
		return r, err
	}
	r.SentAt = fromNanos(sent)
	return r, nil
}

// collect returns a function that scans every row of a query with scan, so a
// query's (rows, err) pair can be passed straight in: collect(scanAlarm)(q.Query(...)).
func collect[T any](scan func(scanner) (T, error)) func(*sql.Rows, error) ([]T, error) {
	return func(rows *sql.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
}
