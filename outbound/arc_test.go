package outbound_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/outbound"
	"github.com/vakt/vakt/outbound/dc09"
)

// TestARCDeliversForwardAndRestore: a forward and its restore reach a DC-09
// receiver on loopback as Contact ID 1101/3101 with the zone and the sequence
// number the engine keeps, and nothing else.
func TestARCDeliversForwardAndRestore(t *testing.T) {
	got := make(chan dc09.Received, 4)
	r := &dc09.Receiver{OnFrame: func(rc dc09.Received) { got <- rc }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go r.Serve(ln)
	defer r.Close()
	link, err := dc09.NewLink(dc09.LinkConfig{Addr: ln.Addr().String(), Account: "1234", Receiver: "0", Line: "0",
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer link.Close()
	arc := &outbound.ARC{Link: link, Group: 1}
	for _, d := range []vakt.Delivery{
		{ID: "a-7/0", Alarm: "a-7", Target: "arc", Zone: 101, Kind: vakt.EventEmergency, Seq: 15},
		{ID: "a-7/1", Alarm: "a-7", Target: "arc", Zone: 101, Kind: vakt.EventEmergency, Seq: 16, Restore: true},
	} {
		receipt, err := arc.Deliver(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		rc := <-got
		want := "#1234|1101 01 101"
		if d.Restore {
			want = "#1234|3101 01 101"
		}
		if rc.Frame.Data != want || rc.Frame.Seq != d.Seq || rc.Frame.Account != "1234" {
			t.Errorf("receiver got %+v, want data %q seq %d", rc.Frame, want, d.Seq)
		}
		if receipt == "" {
			t.Error("no receipt")
		}
	}
}

func TestMessageSIA(t *testing.T) {
	m, err := outbound.Message(vakt.Delivery{Zone: 5, Kind: vakt.EventCall, Restore: true}, "sia-dcs", 2)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != dc09.SIADCS || m.Data != "Nri2/MH005" {
		t.Fatalf("message = %+v, want SIA-DCS Nri2/MH005", m)
	}
	if _, err := outbound.Message(vakt.Delivery{Zone: 1000}, "adm-cid", 1); err == nil {
		t.Fatal("zone 1000 accepted")
	}
}

// TestARCMessageCarriesNoPersonalData (G7): whatever a delivery holds beside it (a
// display text, a call address), what goes to the alarm receiving centre is the
// event code, the group and the zone, in both formats: no text, no name.
func TestARCMessageCarriesNoPersonalData(t *testing.T) {
	d := vakt.Delivery{ID: "a-1/1", Alarm: "a-1", Target: "arc", Zone: 101, Kind: vakt.EventEmergency,
		Address: "Anna Hansen", Text: "Room 101 Anna Hansen fall"}
	for _, format := range []string{"adm-cid", "sia-dcs"} {
		m, err := outbound.Message(d, format, 1)
		if err != nil {
			t.Fatal(err)
		}
		all := m.ID + m.Data
		for _, x := range m.Extended {
			all += x
		}
		for _, never := range []string{"Anna", "Hansen", "Room", "fall", "a-1"} {
			if strings.Contains(all, never) {
				t.Errorf("%s message %+v carries %q", format, m, never)
			}
		}
	}
}
