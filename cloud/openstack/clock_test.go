package openstack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	pollsource "github.com/vigil-ha/vigil/source/poll"
)

// The estimate of the cloud's clock from Date headers (whole seconds, floored) is
// never later than the truth once an answer came after a step of the cloud's clock,
// and within 1 s of it after a few answers, whether the cloud is ahead, behind, or
// stepped forward or back while Vigil runs.
func TestCloudClockFromSkewedDates(t *testing.T) {
	const host = "nova:8774"
	tests := []struct {
		name   string
		offset time.Duration // the cloud's clock minus Vigil's
		step   time.Duration // added to the offset before the 20th request
	}{
		{"cloud 5s ahead", 5*time.Second + 300*time.Millisecond, 0},
		{"cloud 5s behind", -5*time.Second - 700*time.Millisecond, 0},
		{"same clock", 0, 0},
		{"cloud stepped forward 30s", -2 * time.Second, 30 * time.Second},
		{"cloud stepped back 30s", 2 * time.Second, -30 * time.Second},
		{"cloud stepped back 3s", 400 * time.Millisecond, -3 * time.Second},
		{"cloud stepped back 1.5s", 400 * time.Millisecond, -1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local := time.Date(2026, 11, 30, 11, 0, 0, 123456789, time.UTC)
			c := newCloudClock(func() time.Time { return local })
			c.setHost(host)
			if _, ok := c.CloudNow(); ok {
				t.Fatal("CloudNow ok before any answer")
			}
			offset := tt.offset
			truth := func() time.Time { return local.Add(offset) }
			sinceStep := 0
			for i := range 40 {
				if i == 20 {
					offset += tt.step
					sinceStep = 0
				}
				sent := local
				local = local.Add(15 * time.Millisecond) // Nova stamps its answer
				date := truth().Truncate(time.Second)
				local = local.Add(10 * time.Millisecond) // the answer arrives
				c.observe(host, date, sent, local)
				sinceStep++
				// Between two answers (requests every 1.37 s: the Date's sub-second
				// phase differs each time).
				for _, after := range []time.Duration{0, 500 * time.Millisecond, 1300 * time.Millisecond} {
					at := local.Add(after)
					func() {
						saved := local
						local = at
						defer func() { local = saved }()
						got, ok := c.CloudNow()
						if !ok {
							t.Fatalf("answer %d: CloudNow not ok", i)
						}
						lag := truth().Sub(got)
						if lag < 0 {
							t.Fatalf("answer %d (+%v): estimate %v is %v later than the cloud's clock %v", i, after, got, -lag, truth())
						}
						if sinceStep >= 3 && lag >= time.Second {
							t.Fatalf("answer %d (+%v): estimate %v lags the cloud's clock %v by %v, want < 1s", i, after, got, truth(), lag)
						}
					}()
				}
				local = local.Add(1370*time.Millisecond - 25*time.Millisecond)
			}
		})
	}
}

// Only Nova's API answers set the clock: keystone or a proxy's 5xx have their own.
func TestCloudClockIgnoresOtherHosts(t *testing.T) {
	local := time.Date(2026, 11, 30, 11, 0, 0, 0, time.UTC)
	c := newCloudClock(func() time.Time { return local })
	c.setHost("nova:8774")
	c.observe("keystone:5000", local.Add(time.Hour), local, local)
	if _, ok := c.CloudNow(); ok {
		t.Fatal("keystone's Date was taken as Nova's clock")
	}
	c.observe("nova:8774", local.Add(-time.Hour), local, local)
	if got, ok := c.CloudNow(); !ok || !got.Equal(local.Add(-time.Hour)) {
		t.Fatalf("CloudNow %v %v, want Nova's Date", got, ok)
	}
}

// fakeNova is a compute API whose clock is Vigil's plus skew: its Date headers,
// its servers' updated times and its changes-since filter are all on that clock.
type fakeNova struct {
	skew    time.Duration
	mu      sync.Mutex
	updated map[string]time.Time
	status  map[string]string
}

func (n *fakeNova) now() time.Time { return time.Now().Add(n.skew).UTC() }

func (n *fakeNova) set(id, status string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.status[id], n.updated[id] = status, n.now()
}

func (n *fakeNova) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", n.now().Format(http.TimeFormat))
	switch r.URL.Path {
	case "/v2.1/os-services":
		fmt.Fprintf(w, `{"services": [{"id": "uuid-1", "binary": "nova-compute", "host": "h1", "zone": "az1",
		  "status": "enabled", "state": "up", "updated_at": %q, "forced_down": false}]}`, n.now().Format("2006-01-02T15:04:05.000000"))
	case "/v2.1/servers/detail":
		var since time.Time
		if s := r.URL.Query().Get("changes-since"); s != "" {
			since, _ = time.Parse(time.RFC3339, s)
		}
		n.mu.Lock()
		var rows []string
		for id, up := range n.updated {
			if up.Before(since) {
				continue
			}
			rows = append(rows, fmt.Sprintf(`{"id": %q, "name": %q, "status": %q, "OS-EXT-SRV-ATTR:host": "h1",
			  "OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": "active", "image": {"id": "img"}, "updated": %q}`,
				id, id, n.status[id], up.Format(time.RFC3339)))
		}
		n.mu.Unlock()
		fmt.Fprintf(w, `{"servers": [%s]}`, strings.Join(rows, ","))
	default:
		novaErr(w, 404, "itemNotFound", r.URL.Path)
	}
}

// With Nova's clock 5 s behind or ahead of Vigil's, a server that goes to ERROR
// right after a poll is in the next incremental listing: the poller computes
// changes-since on the clock the driver reads from Nova's Date headers. The
// driver's clock is never ahead of Nova's.
func TestIncrementalListingWithSkewedNova(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Second, 5 * time.Second, -time.Hour} {
		t.Run(fmt.Sprint("nova ", skew), func(t *testing.T) {
			nova := &fakeNova{skew: skew, updated: map[string]time.Time{}, status: map[string]string{}}
			for i := range 3 {
				nova.set(fmt.Sprintf("vm%d", i), model.StatusActive)
			}
			d := fakeDriver(t, nova)
			if _, ok := d.CloudNow(); ok {
				t.Fatal("CloudNow ok before Nova answered")
			}
			p := &pollsource.Poller{Lister: d, FullEvery: time.Hour}
			ctx := context.Background()
			first := p.Poll(ctx, time.Now())
			if first.Err != "" || !first.Full || len(first.Servers) != 3 {
				t.Fatalf("first poll %+v, want a full listing of 3", first)
			}
			got, ok := d.CloudNow()
			truth := nova.now()
			if !ok || got.After(truth) || truth.Sub(got) > time.Second+100*time.Millisecond {
				t.Fatalf("CloudNow %v (ok %v), Nova's clock %v: want at most 1 s (and a round trip) earlier, never later", got, ok, truth)
			}
			// The first poll read CloudAt before Nova had answered; this one after.
			second := p.Poll(ctx, time.Now())
			if second.Err != "" || second.CloudAt.IsZero() || second.CloudAt.After(nova.now()) {
				t.Fatalf("second poll %+v: want CloudAt on Nova's clock, never ahead of it", second)
			}
			nova.set("vm1", model.StatusError)
			third := p.Poll(ctx, time.Now())
			if third.Err != "" || third.Full {
				t.Fatalf("third poll %+v, want an incremental listing", third)
			}
			for _, s := range third.Servers {
				if s.ID == "vm1" && s.Status == model.StatusError {
					return
				}
			}
			t.Fatalf("vm1 went to ERROR right after a poll but the next incremental listing has %+v", third.Servers)
		})
	}
}

// A step back too small for an answer to reveal (answers every 2 s, all with the
// same sub-second phase, so none bounds the clock tightly enough from above) leaves
// the estimate late by at most that step, and only until the answers before it are
// older than clockWindow.
func TestCloudClockForgetsSmallStepBack(t *testing.T) {
	const host = "nova:8774"
	local := time.Date(2026, 11, 30, 11, 0, 0, 350_000_000, time.UTC)
	c := newCloudClock(func() time.Time { return local })
	c.setHost(host)
	offset := 700 * time.Millisecond
	answer := func() {
		sent := local
		local = local.Add(10 * time.Millisecond)
		c.observe(host, local.Add(offset).Truncate(time.Second), sent, local)
	}
	for range 20 {
		answer()
		local = local.Add(2*time.Second - 10*time.Millisecond)
	}
	offset -= 300 * time.Millisecond
	stepped := local
	for local.Sub(stepped) < clockWindow+5*time.Second {
		answer()
		got, _ := c.CloudNow()
		if lag := local.Add(offset).Sub(got); lag < -300*time.Millisecond {
			t.Fatalf("%v after the step: estimate %v later than the cloud, more than the step", local.Sub(stepped), -lag)
		}
		local = local.Add(2*time.Second - 10*time.Millisecond)
	}
	for range 5 {
		answer()
		got, _ := c.CloudNow()
		if lag := local.Add(offset).Sub(got); lag < 0 || lag >= time.Second {
			t.Fatalf("%v after the step: estimate lags the cloud by %v, want within [0, 1s)", local.Sub(stepped), lag)
		}
		local = local.Add(2*time.Second - 10*time.Millisecond)
	}
}
