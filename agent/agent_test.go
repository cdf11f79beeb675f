package agent_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/agent"
	"github.com/vigil-ha/vigil/model"
)

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func runAgent(t *testing.T, cfg agent.Config) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent.Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("agent.Run did not return within 5s of its context's end")
		}
	})
	return cancel
}

// One path whose Vigil never answers delays no beat of the other path, and the
// beats carry the token Vigil checks.
func TestDeadPathDelaysNoOther(t *testing.T) {
	c := newCollector(t, func() model.AgentOrders { return model.AgentOrders{} })
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // read it all: only then does the server see the client hang up
		<-r.Context().Done()
	}))
	t.Cleanup(stuck.Close)
	const interval = 100 * time.Millisecond
	runAgent(t, agent.Config{Host: "host-a", Token: "tok-host-a", Interval: interval,
		Paths: []agent.Path{{Name: model.PathStorage, URL: stuck.URL}, {Name: model.PathManagement, URL: c.srv.URL}}})

	first := c.waitFor(t, 0, 5*time.Second, "on management", func(b model.AgentBeat) bool { return b.Path == model.PathManagement })
	last := c.waitFor(t, 0, 5*time.Second, "number 10 on management", func(b model.AgentBeat) bool {
		return b.Path == model.PathManagement && b.Seq >= first.Seq+9
	})
	// 9 intervals; a path held up by the stuck one would take seconds (its timeout).
	if took := last.At.Sub(first.At); took > 9*interval+500*time.Millisecond {
		t.Fatalf("10 management beats took %s at a %s interval: the stuck storage path delays them", took, interval)
	}
	if last.Report != nil {
		t.Fatalf("an agent without libvirt sent a report: %+v", last.Report)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.beats {
		if b.Path != model.PathManagement {
			t.Fatalf("a beat arrived on %s, which never answers", b.Path)
		}
	}
}

// Two agents hear each other over UDP; when one dies, the other's beats show its
// silence growing (what tells Vigil whether a host it cannot hear is heard by peers).
func TestPeersHeardAndSilenceGrows(t *testing.T) {
	c := newCollector(t, func() model.AgentOrders { return model.AgentOrders{} })
	addrA, addrB := freeUDP(t), freeUDP(t)
	const interval = 100 * time.Millisecond
	runAgent(t, agent.Config{Host: "host-a", Token: "tok-host-a", Interval: interval, ListenPeers: addrA,
		Peers: []agent.Peer{{Name: "host-b", Addr: addrB}},
		Paths: []agent.Path{{Name: model.PathManagement, URL: c.srv.URL}}})
	stopB := runAgent(t, agent.Config{Host: "host-b", Token: "tok-host-b", Interval: interval, ListenPeers: addrB,
		Peers: []agent.Peer{{Name: "host-a", Addr: addrA}},
		Paths: []agent.Path{{Name: model.PathManagement, URL: c.srv.URL}}})

	heard := func(host, peer string, below time.Duration) func(model.AgentBeat) bool {
		return func(b model.AgentBeat) bool {
			age, ok := b.Peers[peer]
			return b.Host == host && ok && age < below
		}
	}
	c.waitFor(t, 0, 5*time.Second, "of host-a hearing host-b", heard("host-a", "host-b", 3*interval))
	c.waitFor(t, 0, 5*time.Second, "of host-b hearing host-a", heard("host-b", "host-a", 3*interval))

	stopB()
	from := c.mark()
	b := c.waitFor(t, from, 5*time.Second, "of host-a with host-b silent for 10 intervals", func(b model.AgentBeat) bool {
		age, ok := b.Peers["host-b"]
		return b.Host == "host-a" && ok && age >= 10*interval
	})
	t.Logf("host-b stopped: host-a reports it last heard %s ago", b.Peers["host-b"])
}

// Vigil away: the agent backs off, and once Vigil is back its first beats arrive
// within the backoff cap, with the same boot and a higher seq.
func TestVigilAwayThenBack(t *testing.T) {
	c := newCollector(t, func() model.AgentOrders { return model.AgentOrders{} })
	var away atomic.Bool
	away.Store(true)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if away.Load() {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		c.rcv.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	runAgent(t, agent.Config{Host: "host-a", Token: "tok-host-a", Interval: 50 * time.Millisecond,
		Paths: []agent.Path{{Name: model.PathManagement, URL: srv.URL}}})
	time.Sleep(500 * time.Millisecond) // several failed tries
	away.Store(false)
	b := c.waitFor(t, 0, 12*time.Second, "after Vigil came back", func(model.AgentBeat) bool { return true })
	if b.Seq < 3 {
		t.Fatalf("first beat back has seq %d: the agent did not retry while Vigil was away", b.Seq)
	}
}
