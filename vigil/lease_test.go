package vigil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// owner is a running Vigil protecting three servers of a simulated cloud.
type owner struct {
	t     *testing.T
	cloud *sim.Cloud
	db    string
	ids   []string
	app   *App
	stop  context.CancelFunc
	done  chan error
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startOwner(t *testing.T) *owner {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.ActionLatency, cfg.ServiceDownTime = 200*time.Millisecond, time.Second
	o := &owner{t: t, cloud: sim.New(cfg, time.Now), db: filepath.Join(t.TempDir(), "vigil.db")}
	for h := range 3 {
		name := fmt.Sprintf("host-%d", h)
		o.cloud.AddHost(name, "a", 10)
		id, err := o.cloud.CreateServer(fmt.Sprintf("vm-%d", h), name)
		if err != nil {
			t.Fatal(err)
		}
		o.ids = append(o.ids, id)
	}
	app, err := Start(context.Background(), o.options("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	o.app = app
	ctx, cancel := context.WithCancel(context.Background())
	if err := app.Engine.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.Engine.CreateCluster(ctx, model.Cluster{Name: "web", Members: o.ids, Desired: len(o.ids), Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	o.stop, o.done = cancel, make(chan error, 1)
	go func() { o.done <- app.Run(ctx) }()
	t.Cleanup(o.close)
	return o
}

// options start a Vigil on the owner's cloud and database.
func (o *owner) options(listen string) Options {
	return Options{Listen: listen, DB: o.db, Interval: 100 * time.Millisecond, Config: DefaultConfig(),
		Compute: o.cloud, Fencer: o.cloud, Log: quiet()}
}

// close stops the owner and returns how its Run ended.
func (o *owner) close() {
	if o.stop == nil {
		return
	}
	o.stop()
	if err := <-o.done; err != nil {
		o.t.Errorf("the owner's Run ended with %v", err)
	}
	o.stop = nil
}

// recovers crashes a protected server and waits for the owner to bring it back.
func (o *owner) recovers(id string) {
	o.t.Helper()
	if err := o.cloud.Crash(id); err != nil {
		o.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-o.done:
			o.stop = nil
			o.t.Fatalf("the owner stopped protecting the cloud: its Run returned %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		if incs, err := o.app.Store.Incidents(context.Background(), 10); err == nil {
			for _, in := range incs {
				s, _ := o.cloud.Server(id)
				if in.Subject.ID == id && in.State == model.IncidentResolved && s.Status == model.StatusActive {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			s, _ := o.cloud.Server(id)
			o.t.Fatalf("the owner did not recover crashed server %s within 20 s: it is %s, open incidents %+v", id, s.Status, o.app.Engine.OpenIncidents())
		}
	}
}

// A second Vigil started on a database whose owner is alive must fail with a
// sentence naming that owner, change nothing, and leave the owner protecting the
// cloud: a fault injected after the refused start is still recovered. Both ways a
// second start can go wrong are covered: its port is taken (it used to claim the
// recoveries first, then fail to bind), or it is free.
func TestSecondStartLeavesTheOwnerProtecting(t *testing.T) {
	host, _ := os.Hostname()
	for _, c := range []struct {
		name   string
		listen func(ownerAddr string) string
	}{
		{"its port is in use", func(addr string) string { return addr }},
		{"its port is free", func(string) string { return "127.0.0.1:0" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := startOwner(t)
			epoch := o.app.Engine.Epoch()
			second, err := Start(context.Background(), o.options(c.listen(o.app.Addr())))
			if err == nil {
				second.Close()
				t.Errorf("a second Vigil started on a database in use")
			} else {
				t.Logf("second start: %v", err)
				if !errors.Is(err, store.ErrHeld) {
					t.Errorf("the refusal %v is not store.ErrHeld", err)
				}
				for _, want := range []string{fmt.Sprintf("PID %d", os.Getpid()), "on host " + host, "owner since", "API on " + o.app.Addr(), "changed nothing"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("the refusal %q lacks %q", err, want)
					}
				}
			}
			// The owner's record beside the lock is still the owner's.
			var rec store.Owner
			data, _ := os.ReadFile(o.db + ".lock")
			owner := o.app.Store.(interface{ Owner() store.Owner }).Owner()
			if err := json.Unmarshal(data, &rec); err != nil || rec.Addr != o.app.Addr() || !rec.Since.Equal(owner.Since) {
				t.Errorf("the owner's record after the refused start: %+v (%v), want %+v", rec, err, owner)
			}
			// A fault after the refused start: the owner still answers it.
			o.recovers(o.ids[0])
			o.close()

			// The owner is gone: a third start takes over, and its epoch is the next
			// one after the owner's (the refused start bumped nothing).
			third, err := Start(context.Background(), o.options("127.0.0.1:0"))
			if err != nil {
				t.Fatalf("start after the owner stopped: %v", err)
			}
			defer third.Close()
			if got := third.Engine.Epoch(); got != epoch+1 {
				t.Errorf("epoch after the owner stopped: %d, want %d (the owner's %d, plus one)", got, epoch+1, epoch)
			}
		})
	}
}

// A start that fails for any other reason (an address already taken by something
// else, a malformed one) claims nothing: the next start on the database gets the
// first epoch, and a malformed address is refused before the database is created.
func TestFailedStartClaimsNothing(t *testing.T) {
	o := &owner{t: t, cloud: sim.New(sim.DefaultConfig(), time.Now), db: filepath.Join(t.TempDir(), "vigil.db")}
	if _, err := Start(context.Background(), o.options("127.0.0.1")); err == nil || !strings.Contains(err.Error(), "listen address") {
		t.Fatalf("start with a malformed address: %v", err)
	}
	if _, err := os.Stat(o.db); !os.IsNotExist(err) {
		t.Fatalf("a start refused for its address touched the database: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if _, err := Start(context.Background(), o.options(taken.Addr().String())); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start on a taken address: %v", err)
	}
	app, err := Start(context.Background(), o.options("127.0.0.1:0"))
	if err != nil {
		t.Fatalf("start after a failed one: %v", err)
	}
	defer app.Close()
	if got := app.Engine.Epoch(); got != 1 {
		t.Fatalf("epoch after a failed start: %d, want 1 (the failed start claimed nothing)", got)
	}
}
