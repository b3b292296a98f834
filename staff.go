package vakt

import "time"

// Availability is what a staff member says about taking alarms right now.
type Availability string

const (
	Available Availability = "available"
	Busy      Availability = "busy"
	Away      Availability = "away"
)

// Valid reports whether a is one of the known values.
func (a Availability) Valid() bool {
	return a == Available || a == Busy || a == Away
}

// Staff is a member of staff as the directory (local config or cloud) knows them.
// These are exactly the personal fields the privacy policy names.
type Staff struct {
	ID    StaffID
	Name  string
	Phone string
	Email string
	Roles []string
	// SecretHash is a slow hash (bcrypt) of the staff member's login secret.
	SecretHash string
	// Primary zone for zone-wide tiers ("" = whole site).
	Zone string
}

// HasRole reports whether s holds any of roles (an empty list matches everyone).
func (s Staff) HasRole(roles ...string) bool {
	if len(roles) == 0 {
		return true
	}
	for _, r := range roles {
		for _, have := range s.Roles {
			if r == have {
				return true
			}
		}
	}
	return false
}

// Position is a staff member's last reported position. Ephemeral: kept only while on
// duty and nearest-staff routing is on, only the latest, purged after a TTL, never synced.
type Position struct {
	Lat, Lon  float64
	Floor     int
	AccuracyM float64
	At        time.Time
}

// StaffState is the live, per-shift state of one staff member.
type StaffState struct {
	Staff        StaffID
	OnDuty       bool
	Availability Availability
	Position     *Position
	// LastOfferedAt breaks distance ties: whoever was offered least recently first.
	LastOfferedAt time.Time
}

// Member is a directory entry together with its live state.
type Member struct {
	Staff
	State StaffState
}
