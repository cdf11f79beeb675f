package detect

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// Seed 1834: Vigil fenced a dead host and forced its service down; its BMC then lied
// "off" and an operator powered the host on 20 s after the force-down. Its compute
// reported at once, but updated_at within ownBumpSlack of Vigil's force-down passed
// for the bump of that force-down, already seen in the listing that first showed the
// flag: the host stayed dead, and a server that its compute had just resumed was
// evacuated from it (two copies). Once the bump was seen, a later advance is a
// heartbeat, unless Vigil forced the service down again since (a repeat after a lost
// answer bumps it again: seed 695).
func TestHeartbeatSoonAfterOwnForceDownIsAlive(t *testing.T) {
	for _, c := range []struct {
		name      string
		repeat    bool // Vigil forced the service down again after the flag was seen
		wantAlive bool
	}{
		{"the compute reports 20 s after the force-down", false, true},
		{"the bump of a repeated force-down", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := New(Config{HostDownGrace: 5 * time.Second, ServiceDownTime: 60 * time.Second})
			sec := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			h := model.Host{Name: "h1", Service: model.ServiceUp, LastSeenUp: t0}
			hostStep(d, t0, t0, h)
			h.Service = model.ServiceDown
			for s := 20; s <= 28; s += 2 {
				hostStep(d, sec(s), sec(s), h)
			}
			// Vigil's mark-down: issued at 29 s (Nova bumps updated_at), confirmed by the
			// listing at 30 s that first shows the flag.
			d.SetForcedByVigil(map[string]time.Time{"h1": sec(29)})
			h.ForcedDown, h.LastSeenUp = true, sec(29)
			v := hostStep(d, sec(30), sec(30), h)
			d.SetForcedByVigil(map[string]time.Time{"h1": sec(30)})
			for s := 32; s <= 48; s += 2 {
				v = hostStep(d, sec(s), sec(s), h)
			}
			if !v.Failed {
				t.Fatalf("after Vigil's own force-down of a dead host: %+v, want still dead", v)
			}
			if c.repeat {
				d.SetForcedByVigil(map[string]time.Time{"h1": sec(49)})
			}
			h.LastSeenUp = sec(50)
			v = hostStep(d, sec(50), sec(50), h)
			if alive := v.Host == string(model.HostUp) && !v.Failed; alive != c.wantAlive {
				t.Fatalf("updated_at advanced 20 s after Vigil's force-down, its bump already seen: %+v, want alive=%v", v, c.wantAlive)
			}
		})
	}
}
