package store

import (
	"context"
	"slices"
	"testing"
)

// What the privacy policy (section 5) says the application stores about a person:
// "name, e-mail address, telephone number, role, registered visits, EPR records (not
// content, only that it has been sent), and audit logging", and location data only
// temporarily, for nearest-staff routing. Every column of the schema is classified
// below as one of these, as a credential (needed for the secure login of section 3,
// never exported), or as operational data that is about no person. A new column fails
// TestSchemaHoldsOnlyWhatThePolicyNames until someone decides which it is — and a
// personal column outside the policy's list cannot be classified at all.
const (
	pName       = "name"
	pEmail      = "e-mail"
	pPhone      = "phone"
	pRole       = "role"
	pVisit      = "registered visit"
	pEPR        = "EPR record (metadata only)"
	pAudit      = "audit log"
	pPosition   = "position (temporary, G1)"
	pStaffRef   = "staff id (a reference, in the alarm history)"
	operational = "operational"
)

// policyCategories are the personal categories the policy names.
var policyCategories = []string{pName, pEmail, pPhone, pRole, pVisit, pEPR, pAudit, pPosition, pStaffRef}

const secret = "credential"

var schemaClasses = map[string]map[string]string{
	"staff": {"id": pStaffRef, "name": pName, "phone": pPhone, "email": pEmail, "roles": pRole,
		"zone": pRole, "secret_hash": secret},
	"staff_state": {"staff_id": pStaffRef, "on_duty": pRole, "availability": pRole,
		"last_offered_at": pRole, "pos_lat": pPosition, "pos_lon": pPosition, "pos_floor": pPosition,
		"pos_accuracy_m": pPosition, "pos_at": pPosition},
	"sessions": {"token_hash": secret, "staff_id": pStaffRef, "expires_at": secret},
	"visits": {"id": pVisit, "staff_id": pVisit, "room": pVisit, "resident": pVisit,
		"start_at": pVisit, "end_at": pVisit, "alarm_id": pVisit, "note": pVisit},
	"epr_records": {"visit_id": pEPR, "system": pEPR, "sent_at": pEPR, "staff_id": pEPR},
	"audit":       {"seq": pAudit, "at": pAudit, "actor": pAudit, "action": pAudit, "subject": pAudit, "prev": pAudit, "hash": pAudit},
	// An alarm names who was offered it and who accepted it (ids, distances): the
	// alarm history. No name, phone number or position is in it.
	"alarms": {"id": operational, "transmitter": operational, "kind": operational, "priority": operational,
		"state": operational, "raised_at": operational, "updated_at": operational, "count": operational,
		"policy": operational, "tier": operational, "tier_started_at": operational, "round": operational,
		"assignee": pStaffRef, "accepted_at": operational, "offers": pStaffRef, "deadline": operational,
		"forwarded": operational, "walk_test": operational, "text": operational},
	"events": {"id": operational, "transmitter": operational, "kind": operational, "priority": operational,
		"source": operational, "source_id": operational, "raw": operational, "text": operational,
		"battery": operational, "link_quality": operational, "received_at": operational,
		"alarm_id": operational, "duplicate": operational},
	"deliveries": {"id": operational, "alarm_id": operational, "target": operational, "restore": operational,
		"address": operational, "zone": operational, "kind": operational, "text": operational,
		"seq": operational, "delivered": operational, "created_at": operational},
	"health": {"transmitter_id": operational, "last_seen": operational, "battery": operational,
		"link_quality": operational, "online": operational},
	// The outbox holds the changes above on their way to the cloud, ids only
	// (sync/wire's TestNoPositionFields, engine's erasure tests).
	"outbox": {"seq": operational, "kind": operational, "body": pStaffRef, "at": operational, "v": operational,
		"clock_synced": operational, "boot": operational, "since_boot_ms": operational, "health_of": operational},
	"meta":            {"key": operational, "value": operational},
	"sync_state":      {"key": operational, "value": operational},
	"sqlite_sequence": {"name": operational, "seq": operational},
}

// TestSchemaHoldsOnlyWhatThePolicyNames (G2): every column of the migrated schema is
// classified, and every personal class is one the privacy policy names.
func TestSchemaHoldsOnlyWhatThePolicyNames(t *testing.T) {
	db := openTest(t, t.TempDir()+"/vakt.db")
	rows, err := db.r.QueryContext(context.Background(),
		`SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]map[string]bool{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		if seen[table] == nil {
			seen[table] = map[string]bool{}
		}
		seen[table][col] = true
		class, ok := schemaClasses[table][col]
		switch {
		case !ok:
			t.Errorf("%s.%s is not classified: decide whether it is personal data the policy names (docs/privacy.md), a credential or operational", table, col)
		case class != operational && class != secret && !slices.Contains(policyCategories, class):
			t.Errorf("%s.%s is %q, which the privacy policy does not name", table, col, class)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for table, cols := range schemaClasses {
		for col := range cols {
			if !seen[table][col] {
				t.Errorf("%s.%s is classified but no longer in the schema: remove it here", table, col)
			}
		}
	}
}
