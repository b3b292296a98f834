// Package vakt holds the gateway's domain types and the small interfaces the other
// packages implement. It imports only the standard library: drivers, the store, routing,
// the phone API and sync all speak in these types, and only cmd/gateway wires concrete
// implementations together.
package vakt

import "errors"

// Identifiers are plain strings chosen by the site's configuration or the cloud directory.
type (
	TransmitterID string
	StaffID       string
	AlarmID       string
	VisitID       string
)

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
