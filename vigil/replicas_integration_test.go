package vigil

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
)

// freshMySQL creates an empty database on the server of $VIGIL_MYSQL_DSN (dropped
// at the end) and returns the mysql:// store address of it.
func freshMySQL(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("VIGIL_MYSQL_DSN")
	if dsn == "" {
		t.Skip("VIGIL_MYSQL_DSN is not set: no MariaDB/MySQL server for two replicas to share (test/peers/mariadb/setup.sh prints one)")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("VIGIL_MYSQL_DSN does not parse: %v", err)
	}
	name := fmt.Sprintf("vigil_test_%08x", rand.Uint32())
	admin := cfg.Clone()
	admin.DBName = ""
	conn, err := mysql.NewConnector(admin)
	if err != nil {
		t.Fatal(err)
	}
	root := sql.OpenDB(conn)
	t.Cleanup(func() { root.Close() })
	if _, err := root.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = root.Exec("DROP DATABASE " + name) })
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Two replicas on one MariaDB store: the standby says who leads (/readyz 503,
// changes refused with the leader named); when the leader stops renewing (dead:
// it never runs again), the standby takes over within 2x the lease TTL and
// recovers a crash; the old leader, woken, acts on nothing.
func TestIntegrationStandbyTakesOverOnMariaDB(t *testing.T) {
	dsn := freshMySQL(t)
	ccfg := sim.DefaultConfig()
	ccfg.ActionLatency, ccfg.ServiceDownTime = 200*time.Millisecond, time.Second
	cloud := sim.New(ccfg, time.Now)
	var ids []string
	for h := range 3 {
		name := fmt.Sprintf("host-%d", h)
		cloud.AddHost(name, "a", 10)
		id, err := cloud.CreateServer(fmt.Sprintf("vm-%d", h), name)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	const ttl = 2 * time.Second
	opts := func(id string) Options {
		cfg := DefaultConfig()
		cfg.HA.LeaseTTL = ttl
		return Options{Listen: "127.0.0.1:0", DB: dsn, Interval: 100 * time.Millisecond, Config: cfg,
			Compute: cloud, Fencer: cloud, Log: quiet(), ReplicaID: id}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := Start(ctx, opts("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Engine.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if !a.Engine.Leads() {
		t.Fatalf("the first replica leads nothing: %+v", a.Engine.Leadership())
	}
	if err := a.Engine.CreateCluster(ctx, model.Cluster{Name: "web", Members: ids, Desired: len(ids), Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	lastRenewal := time.Now() // a is never ticked again: dead, as after kill -9
	b, err := Start(ctx, opts("b"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	base := "http://" + b.Addr()
	// At once: b stands by, and says who leads.
	time.Sleep(200 * time.Millisecond)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"holder": "a"`) {
		t.Fatalf("standby /readyz: %d %s; want 503 naming leader a", code, body)
	}
	token, err := b.CreateToken(ctx, "standby-test")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/clusters", strings.NewReader(`{"name":"x","members":[],"desired":0}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "shard all: a") {
		t.Fatalf("a change on the standby: %d %s; want 503 naming leader a", resp.StatusCode, body)
	}
	// b takes over once a's lease went unrenewed for a TTL.
	for !b.Engine.Leads() {
		if time.Since(lastRenewal) > 2*ttl+time.Second {
			t.Fatalf("b did not take over %s after a's last renewal (TTL %s): %+v", time.Since(lastRenewal), ttl, b.Engine.Leadership())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(lastRenewal)
	t.Logf("b leads %s after a's last renewal (TTL %s)", took.Round(time.Millisecond), ttl)
	if took > 2*ttl {
		t.Fatalf("takeover took %s, more than 2x the TTL", took)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("leader /readyz: %d %s", code, body)
	}
	// b answers a crash.
	if err := cloud.Crash(ids[0]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		incs, err := b.Store.Incidents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(incs) > 0 && incs[0].Subject.ID == ids[0] && incs[0].State == model.IncidentResolved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new leader did not recover %s: %+v", ids[0], incs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// a wakes (a paused process resumed): it sees a failure, and neither acts nor
	// journals.
	if err := cloud.Crash(ids[1]); err != nil {
		t.Fatal(err)
	}
	_ = a.Engine.Tick(ctx) // the lease it held is gone: nothing to do
	if a.Engine.Leads() {
		t.Fatalf("the old leader still leads after waking: %+v", a.Engine.Leadership())
	}
	// ids[1] is answered once, by b: one incident, one reboot intent, every
	// incident under b's epoch.
	deadline = time.Now().Add(20 * time.Second)
	for {
		incs, err := b.Store.Incidents(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		n, resolved := 0, false
		for _, in := range incs {
			if in.Epoch != b.Engine.Epoch() {
				t.Fatalf("incident %d on %s under epoch %d, not the leader's %d", in.ID, in.Subject, in.Epoch, b.Engine.Epoch())
			}
			if in.Subject.ID == ids[1] {
				n++
				resolved = in.State == model.IncidentResolved
			}
		}
		if n > 1 {
			t.Fatalf("%d incidents for %s: the old leader opened one", n, ids[1])
		}
		if resolved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not recovered: %+v", ids[1], incs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	evs, err := b.Store.Events(ctx, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	intents := 0
	for _, e := range evs {
		if e.Subject == "server/"+ids[1] && strings.HasPrefix(e.Message, "intent: ") {
			intents++
		}
	}
	if intents != 1 {
		t.Fatalf("%d intents journaled for %s, want 1 (the leader's)", intents, ids[1])
	}
}
