package sim

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func agentCloud(t *testing.T) (*Cloud, *clock, string) {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := New(Config{ActionLatency: 2 * time.Second, ServiceDownTime: 20 * time.Second}, clk.now)
	c.AddHost("h1", "seg0", 10)
	c.AddHost("h2", "seg0", 10)
	id, err := c.CreateServer("vm", "h1")
	if err != nil {
		t.Fatal(err)
	}
	c.EnableAgents(AgentConfig{Interval: 5 * time.Second, Threshold: 3, Probed: func(string) bool { return true }, Seed: 1})
	return c, clk, id
}

// run advances the clock by d in 1 s steps and returns the beats that arrived.
func run(c *Cloud, clk *clock, d time.Duration) []model.AgentBeat {
	var out []model.AgentBeat
	for end := clk.t.Add(d); clk.t.Before(end); {
		clk.t = clk.t.Add(time.Second)
		out = append(out, c.Beats()...)
	}
	return out
}

func from(beats []model.AgentBeat, host, path string) []model.AgentBeat {
	return slices.DeleteFunc(slices.Clone(beats), func(b model.AgentBeat) bool { return b.Host != host || path != "" && b.Path != path })
}

func lastDomain(t *testing.T, beats []model.AgentBeat, id string) model.Domain {
	t.Helper()
	for i := len(beats) - 1; i >= 0; i-- {
		if r := beats[i].Report; r != nil {
			for _, d := range r.Domains {
				if d.UUID == id {
					return d
				}
			}
		}
	}
	t.Fatalf("no report shows %s", id)
	return model.Domain{}
}

// A host's agent beats on both paths every interval and its peers hear it; a cut
// management path leaves the storage path; a dead host is silent everywhere, and
// when it is back its agent starts over with a new boot.
func TestAgentPathsAndDeath(t *testing.T) {
	c, clk, _ := agentCloud(t)
	b := run(c, clk, time.Minute)
	if n := len(from(b, "h1", model.PathManagement)); n < 11 || n > 14 {
		t.Fatalf("h1's management beats in a minute at 5 s: %d", n)
	}
	if age, ok := from(b, "h2", "")[len(from(b, "h2", ""))-1].Peers["h1"]; !ok || age > 5*time.Second {
		t.Fatalf("h2 should hear its peer h1: %v", from(b, "h2", "")[0].Peers)
	}
	_ = c.CutPath("h1", model.PathManagement, true, false)
	b = run(c, clk, 30*time.Second)
	if len(from(b, "h1", model.PathManagement)) != 0 || len(from(b, "h1", model.PathStorage)) < 5 {
		t.Fatalf("management cut: want storage beats only, got %d management, %d storage",
			len(from(b, "h1", model.PathManagement)), len(from(b, "h1", model.PathStorage)))
	}
	if heard := c.HeardOn("h1"); !slices.Equal(heard, []string{model.PathStorage, "peer h2"}) {
		t.Fatalf("HeardOn(h1) = %v", heard)
	}
	boot := from(b, "h1", "")[0].Boot
	_ = c.KillHost("h1")
	b = run(c, clk, time.Minute)
	if n := len(from(b, "h1", "")); n != 0 {
		t.Fatalf("a dead host's agent sent %d beats", n)
	}
	if age := from(b, "h2", "")[len(from(b, "h2", ""))-1].Peers["h1"]; age < 50*time.Second {
		t.Fatalf("h2 still hears dead h1 (%s ago)", age)
	}
	if c.HeardOn("h1") != nil {
		t.Fatalf("a dead host is heard on %v", c.HeardOn("h1"))
	}
	_ = c.PowerOnHost("h1")
	b = run(c, clk, 10*time.Second)
	if got := from(b, "h1", model.PathStorage); len(got) == 0 || got[0].Boot == boot || got[0].Seq != 1 {
		t.Fatalf("after power on: want a new boot from seq 1, got %+v (old boot %s)", got, boot)
	}
}

// A hung guest: Nova ACTIVE, domain running, the guest agent failing more with each
// probe; a soft reboot leaves it hung, a hard reboot cures it.
func TestGuestHang(t *testing.T) {
	c, clk, id := agentCloud(t)
	run(c, clk, 10*time.Second)
	if err := c.HangGuest(id); err != nil {
		t.Fatal(err)
	}
	d := lastDomain(t, run(c, clk, 20*time.Second), id)
	if s, _ := c.Server(id); s.Status != model.StatusActive || d.State != model.DomainRunning || d.GuestAgent.OK || d.GuestAgent.Failures < 3 {
		t.Fatalf("hung: Nova %s, domain %+v, guest agent %+v", s.Status, d, d.GuestAgent)
	}
	if err := c.Reboot(context.Background(), id, false); err != nil {
		t.Fatal(err)
	}
	run(c, clk, 10*time.Second)
	if c.GuestTrouble(id) != "guest hung" {
		t.Fatalf("a soft reboot must not cure a frozen kernel: %q", c.GuestTrouble(id))
	}
	if err := c.Reboot(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	d = lastDomain(t, run(c, clk, 10*time.Second), id)
	if c.GuestTrouble(id) != "" || !d.GuestAgent.OK {
		t.Fatalf("after a hard reboot: trouble %q, guest agent %+v", c.GuestTrouble(id), d.GuestAgent)
	}
}

// A qemu crash is reported at once (an event, the domain shutoff/crashed) while Nova
// says ACTIVE until its power sync.
func TestQemuCrashSeenBeforeNova(t *testing.T) {
	c, clk, id := agentCloud(t)
	run(c, clk, 7*time.Second)
	if err := c.CrashQemu(id, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	b := run(c, clk, 2*time.Second) // sent at once, it arrives tens of milliseconds later
	var ev []model.DomainEvent
	for _, x := range b {
		if x.Report != nil {
			ev = append(ev, x.Report.Events...)
		}
	}
	if len(ev) == 0 || ev[0].Event != "stopped" || ev[0].Detail != model.ReasonCrashed {
		t.Fatalf("within 2 s of the crash: events %+v", ev)
	}
	if s, _ := c.Server(id); s.Status != model.StatusActive {
		t.Fatalf("Nova before its power sync: %s", s.Status)
	}
	run(c, clk, 5*time.Minute)
	if s, _ := c.Server(id); s.Status != model.StatusShutoff || s.Intent != model.IntentOn {
		t.Fatalf("Nova after its power sync: %s intent %s", s.Status, s.Intent)
	}
}
