package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vakt/vakt/store/storetest"
	"github.com/vakt/vakt/sync/wire"
	"golang.org/x/crypto/bcrypt"
)

// directorySynced asks the gateway to fetch the directory now and waits until the
// cursor moved past before.
func directorySynced(t *testing.T, m *Main, before string) string {
	t.Helper()
	m.Cloud.Retry()
	var cur string
	eventually(t, "the directory page applied", func() bool {
		st, err := m.Cloud.Stats(context.Background())
		cur = st.Directory.Cursor
		return err == nil && cur != before && st.Directory.LastError == ""
	})
	return cur
}

func hash(t *testing.T, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost) // fast; the gateway checks only the format
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// loginStatus tries a login and returns the HTTP status and token.
func loginStatus(c client, staff, secret string) (int, string) {
	code, body := c.do("POST", "/api/v1/sessions", "", map[string]string{"staff_id": staff, "secret": secret})
	var r struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(body, &r)
	return code, r.Token
}

// TestCloudDirectoryThroughCloudsimAdmin: staff are added, changed and removed
// through cloudsim's admin endpoint and the gateway follows: a new person can log
// in, a changed secret ends the sessions made with the old one and new roles
// apply, a removed person cannot log in any more, and an erasure request removes
// the person's name, phone and e-mail from the database file and its WAL, and is
// confirmed by the staff.erased audit entry reaching the cloud.
func TestCloudDirectoryThroughCloudsimAdmin(t *testing.T) {
	cl := startCloud(t)
	admin := httptest.NewServer(cl.sim.AdminHandler())
	defer admin.Close()
	adm := client{t: t, base: admin.URL}
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "  directory_interval: 1h\n")
	m, c := startGatewayLog(t, cfg, &lockedBuffer{})
	cursor := directorySynced(t, m, "-")

	put := func(s wire.Staff) {
		t.Helper()
		if code, body := adm.do("PUT", "/admin/gateways/"+demoGateway+"/staff/"+s.ID, "", s); code/100 != 2 {
			t.Fatalf("cloudsim staff put: %d %s", code, body)
		}
	}
	anna := wire.Staff{ID: "n-77", Name: "Zq7 Annacloud Berg", Phone: "+4790771177", Email: "zq7.anna@pleie.example",
		Roles: []string{"nurse"}, Zone: "east", SecretHash: hash(t, "first-secret-77")}
	put(anna)
	cursor = directorySynced(t, m, cursor)
	code, old := loginStatus(c, "n-77", "first-secret-77")
	if code != http.StatusCreated {
		t.Fatalf("login of the person the cloud added: %d", code)
	}

	// Changed: roles and secret. The session made with the old secret ends.
	anna.Roles, anna.SecretHash = []string{"nurse", "nurse-lead"}, hash(t, "second-secret-77")
	put(anna)
	cursor = directorySynced(t, m, cursor)
	if code, body := c.do("GET", "/api/v1/me", old, nil); code != http.StatusUnauthorized {
		t.Errorf("the session of the old secret still works: %d %s", code, body)
	}
	if code, _ := loginStatus(c, "n-77", "first-secret-77"); code != http.StatusUnauthorized {
		t.Errorf("the old secret still logs in: %d", code)
	}
	code, tok := loginStatus(c, "n-77", "second-secret-77")
	if code != http.StatusCreated {
		t.Fatalf("login with the new secret: %d", code)
	}
	if code, body := c.do("GET", "/api/v1/me", tok, nil); code != http.StatusOK || !strings.Contains(string(body), "nurse-lead") {
		t.Errorf("the new roles do not apply: %d %s", code, body)
	}

	// Removed: no login, the session ends.
	if code, body := adm.do("DELETE", "/admin/gateways/"+demoGateway+"/staff/n-77", "", nil); code/100 != 2 {
		t.Fatalf("cloudsim staff remove: %d %s", code, body)
	}
	cursor = directorySynced(t, m, cursor)
	if code, _ := c.do("GET", "/api/v1/me", tok, nil); code != http.StatusUnauthorized {
		t.Errorf("the removed person's session still works: %d", code)
	}
	if code, _ := loginStatus(c, "n-77", "second-secret-77"); code != http.StatusUnauthorized {
		t.Errorf("the removed person still logs in: %d", code)
	}

	// Erased: another person, known to the gateway, then an erasure request.
	bo := wire.Staff{ID: "n-88", Name: "Wy4 Bocloud Lund", Phone: "+4790884488", Email: "wy4.bo@pleie.example",
		Roles: []string{"nurse"}, SecretHash: hash(t, "secret-88-bo")}
	put(bo)
	cursor = directorySynced(t, m, cursor)
	needles := storetest.Needles(bo.Name, bo.Phone, bo.Email)
	if hits, _ := storetest.Found(m.DB.Path(), needles); len(hits) == 0 {
		t.Fatal("the person the cloud added is not in the database: the grep would prove nothing")
	}
	code, body := adm.do("POST", "/admin/gateways/"+demoGateway+"/erasures", "", map[string]string{"staff_id": "n-88"})
	var er struct {
		RequestID string `json:"request_id"`
	}
	if code/100 != 2 || json.Unmarshal(body, &er) != nil || er.RequestID == "" {
		t.Fatalf("cloudsim erase: %d %s", code, body)
	}
	directorySynced(t, m, cursor)
	if hits, err := storetest.Found(m.DB.Path(), needles); err != nil || len(hits) > 0 {
		t.Errorf("after the erasure the database or its WAL still holds: %v %v", hits, err)
	}
	if code, _ := loginStatus(c, "n-88", "secret-88-bo"); code != http.StatusUnauthorized {
		t.Errorf("the erased person still logs in: %d", code)
	}
	eventually(t, "the erasure confirmed in the cloud", func() bool {
		for _, s := range cl.seqs() {
			if e := cl.entry(s); e.Kind == wire.KindAudit && strings.Contains(string(e.Body), `"subject":"erasure:`+er.RequestID+`"`) {
				return strings.Contains(string(e.Body), `"action":"staff.erased"`)
			}
		}
		return false
	})
}
