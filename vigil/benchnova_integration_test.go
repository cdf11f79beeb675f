package vigil

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// Issue 16, criterion 6: `vigil bench nova` at smoke size (one round of each
// contender, 2 servers) on the OpenStack peer with its BMCs and Masakari: each
// round ends with every server ACTIVE on another host, evacuated exactly once,
// and the report carries what the README quotes.
func TestIntegrationBenchNova(t *testing.T) {
	if os.Getenv("VIGIL_OPENSTACK_CLOUD") == "" || os.Getenv("VIGIL_IPMI_OPENSTACK") == "" || os.Getenv("VIGIL_MASAKARI_PEER") == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD, VIGIL_IPMI_OPENSTACK and VIGIL_MASAKARI_PEER are needed: start test/peers/openstack/up.sh, " +
			"../shared/peers/ipmi/up.sh --openstack and ../shared/peers/masakari/up.sh, source test/peers/openstack/env.sh " +
			"and set VIGIL_IPMI_OPENSTACK=1 VIGIL_MASAKARI_PEER=1")
	}
	pw := os.Getenv("IPMI_PASSWORD")
	if pw == "" {
		pw = "vigil-ipmi"
	}
	t.Setenv("VIGIL_IPMI_PASSWORD", pw)
	_, file, _, _ := runtime.Caller(0)
	cfg, err := LoadConfig(filepath.Join(filepath.Dir(file), "..", "bench", "nova-peer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rep, err := BenchNova(ctx, BenchNovaOptions{Cloud: os.Getenv("VIGIL_OPENSTACK_CLOUD"), AMQP: os.Getenv("VIGIL_AMQP_URL"),
		Config: cfg, Rounds: 1, Servers: 2, Progress: testWriter{t}})
	if err != nil {
		t.Fatalf("bench nova: %v", err)
	}
	var table strings.Builder
	_ = rep.WriteTable(&table)
	t.Log(table.String())
	if len(rep.Rounds) != 3 {
		t.Fatalf("%d rounds, want one per contender", len(rep.Rounds))
	}
	for _, rd := range rep.Rounds {
		if rd.Error != "" {
			t.Errorf("%s round: %s", rd.Contender, rd.Error)
			continue
		}
		if rd.Seconds <= 0 || len(rd.Targets) != 2 || slices.Contains(rd.Targets, rd.Host) {
			t.Errorf("%s round on %s: %.1f s, servers on %v: want every server elsewhere", rd.Contender, rd.Host, rd.Seconds, rd.Targets)
		}
		for id, n := range rd.Evacuations {
			if n != 1 {
				t.Errorf("%s round: server %s evacuated %d times by Nova's record, want 1", rd.Contender, id, n)
			}
		}
		if rd.Dominant == "" || rd.NovaDown < 0 || rd.RestoreSeconds <= 0 {
			t.Errorf("%s round: dominant %q, nova down %.1f, restore %.1f", rd.Contender, rd.Dominant, rd.NovaDown, rd.RestoreSeconds)
		}
	}
	vigil := rep.Rounds[0]
	for _, m := range []string{"host verdict", "fence confirmed", "forced down", "first evacuate"} {
		if !hasMilestone(vigil.Milestones, m) {
			t.Errorf("Vigil's round lacks the milestone %q: %+v", m, vigil.Milestones)
		}
	}
	if rep.Commit == "" || rep.NovaMachine.Cores == 0 || rep.Started.IsZero() || len(rep.Summary) != 3 || rep.Summary[1].Ratio != 1 || rep.Summary[0].Ratio <= 0 {
		t.Errorf("report provenance or summary missing: commit %q, machine %+v, started %v, summary %+v", rep.Commit, rep.NovaMachine, rep.Started, rep.Summary)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
