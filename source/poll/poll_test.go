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
		if calls["list-servers"] != polls || calls["list-hosts"] != polls || len(calls) != 2 {
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
