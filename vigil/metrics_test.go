package vigil

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/metrics"
)

// A started Vigil serves /metrics with what it sees (hosts, leadership) and what it
// did (the simulated cloud's calls, its BMC reads), as `vigil demo` wires them.
func TestStartServesMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := metrics.New(metrics.Config{Version: "v-test"})
	cfg := sim.DefaultConfig()
	cfg.OnCall = m.SimCall
	c := sim.New(cfg, time.Now)
	for _, h := range []string{"h1", "h2", "h3"} {
		c.AddHost(h, "a", 4)
	}
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "v.db"), Interval: 50 * time.Millisecond,
		Config: DefaultConfig(), Compute: c, Fencer: c, Metrics: m, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	token, err := app.CreateToken(ctx, "prometheus")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	want := []string{`vigil_verdicts{kind="host",verdict="up"} 3`, `vigil_shard_leader{shard="all"} 1`,
		`vigil_cloud_api_calls_total{endpoint="list-hosts",method="SIM",status="ok"}`,
		`vigil_bmc_calls_total{op="power-status",outcome="ok"}`, `version="v-test"`}
	var text string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+app.Addr()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token) // a read: closed unless auth.open_reads
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		if resp.StatusCode == http.StatusOK && containsAll(text, want) {
			break
		}
	}
	if !containsAll(text, want) {
		t.Fatalf("/metrics lacks one of %q:\n%s", want, text)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
