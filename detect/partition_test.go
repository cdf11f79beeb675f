package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// A host that dies while Vigil believes itself cut off from most agents is
// latched "controller-partitioned" with the others; once the others are heard
// again, too few are silent for that to be a partition, and the dead one is judged
// on its own signals (its BMC's off): it fails, and its servers are recovered. It
// stayed partitioned for ever before (sim seed 96 of the two-replica sweep).
func TestPartitionLatchEndsWhenTheOthersAreHeard(t *testing.T) {
	d := New(Config{HostDownGrace: 10 * time.Second})
	hosts := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	var hs []model.Host
	power := map[string]model.Power{}
	for _, h := range hosts {
		hs = append(hs, up(h))
		power[h] = model.PowerOn
	}
	seq := uint64(0)
	// beats: every host in alive beats on both paths, hearing the others of alive.
	beats := func(at time.Duration, alive []string) {
		now := t0.Add(at)
		seq++
		var bs []model.AgentBeat
		for _, h := range alive {
			peers := map[string]time.Duration{}
			for _, o := range alive {
				if o != h {
					peers[o] = time.Second
				}
			}
			for _, p := range []string{model.PathManagement, model.PathStorage} {
				bs = append(bs, model.AgentBeat{Host: h, Path: p, Boot: "b", Seq: seq, Sent: now, At: now, Interval: 5 * time.Second, Peers: peers})
			}
		}
		d.Step(now, model.Observation{At: now, Hosts: hs, Power: power, Agents: bs})
	}
	verdict := func(h string) model.Verdict { return d.View().Verdicts[model.Subject{Kind: model.KindHost, ID: h}] }
	at := time.Duration(0)
	for ; at <= time.Minute; at += 5 * time.Second {
		beats(at, hosts)
	}
	// Vigil hears only h6 for a while: five silent at once, who heard each other.
	for end := at + 30*time.Second; at <= end; at += 5 * time.Second {
		beats(at, []string{"h6"})
	}
	if v := verdict("h1"); v.Host != string(model.HostPartitioned) {
		t.Fatalf("h1 after five agents went silent at once: %s (%s), want %s", v.Host, v.Rule, model.HostPartitioned)
	}
	// h1 loses its power meanwhile (its compute service goes down with it); the
	// others are heard again.
	power["h1"] = model.PowerOff
	hs[0].Service = model.ServiceDown
	alive := []string{"h2", "h3", "h4", "h5", "h6"}
	for end := at + time.Minute; at <= end; at += 5 * time.Second {
		beats(at, alive)
	}
	for _, h := range alive {
		if v := verdict(h); v.Failed || v.Host == string(model.HostPartitioned) {
			t.Errorf("%s heard again: %s (%s), want up", h, v.Host, v.Rule)
		}
	}
	v := verdict("h1")
	if v.Host == string(model.HostPartitioned) || !v.Failed {
		t.Fatalf("h1, silent and off while the 5 others are heard again: %s failed=%v (%s): %s, want failed on its own signals (Nova's service down past its grace)",
			v.Host, v.Failed, v.Rule, fmt.Sprint(v.Evidence))
	}
}
