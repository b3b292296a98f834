// Package vakt holds the gateway's domain types and the small interfaces the other
// packages implement. It imports only the standard library: drivers, the store, routing,
// the phone API and sync all speak in these types, and only cmd/gateway wires concrete
// implementations together.
package vakt

import (
	"errors"
	"strconv"
	"strings"
)

// Identifiers are plain strings chosen by the site's configuration or the cloud
// directory, except AlarmID, which the gateway makes.
type (
	TransmitterID string
	// StaffID must be opaque ("s-1042", not "nurse-anna"): it stays in the audit
	// log after the person is erased (docs/privacy.md).
	StaffID string
	// AlarmID is unique per gateway, across restarts and for the life of its
	// database: "a-<n>" with n from a counter the store keeps (FormatAlarmID,
	// ParseAlarmID are its one definition). It is not unique across gateways:
	// once synced, the cloud keys every alarm by (gateway id, alarm id).
	AlarmID string
	VisitID string
)

// FormatAlarmID is the id of the gateway's n-th alarm (n >= 1).
func FormatAlarmID(n int64) AlarmID { return AlarmID("a-" + strconv.FormatInt(n, 10)) }

// ParseAlarmID returns n of an id FormatAlarmID made, and false for anything else.
func ParseAlarmID(id AlarmID) (int64, bool) {
	rest, ok := strings.CutPrefix(string(id), "a-")
	if !ok || rest == "" || rest[0] == '+' || rest[0] == '-' || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// Sentinel errors shared by every implementation.
var (
	// ErrBusy means the ingest queue is full: the source should retry later
	// (ESPA answers '2' NAK, MQTT withholds the PUBACK).
	ErrBusy = errors.New("vakt: busy")
	// ErrNotFound is returned for unknown alarms, staff or transmitters.
	ErrNotFound = errors.New("vakt: not found")
	// ErrConflict is a state conflict, e.g. accepting an alarm someone else has.
	ErrConflict = errors.New("vakt: state conflict")
	// ErrForbidden means the actor may not do this to this alarm.
	ErrForbidden = errors.New("vakt: not allowed")
	// ErrClosed is returned after shutdown began.
	ErrClosed = errors.New("vakt: closed")
)

// AlarmClosedError is a command on an alarm already completed or cancelled: a
// conflict with what happened (it matches ErrConflict), not an unknown alarm.
type AlarmClosedError struct {
	ID    AlarmID
	State AlarmState
}

func (e *AlarmClosedError) Error() string {
	return "alarm " + string(e.ID) + " is already " + string(e.State)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *AlarmClosedError) Is(target error) bool { return target == ErrConflict }
