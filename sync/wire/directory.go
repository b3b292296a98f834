package wire

import "time"

// DirectoryPage is the answer to GET PathDirectory?cursor=C&limit=N: the changes after
// cursor C, oldest first, at most N of them.
type DirectoryPage struct {
	// Cursor is opaque to the gateway. It stores it together with the applied changes
	// (one transaction) and sends it back next time; "" asks for everything.
	Cursor string `json:"cursor"`
	// More is true when further changes are waiting: fetch again at once.
	More    bool              `json:"more"`
	Changes []DirectoryChange `json:"changes"`
}

// Directory change operations.
const (
	OpUpsert = "upsert" // add or replace a staff member (the whole entry)
	OpRemove = "remove" // the person no longer works here: withdraw offers, end sessions
	OpErase  = "erase"  // right to erasure: remove the person's personal data (G4)
)

// DirectoryChange is one change of the site's staff directory.
type DirectoryChange struct {
	Op      string `json:"op"`
	StaffID string `json:"staff_id"`
	// Staff is the whole entry, for OpUpsert only.
	Staff *Staff `json:"staff,omitempty"`
	// RequestID identifies an erasure request, for OpErase only; the gateway audits
	// "staff.erased" with subject "erasure:<request id>" once done, and that audit
	// entry reaching the cloud is the confirmation.
	RequestID string `json:"request_id,omitempty"`
}

// Staff is a staff member as the cloud directory knows them.
type Staff struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Phone string   `json:"phone,omitempty"`
	Email string   `json:"email,omitempty"`
	Roles []string `json:"roles"`          // e.g. "nurse", "nurse-lead", "technician"
	Zone  string   `json:"zone,omitempty"` // primary zone id; "" = whole site
	// SecretHash is a bcrypt hash of the login secret ($2a$/$2b$, cost ≥ 10); the
	// plain secret never travels.
	SecretHash string `json:"secret_hash,omitempty"`
	// Shifts is the on-duty schedule: the gateway puts the person on duty inside
	// a shift unless they say otherwise on the phone.
	Shifts []Shift `json:"shifts,omitempty"`
}

// Shift is one scheduled on-duty interval.
type Shift struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Zone  string    `json:"zone,omitempty"` // zone for this shift; "" = the staff member's zone
}
