package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/metrics"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// rig is an engine on a simulated cloud and a virtual clock, observed by its
// metrics and served by the API with /metrics, as `vigil serve` and `vigil demo`
// wire it.
type rig struct {
	t     *testing.T
	now   time.Time
	cloud *sim.Cloud
	eng   *engine.Engine
	srv   *httptest.Server
	ids   []string
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return r.now }
	m := metrics.New(metrics.Config{Version: "test"})
	cfg := sim.DefaultConfig()
	cfg.OnCall = m.SimCall
	r.cloud = sim.New(cfg, clock)
	for h := 1; h <= 3; h++ {
		r.cloud.AddHost(fmt.Sprintf("host-%d", h), "a", 10)
		for i := range 2 {
			id, _ := r.cloud.CreateServer(fmt.Sprintf("vm-%d-%d", h, i), fmt.Sprintf("host-%d", h))
			r.ids = append(r.ids, id)
		}
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.eng, err = engine.New(context.Background(), engine.Config{Compute: r.cloud, Fencer: m.Fencer(r.cloud), Store: m.Journal(db), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	m.Attach(r.eng, model.Limits{})
	r.srv = httptest.NewServer(api.Handler(r.eng, db, slog.New(slog.NewTextHandler(io.Discard, nil)), api.WithMetrics(m.Handler())))
	t.Cleanup(r.srv.Close)
	r.tick()
	if err := r.eng.CreateCluster(context.Background(), model.Cluster{Name: "web", Members: r.ids[:2]}); err != nil {
		t.Fatal(err)
	}
	r.tick()
	return r
}

func (r *rig) tick() {
	r.now = r.now.Add(time.Second)
	if err := r.eng.Tick(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// scrape returns /metrics as a scraper reads it.
func (r *rig) scrape() string {
	r.t.Helper()
	resp, err := http.Get(r.srv.URL + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

// value is the sample of series (its name and labels as exposed, e.g.
// `vigil_recoveries_total{outcome="resolved"}`); missing fails the test.
func value(t *testing.T, text, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && name == series {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in /metrics:\n%s", series, text)
	return 0
}

// killAndRecover kills host-1 (its two protected servers evacuated) and ticks
// until the incident is closed, checking it was open on the way.
func (r *rig) killAndRecover() (during string) {
	r.t.Helper()
	if err := r.cloud.KillHost("host-1"); err != nil {
		r.t.Fatal(err)
	}
	for range 90 {
		r.tick()
		open := len(r.eng.OpenIncidents())
		if open == 1 && during == "" {
			during = r.scrape()
		}
		if during != "" && open == 0 {
			return during
		}
	}
	r.t.Fatalf("host-1's incident not closed after 90 s; open: %+v", r.eng.OpenIncidents())
	return ""
}

// A user watching /metrics through a host failure sees the incident open then
// close, one recovery resolved, and how long detection, fencing and recovery took.
func TestMetricsFollowAHostFailureAndItsRecovery(t *testing.T) {
	r := newRig(t)
	before := r.scrape()
	for series, want := range map[string]float64{
		"vigil_incidents_open":                            0,
		`vigil_recoveries_total{outcome="resolved"}`:      0,
		"vigil_time_to_recover_seconds_count":             0,
		`vigil_verdicts{kind="host",verdict="up"}`:        3,
		`vigil_verdicts{kind="server",verdict="healthy"}`: 6,
		`vigil_brake_engaged{scope="segment/a"}`:          0,
		`vigil_shard_leader{shard="all"}`:                 1,
	} {
		if got := value(t, before, series); got != want {
			t.Errorf("before the failure: %s = %v, want %v", series, got, want)
		}
	}
	during := r.killAndRecover()
	if got := value(t, during, "vigil_incidents_open"); got != 1 {
		t.Errorf("during the recovery: vigil_incidents_open = %v, want 1", got)
	}
	after := r.scrape()
	for series, want := range map[string]float64{
		"vigil_incidents_open":                                                     0,
		`vigil_recoveries_total{outcome="resolved"}`:                               1,
		`vigil_recoveries_total{outcome="escalated"}`:                              0,
		"vigil_time_to_recover_seconds_count":                                      1,
		"vigil_time_to_fence_seconds_count":                                        1,
		"vigil_time_to_detect_seconds_count":                                       1,
		`vigil_step_duration_seconds_count{action="fence",outcome="succeeded"}`:    1,
		`vigil_step_duration_seconds_count{action="evacuate",outcome="succeeded"}`: 2,
		`vigil_bmc_calls_total{op="power-off",outcome="ok"}`:                       1,
	} {
		if got := value(t, after, series); got != want {
			t.Errorf("after the recovery: %s = %v, want %v", series, got, want)
		}
	}
	// The times are the journal's: recover spans open -> resolved, which holds the fence.
	rec, fence := value(t, after, "vigil_time_to_recover_seconds_sum"), value(t, after, "vigil_time_to_fence_seconds_sum")
	if rec <= 0 || fence <= 0 || fence > rec {
		t.Errorf("time to fence %vs, to recover %vs: want 0 < fence <= recover", fence, rec)
	}
	if got := value(t, after, `vigil_cloud_api_calls_total{endpoint="evacuate",method="SIM",status="ok"}`); got != 2 {
		t.Errorf("simulated evacuate calls: %v, want 2", got)
	}
	if !strings.Contains(after, `vigil_build_info{commit=`) || !strings.Contains(after, `version="test"`) {
		t.Errorf("no vigil_build_info with the version given:\n%s", after)
	}
}

// TestMetricsPromtool: /metrics, with an incident recovered in it, passes
// `promtool check metrics` (Debian's prometheus package). Skipped without
// promtool unless VIGIL_PROMTOOL=1 (CI installs it).
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("VIGIL_PROMTOOL") == "1" {
			t.Fatal("VIGIL_PROMTOOL=1 but no promtool on PATH (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (Debian's prometheus package); VIGIL_PROMTOOL=1 makes this a failure")
	}
	r := newRig(t)
	r.killAndRecover()
	text := r.scrape()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if !strings.Contains(text, "vigil_time_to_recover_seconds_bucket") {
		t.Fatalf("the checked output lacks the recovery histogram:\n%s", text)
	}
}
