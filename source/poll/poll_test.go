package poll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

func world(servers int) (*sim.Cloud, *time.Time) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := sim.New(sim.DefaultConfig(), func() time.Time { return now })
	for h := range 4 {
		c.AddHost(fmt.Sprintf("h%d", h), "a", servers)
	}
	for i := range servers {
		_, _ = c.CreateServer(fmt.Sprintf("vm%d", i), fmt.Sprintf("h%d", i%4))
	}
	return c, &now
}

// The cost of a poll does not grow with the number of servers.
func TestCallsPerPollAreConstant(t *testing.T) {
	perPoll := map[int]map[string]int{}
	for _, n := range []int{3, 60, 3000} {
		c, now := world(n)
		p := &Poller{Lister: c, FullEvery: time.Minute}
		const polls = 10
		for range polls {
			*now = now.Add(2 * time.Second)
			if obs := p.Poll(context.Background(), *now); obs.Err != "" {
				t.Fatal(obs.Err)
			}
		}
		calls := c.Calls()
		perPoll[n] = calls
		// Server groups are listed with each poll too (a driver may answer them
		// from a cache: the OpenStack one reads them once a minute).
		if calls["list-servers"] != polls || calls["list-hosts"] != polls || calls["list-server-groups"] != polls || len(calls) != 3 {
			t.Fatalf("%d servers, %d polls: calls %v, want one list of each kind per poll and nothing else", n, polls, calls)
		}
	}
	t.Logf("calls for 10 polls: 3 servers %v, 60 servers %v, 3000 servers %v", perPoll[3], perPoll[60], perPoll[3000])
}

func TestIncrementalBetweenFullListings(t *testing.T) {
	c, now := world(20)
	p := &Poller{Lister: c, FullEvery: time.Minute}
	*now = now.Add(10 * time.Second) // the servers were created before the first poll
	first := p.Poll(context.Background(), *now)
	if !first.Full || len(first.Servers) != 20 {
		t.Fatalf("first poll: full=%v with %d servers, want a full listing of 20", first.Full, len(first.Servers))
	}
	*now = now.Add(5 * time.Second)
	ids, _ := c.ListServers(context.Background(), time.Time{})
	if err := c.Crash(ids[7].ID); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(5 * time.Second)
	obs := p.Poll(context.Background(), *now)
	if obs.Full || len(obs.Servers) != 1 || obs.Servers[0].ID != ids[7].ID || obs.Servers[0].Status != model.StatusError {
		t.Fatalf("incremental poll: full=%v servers %+v, want only the crashed one", obs.Full, obs.Servers)
	}
	*now = now.Add(time.Minute)
	if obs := p.Poll(context.Background(), *now); !obs.Full || len(obs.Servers) != 20 {
		t.Fatalf("after FullEvery: full=%v with %d servers", obs.Full, len(obs.Servers))
	}
}

func TestFailedListingSaysSo(t *testing.T) {
	c, now := world(3)
	p := &Poller{Lister: c, FullEvery: time.Minute}
	c.FailNext("list-servers", cloud.ErrUnavailable)
	obs := p.Poll(context.Background(), *now)
	if obs.Err == "" || obs.Hosts != nil || obs.Servers != nil {
		t.Fatalf("failed poll: %+v, want only an error", obs)
	}
	// The next poll is full again: nothing was listed.
	if obs := p.Poll(context.Background(), *now); obs.Err != "" || !obs.Full {
		t.Fatalf("poll after a failure: %+v", obs)
	}
}

// noClock is a driver that cannot tell the cloud's time: only cloud.Lister.
type noClock struct{ cloud.Lister }

// A server that changes right after a poll is in the next incremental listing,
// whichever way the cloud's clock is skewed from Vigil's: changes-since is computed
// on the cloud's clock. A driver without a clock keeps Vigil's (no skew to absorb).
func TestChangeAfterPollSeenWithSkewedCloudClock(t *testing.T) {
	tests := []struct {
		name    string
		skew    time.Duration // the cloud's clock minus Vigil's
		noClock bool
	}{
		{"cloud 5s behind", -5 * time.Second, false},
		{"cloud 5s ahead", 5 * time.Second, false},
		{"cloud 1h behind", -time.Hour, false},
		{"no skew", 0, false},
		{"driver without a clock", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vigil := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := sim.New(sim.DefaultConfig(), func() time.Time { return vigil.Add(tt.skew) })
			c.AddHost("h0", "a", 10)
			for i := range 5 {
				if _, err := c.CreateServer(fmt.Sprintf("vm%d", i), "h0"); err != nil {
					t.Fatal(err)
				}
			}
			var lister cloud.Lister = c
			if tt.noClock {
				lister = noClock{c}
			}
			p := &Poller{Lister: lister, FullEvery: time.Minute}
			ctx := context.Background()
			vigil = vigil.Add(10 * time.Second)
			first := p.Poll(ctx, vigil)
			if first.Err != "" || !first.Full || len(first.Servers) != 5 {
				t.Fatalf("first poll: %+v, want a full listing of 5", first)
			}
			if want := vigil.Add(tt.skew); !tt.noClock && !first.CloudAt.Equal(want) {
				t.Errorf("first poll's CloudAt %v, want the cloud's clock when it started, %v", first.CloudAt, want)
			}
			if hb := vigil.Add(tt.skew); tt.noClock && !first.CloudAt.Equal(hb) {
				t.Errorf("CloudAt %v from a driver without a clock, want the newest heartbeat %v", first.CloudAt, hb)
			}
			vigil = vigil.Add(100 * time.Millisecond)
			all, _ := c.ListServers(ctx, time.Time{})
			crashed := all[3].ID
			if err := c.Crash(crashed); err != nil {
				t.Fatal(err)
			}
			vigil = vigil.Add(2 * time.Second)
			obs := p.Poll(ctx, vigil)
			if obs.Err != "" || obs.Full {
				t.Fatalf("second poll: %+v, want an incremental listing", obs)
			}
			for _, s := range obs.Servers {
				if s.ID == crashed && s.Status == model.StatusError {
					return
				}
			}
			t.Fatalf("the server that crashed 100ms after the last poll is not in the next incremental listing (got %d servers: %+v); it would be seen only at the next full listing", len(obs.Servers), obs.Servers)
		})
	}
}

// A cloud whose clock was stepped back between two polls stamps changes before the
// previous listing's start: only a full listing is sure to show them.
func TestCloudClockSteppedBackGetsFullListing(t *testing.T) {
	vigil := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	skew := time.Duration(0)
	c := sim.New(sim.DefaultConfig(), func() time.Time { return vigil.Add(skew) })
	c.AddHost("h0", "a", 10)
	id, err := c.CreateServer("vm0", "h0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Poller{Lister: c, FullEvery: time.Hour}
	ctx := context.Background()
	vigil = vigil.Add(10 * time.Second)
	if obs := p.Poll(ctx, vigil); !obs.Full {
		t.Fatalf("first poll %+v", obs)
	}
	vigil = vigil.Add(time.Second)
	skew = -30 * time.Second
	if err := c.Crash(id); err != nil {
		t.Fatal(err)
	}
	vigil = vigil.Add(time.Second)
	obs := p.Poll(ctx, vigil)
	if len(obs.Servers) != 1 || obs.Servers[0].Status != model.StatusError {
		t.Fatalf("after the cloud's clock went back 30 s: full=%v servers %+v, want the crashed server", obs.Full, obs.Servers)
	}
	if !obs.Full {
		t.Fatal("want a full listing")
	}
}

func TestChangesSince(t *testing.T) {
	vigil := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	cloudT := vigil.Add(-5 * time.Second) // the cloud 5 s behind
	tests := []struct {
		name        string
		prev        listing
		cloudNow    time.Time
		want        time.Time
		incremental bool
	}{
		{"first listing", listing{}, cloudT, time.Time{}, false},
		{"cloud clock", listing{at: vigil, cloudAt: cloudT}, cloudT.Add(2 * time.Second), cloudT.Add(-Overlap), true},
		{"no cloud time at all: Vigil's", listing{at: vigil}, time.Time{}, vigil.Add(-Overlap), true},
		{"cloud time unknown last time", listing{at: vigil}, cloudT, time.Time{}, false},
		{"cloud time unknown now", listing{at: vigil, cloudAt: cloudT}, time.Time{}, time.Time{}, false},
		{"cloud clock went back", listing{at: vigil, cloudAt: cloudT}, cloudT.Add(-time.Second), time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, inc := changesSince(tt.prev, tt.cloudNow)
			if !got.Equal(tt.want) || inc != tt.incremental {
				t.Fatalf("changesSince = %v, %v; want %v, %v", got, inc, tt.want, tt.incremental)
			}
		})
	}
}

// A Nova that sends no Date header (the test peer's) still gets incremental
// listings on its own time: the newest heartbeat of its compute services, not a
// full listing at every poll, and not Vigil's clock.
func TestNoDateHeaderUsesTheNewestHeartbeat(t *testing.T) {
	vigil := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	skew := -5 * time.Second
	c := sim.New(sim.DefaultConfig(), func() time.Time { return vigil.Add(skew) })
	c.AddHost("h0", "a", 10)
	id, err := c.CreateServer("vm0", "h0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Poller{Lister: unreadClock{noClock{c}}, FullEvery: time.Hour}
	ctx := context.Background()
	vigil = vigil.Add(10 * time.Second)
	if obs := p.Poll(ctx, vigil); !obs.Full || !obs.CloudAt.Equal(vigil.Add(skew)) {
		t.Fatalf("first poll: full=%v CloudAt %v, want full and the newest heartbeat %v", obs.Full, obs.CloudAt, vigil.Add(skew))
	}
	vigil = vigil.Add(100 * time.Millisecond)
	if err := c.Crash(id); err != nil {
		t.Fatal(err)
	}
	vigil = vigil.Add(2 * time.Second)
	obs := p.Poll(ctx, vigil)
	if obs.Full {
		t.Fatal("a full listing at every poll when the driver cannot read the cloud's clock")
	}
	if len(obs.Servers) != 1 || obs.Servers[0].Status != model.StatusError {
		t.Fatalf("incremental listing %+v, want the crashed server", obs.Servers)
	}
}

// unreadClock is a driver with a clock it cannot read (no Date header).
type unreadClock struct{ cloud.Lister }

func (unreadClock) CloudNow() (time.Time, bool) { return time.Time{}, false }
