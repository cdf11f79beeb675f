package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/vigil"
)

// `vigil demo --db F` while another Vigil owns F stops with a sentence naming that
// Vigil, and leaves it serving.
func TestSecondVigilOnADatabaseInUse(t *testing.T) {
	c := sim.New(sim.DefaultConfig(), time.Now)
	c.AddHost("host-0", "a", 10)
	dir, err := filepath.EvalSymlinks(t.TempDir()) // the refusal names the file by its real path
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "vigil.db")
	ctx, cancel := context.WithCancel(context.Background())
	app, err := vigil.Start(ctx, vigil.Options{Listen: "127.0.0.1:0", DB: db, Interval: 100 * time.Millisecond,
		Config: vigil.DefaultConfig(), Compute: c, Fencer: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	useToken(t, app)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the owner's Run: %v", err)
		}
	}()

	_, err = vigilCmd(t, "demo", "--db", db, "--listen", app.Addr(), "--duration", "1s", "--hosts", "3", "--servers", "3")
	if err == nil {
		t.Fatal("a demo on a database in use ran")
	}
	t.Logf("vigil: %v", err)
	host, _ := os.Hostname()
	for _, want := range []string{"not starting: " + db, "in use by another live Vigil", "PID " + strconv.Itoa(os.Getpid()), "on host " + host,
		"owner since", "API on " + app.Addr(), "stop it first, or give this one another --db"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q", want)
		}
	}
	if out, err := vigilCmd(t, "ctl", "status", "--server", "http://"+app.Addr()); err != nil || !strings.Contains(out, "host-0") {
		t.Fatalf("the owner after the refused demo: %v\n%s", err, out)
	}
}

func TestServeChecksItsFlagsFirst(t *testing.T) {
	db := filepath.Join(t.TempDir(), "vigil.db")
	for _, c := range []struct{ flag, want string }{
		{"--interval=0s", "--interval: must be positive"},
		{"--full-every=-1s", "--full-every: must be positive"},
	} {
		_, err := vigilCmd(t, "serve", "--os-cloud", "nope", "--db", db, c.flag)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %s: %v, want %q", c.flag, err, c.want)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("serve with a bad flag touched the database: %v", err)
	}
}
