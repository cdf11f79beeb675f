package vigil

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A smoke-size `vigil bench scale`: the report a user reads has its figures (CPU,
// memory, calls per poll, detection and recovery of the faults injected), and a
// poll lists the cloud once per kind whatever its size.
func TestBenchScaleSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of real time")
	}
	rep, err := BenchScale(context.Background(), BenchScaleOptions{Hosts: 50, Servers: 500, Warmup: time.Second,
		Duration: 8 * time.Second, Crashes: 2, Interval: 500 * time.Millisecond, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Polls < 5 || rep.CPU <= 0 || rep.PeakRSSMiB <= 0 || rep.StartToFirstFull <= 0 || rep.Machine.Cores == 0 || rep.Machine.Commit == "" {
		t.Fatalf("report lacks figures: %+v", rep)
	}
	// One poll may straddle the window's start or end.
	slack := 1.5 / float64(rep.Polls)
	for _, kind := range []string{"list-hosts", "list-servers"} {
		if n := rep.CallsPerPoll[kind]; n < 1-slack || n > 1+slack {
			t.Errorf("%s per poll = %.2f, want 1 (bulk listing, whatever the size)", kind, n)
		}
	}
	if len(rep.Faults) != 3 {
		t.Fatalf("faults injected: %+v, want 2 crashes and a host death", rep.Faults)
	}
	if rep.Detection.N < 2 || rep.Recovery.N < 2 {
		t.Errorf("the crashes were not seen detected and recovered: detection %+v, recovery %+v, faults %+v", rep.Detection, rep.Recovery, rep.Faults)
	}
	table := ScaleTable([]BenchScaleReport{rep})
	for _, want := range []string{"share of one core", "peak RSS", "calls/poll list-servers", "detection p50", "commit "} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if _, err := json.Marshal([]BenchScaleReport{rep}); err != nil {
		t.Fatal(err)
	}
}

// A smoke-size `vigil bench storm`: all the hosts of one segment die at once; the
// brake engages and Vigil fences, forces down and evacuates nothing.
func TestBenchStormSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of real time")
	}
	rep, err := BenchStorm(context.Background(), BenchStormOptions{Hosts: 500, Servers: 1000, SegmentSize: 50, Kill: 50,
		Warmup: time.Second, Hold: 2 * time.Second, Timeout: 30 * time.Second, Interval: 500 * time.Millisecond, HostDownGrace: 2 * time.Second,
		NoLatency: true, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("brake after %s, %d host incidents waiting", rep.TimeToBrake, rep.HostsWaiting)
	if !rep.Braked || rep.TimeToBrake <= 0 || !strings.Contains(rep.Reason, "brake engaged") {
		t.Fatalf("the brake did not engage: %+v", rep)
	}
	if rep.ActionsTotal != 0 {
		t.Fatalf("actions taken in a storm: %v", rep.Actions)
	}
	if rep.HostsWaiting < 25 {
		t.Errorf("only %d host incidents wait on the brake, want most of the 50 dead hosts", rep.HostsWaiting)
	}
	if table := StormTable(rep); !strings.Contains(table, "actions taken | 0") {
		t.Errorf("table:\n%s", table)
	}
}
