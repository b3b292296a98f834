package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vakt/vakt/broker"
)

// TestPubackOnlyAfterOnPublish: a button's PUBACK waits for the gateway's commit
// (OnPublish returning nil); a failed commit sends no PUBACK at all, so the button
// keeps the press and sends it again.
func TestPubackOnlyAfterOnPublish(t *testing.T) {
	release := make(chan error)
	seen := make(chan string, 4)
	b := start(t, broker.Options{Clients: clients(), OnPublish: func(topic string, payload []byte) error {
		seen <- topic + " " + string(payload)
		return <-release
	}})
	btn := mustConnect(t, b, btnUser, btnPass, "btn-1", true)

	tok := btn.Publish(btnTopic, 1, false, `{"action":"emergency"}`)
	if got := <-seen; got != btnTopic+` {"action":"emergency"}` {
		t.Fatalf("OnPublish got %q", got)
	}
	select {
	case <-tok.Done():
		t.Fatal("PUBACK before the commit")
	default:
	}
	release <- nil
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("no PUBACK after the commit: %v", tok.Error())
	}

	failed := btn.Publish(btnTopic, 1, false, `{"action":"emergency"}`)
	<-seen
	release <- errors.New("disk full")
	if failed.WaitTimeout(300 * time.Millisecond) {
		t.Fatal("PUBACK for a press that was not committed")
	}
}
