package openstack

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/source/notifications"
)

// TestIntegrationNotificationLatency: a server put into ERROR is seen from Nova's
// notification, and how long after the API call.
func TestIntegrationNotificationLatency(t *testing.T) {
	d := newDriver(t, peerCloud(t))
	url := os.Getenv("VIGIL_AMQP_URL")
	if url == "" {
		t.Skip("VIGIL_AMQP_URL unset: source test/peers/openstack/env.sh")
	}
	id := bootServers(t, d, uniquePrefix(t), 1, "")[0]

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := notifications.New(notifications.Config{URL: url, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	type seen struct {
		ev notifications.Event
		at time.Time
	}
	events := make(chan seen, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(ev notifications.Event) {
			select {
			case events <- seen{ev, time.Now()}:
			default:
			}
		})
	}()
	defer func() { cancel(); <-done }()
	waitFor(t, 15*time.Second, "notification consumer connected", func() (bool, string) {
		return c.Stats().Connected, c.Stats().LastError
	})

	start := time.Now()
	resetState(t, d, id, "error")
	answered := time.Since(start)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-events:
			for _, srv := range s.ev.Obs.Servers {
				if srv.ID == id && srv.Status == model.StatusError {
					if s.ev.Obs.Source != "notification" || s.ev.Obs.Full {
						t.Fatalf("want a partial notification observation, got %+v", s.ev.Obs)
					}
					t.Logf("os-resetState error -> %s observation ERROR %v after the call began (the API answered after %v); stats %+v",
						s.ev.Type, s.at.Sub(start).Round(time.Microsecond), answered.Round(time.Microsecond), c.Stats())
					return
				}
			}
		case <-deadline:
			t.Fatalf("no ERROR observation of %s within 20 s; consumer stats %+v", id, c.Stats())
		}
	}
}
