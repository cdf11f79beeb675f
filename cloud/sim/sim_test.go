package sim

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

var ctx = context.Background()

type world struct {
	*Cloud
	now time.Time
	ids []string
}

// newWorld: three hosts a, b, c with one server each.
func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	w := &world{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	w.Cloud = New(cfg, func() time.Time { return w.now })
	for _, h := range []string{"a", "b", "c"} {
		w.AddHost(h, "z", 4)
		id, err := w.CreateServer("vm-"+h, h)
		if err != nil {
			t.Fatal(err)
		}
		w.ids = append(w.ids, id)
	}
	return w
}

func (w *world) wait(d time.Duration) { w.now = w.now.Add(d) }

func (w *world) server(t *testing.T, id string) model.Server {
	t.Helper()
	s, ok := w.Server(id)
	if !ok {
		t.Fatalf("no server %s", id)
	}
	return s
}

func (w *world) service(t *testing.T, host string) model.Host {
	t.Helper()
	hosts, err := w.ListHosts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(hosts, func(h model.Host) bool { return h.Name == host })
	return hosts[i]
}

func cfg() Config {
	return Config{ActionLatency: 2 * time.Second, ServiceDownTime: 6 * time.Second, ConductorDelay: 2 * time.Second}
}

// An evacuation keeps the source host (REBUILD, rebuilding) until the conductor
// places it, then spawns on the target (rebuild_spawning), then ACTIVE there.
func TestEvacuateKeepsSourceUntilPlaced(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	_ = w.KillHost("a")
	w.wait(10 * time.Second)
	if err := w.Evacuate(ctx, id, "b"); err != nil {
		t.Fatal(err)
	}
	if s := w.server(t, id); s.Host != "a" || s.Status != model.StatusRebuild || s.TaskState != "rebuilding" {
		t.Fatalf("just accepted: %+v, want REBUILD/rebuilding on the source a", s)
	}
	w.wait(3 * time.Second) // past the conductor's delay (1-3 s)
	if s := w.server(t, id); s.Host != "b" || s.TaskState != "rebuild_spawning" {
		t.Fatalf("placed: %+v, want rebuild_spawning on b", s)
	}
	w.wait(2 * time.Second)
	if s := w.server(t, id); s.Host != "b" || s.Status != model.StatusActive || s.TaskState != "" {
		t.Fatalf("done: %+v, want ACTIVE on b", s)
	}
	if c := w.Copies()[id]; !slices.Equal(c, []string{"b"}) {
		t.Fatalf("copies %v, want [b]", c)
	}
}

// An answer lost: the action is carried out, the caller sees ErrUnavailable.
func TestAnswerLost(t *testing.T) {
	w := newWorld(t, cfg())
	w.LoseAnswers("reboot", 1)
	err := w.Reboot(ctx, w.ids[0], false)
	if !errors.Is(err, cloud.ErrUnavailable) || !errors.Is(err, ErrAnswerLost) {
		t.Fatalf("reboot: %v, want ErrUnavailable (answer lost)", err)
	}
	if s := w.server(t, w.ids[0]); s.Status != model.StatusReboot || s.TaskState != "rebooting" {
		t.Fatalf("after a lost answer: %+v, want the reboot under way", s)
	}
	if err := w.Reboot(ctx, w.ids[1], false); err != nil {
		t.Fatalf("the next reboot: %v, want its answer", err)
	}
}

// Nova bumps updated_at on every service update: a dead compute forced up looks up
// until ServiceDownTime has passed again.
func TestServiceUpdateBumpsHeartbeat(t *testing.T) {
	w := newWorld(t, cfg())
	_ = w.KillHost("a")
	w.wait(time.Minute)
	if h := w.service(t, "a"); h.Service != model.ServiceDown {
		t.Fatalf("dead for a minute: %+v, want down", h)
	}
	if err := w.ForceDown(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	if h := w.service(t, "a"); h.Service != model.ServiceUp || !h.LastSeenUp.Equal(w.now) {
		t.Fatalf("forced up: %+v, want up with updated_at now", h)
	}
	w.wait(7 * time.Second)
	if h := w.service(t, "a"); h.Service != model.ServiceDown {
		t.Fatalf("7 s after the force-up: %+v, want down again", h)
	}
}

// A host powered on with resume_guests_state_on_host_boot restarts the guests of
// servers still assigned to it; one evacuated after that runs twice (the source is
// cleaned only at its compute's next start). An evacuation accepted before the power
// on is destroyed there by init_host.
func TestResumeGuestsOnBoot(t *testing.T) {
	c := cfg()
	c.ResumeGuestsOnBoot = true
	w := newWorld(t, c)
	id := w.ids[0]
	_ = w.KillHost("a")
	if err := w.ForceDown(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if err := w.PowerOnHost("a"); err != nil {
		t.Fatal(err)
	}
	if got := w.Copies()[id]; !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after the power on: copies %v, want the guest resumed on a", got)
	}
	if err := w.Evacuate(ctx, id, "b"); err != nil { // still forced down: accepted
		t.Fatal(err)
	}
	w.wait(10 * time.Second)
	if got := w.MultiCopies()[id]; !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("evacuated from a running source: copies %v, want [a b]", got)
	}

	w2 := newWorld(t, c)
	id = w2.ids[0]
	_ = w2.KillHost("a")
	w2.wait(10 * time.Second)
	if err := w2.Evacuate(ctx, id, "b"); err != nil {
		t.Fatal(err)
	}
	_ = w2.PowerOnHost("a") // before the conductor placed it: the migration record exists
	w2.wait(10 * time.Second)
	if got := w2.Copies()[id]; !slices.Equal(got, []string{"b"}) {
		t.Fatalf("evacuation accepted before the power on: copies %v, want [b]", got)
	}
}

// A live migration switches the copy over to the destination before the source
// finishes it: if the source dies in between, the copy runs on at the destination
// while the API still says MIGRATING on the source.
func TestLiveMigrationSourceDiesAfterSwitch(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	if err := w.LiveMigrate(id, "b", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	w.wait(6 * time.Second)
	_ = w.KillHost("a")
	w.wait(time.Minute)
	s := w.server(t, id)
	if s.Status != model.StatusMigrating || s.TaskState != "migrating" || s.Host != "a" {
		t.Fatalf("source died after the switch: %+v, want MIGRATING/migrating on a", s)
	}
	if got := w.Copies()[id]; !slices.Equal(got, []string{"b"}) {
		t.Fatalf("copies %v, want [b]", got)
	}
}

// Seeds 1654, 2001: the source loses power during a live migration, before its
// switch-over (the guest ran only there). The migration died with its compute: when
// the host comes back, Nova's init_host aborts it and resets the task, and the guest
// is resumed (resume_guests_state_on_host_boot) or found not running (SHUTOFF). It
// never goes on later as if the compute's memory had survived: no copy appears on
// the destination from a guest that was gone, and the server is never ACTIVE with
// no copy (what only a host agent could see).
func TestLiveMigrationSourceDiesBeforeSwitch(t *testing.T) {
	for _, destDies := range []bool{false, true} {
		for _, resume := range []bool{true, false} {
			c := cfg()
			c.ResumeGuestsOnBoot = resume
			w := newWorld(t, c)
			id := w.ids[0]
			if err := w.LiveMigrate(id, "b", 5*time.Second); err != nil {
				t.Fatal(err)
			}
			w.wait(2 * time.Second)
			_ = w.KillHost("a")
			if destDies {
				_ = w.KillHost("b")
			}
			w.wait(time.Minute)
			if s := w.server(t, id); s.Status != model.StatusMigrating || len(w.Copies()[id]) != 0 {
				t.Fatalf("source dead: %+v copies %v, want MIGRATING with no copy", s, w.Copies()[id])
			}
			_ = w.PowerOnHost("a")
			w.wait(time.Minute)
			s, copies := w.server(t, id), w.Copies()[id]
			switch {
			case resume && (s.Status != model.StatusActive || s.TaskState != "" || s.Host != "a" || !slices.Equal(copies, []string{"a"})):
				t.Errorf("destination dies %v, resume: %s/%q on %s copies %v, want ACTIVE running on a", destDies, s.Status, s.TaskState, s.Host, copies)
			case !resume && (s.Status != model.StatusShutoff || s.TaskState != "" || s.Host != "a" || len(copies) != 0):
				t.Errorf("destination dies %v, no resume: %s/%q on %s copies %v, want SHUTOFF on a, not running", destDies, s.Status, s.TaskState, s.Host, copies)
			}
		}
	}
}

// Seed 367: the destination loses power after the live migration was accepted (Nova
// still saw its service up). The guest cannot switch over to a host without power:
// the migration rolls back, the server stays ACTIVE on its source, one copy there.
func TestLiveMigrationToADeadDestinationRollsBack(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	if err := w.LiveMigrate(id, "b", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = w.KillHost("b")
	w.wait(time.Minute)
	s := w.server(t, id)
	if s.Status != model.StatusActive || s.TaskState != "" || s.Host != "a" {
		t.Fatalf("destination dead before the switch: %+v, want ACTIVE on a", s)
	}
	if got := w.Copies()[id]; !slices.Equal(got, []string{"a"}) {
		t.Fatalf("copies %v, want [a] (never one on the powered-off b)", got)
	}
}

// Cold migration: RESIZE, then VERIFY_RESIZE on the new host until confirmed.
func TestColdMigration(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	if err := w.Migrate(id, "c", false); err != nil {
		t.Fatal(err)
	}
	if s := w.server(t, id); s.Status != model.StatusResize || s.TaskState != "resize_prep" {
		t.Fatalf("started: %+v", s)
	}
	w.wait(10 * time.Second)
	if s := w.server(t, id); s.Status != model.StatusVerify || s.Host != "c" {
		t.Fatalf("migrated: %+v, want VERIFY_RESIZE on c", s)
	}
	if err := w.ConfirmResize(id); err != nil {
		t.Fatal(err)
	}
	if s := w.server(t, id); s.Status != model.StatusActive || s.Host != "c" {
		t.Fatalf("confirmed: %+v, want ACTIVE on c", s)
	}
}

// Seeds 201, 368: a cold-migrated server awaiting confirmation when its new host
// loses power and comes back. Nova resumes its guest with
// resume_guests_state_on_host_boot; without it, the confirmation finds the guest not
// running (SHUTOFF). Never ACTIVE with no copy: no HA system could see that from
// Nova's API and a BMC.
func TestMigratedServerAwaitingConfirmationSurvivesAPowerLoss(t *testing.T) {
	for _, resume := range []bool{true, false} {
		c := cfg()
		c.ResumeGuestsOnBoot = resume
		w := newWorld(t, c)
		id := w.ids[0]
		if err := w.Migrate(id, "c", false); err != nil {
			t.Fatal(err)
		}
		w.wait(10 * time.Second)
		_ = w.KillHost("c")
		w.wait(time.Minute)
		_ = w.PowerOnHost("c")
		w.wait(10 * time.Second)
		if err := w.ConfirmResize(id); err != nil {
			t.Fatal(err)
		}
		s, copies := w.server(t, id), w.Copies()[id]
		switch {
		case resume && (s.Status != model.StatusActive || !slices.Equal(copies, []string{"c"})):
			t.Errorf("resume_guests_state_on_host_boot: %s copies %v, want ACTIVE running on c", s.Status, copies)
		case !resume && (s.Status != model.StatusShutoff || len(copies) != 0):
			t.Errorf("no resume: %s copies %v, want SHUTOFF, not running", s.Status, copies)
		}
	}
}

// A miswired fence entry reaches another host's BMC: its power, its identity, and
// power off powers that host off. A host without a BMC cannot be fenced.
func TestFenceEntries(t *testing.T) {
	w := newWorld(t, cfg())
	ida, _ := w.Identity(ctx, "a")
	idb, _ := w.Identity(ctx, "b")
	if ida == "" || ida == idb {
		t.Fatalf("identities a %q, b %q: want distinct", ida, idb)
	}
	if err := w.SetFenceEntry("a", "b"); err != nil {
		t.Fatal(err)
	}
	if id, _ := w.Identity(ctx, "a"); id != idb {
		t.Fatalf("a's entry reaches b's BMC: identity %q, want %q", id, idb)
	}
	if err := w.PowerOff(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if w.HostPower("a") != model.PowerOn || w.HostPower("b") != model.PowerOff {
		t.Fatalf("power off through a's entry: a %s, b %s; want a on, b off", w.HostPower("a"), w.HostPower("b"))
	}
	if p, _ := w.PowerStatus(ctx, "a"); p != model.PowerOff {
		t.Fatalf("power status through a's entry: %s, want b's (off)", p)
	}
	_ = w.SetFenceEntry("c", "")
	if w.CanFence("c") {
		t.Fatal("c has no BMC: CanFence true")
	}
	if err := w.PowerOff(ctx, "c"); !cloud.IsTerminal(err) {
		t.Fatalf("power off of c: %v, want a terminal error", err)
	}
	// A lying BMC says off and does nothing.
	_ = w.SetBMCLiesOff("c", true)
	_ = w.SetBMC("c", false, true)
	_ = w.SetFenceEntry("c", "c")
	if p, _ := w.PowerStatus(ctx, "c"); p != model.PowerOff || w.HostPower("c") != model.PowerOn {
		t.Fatalf("lying BMC: says %s, truth %s; want says off, truth on", p, w.HostPower("c"))
	}
}

// Reset-state clears Nova's record but stops nothing: an evacuation spawning on a
// live target lands anyway.
func TestResetStateStopsNothing(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	_ = w.KillHost("a")
	w.wait(10 * time.Second)
	if err := w.Evacuate(ctx, id, "b"); err != nil {
		t.Fatal(err)
	}
	if err := w.ResetState(ctx, id); err != nil {
		t.Fatal(err)
	}
	if s := w.server(t, id); s.Status != model.StatusError || s.TaskState != "" || s.Host != "a" {
		t.Fatalf("reset: %+v, want ERROR, no task, on a", s)
	}
	w.wait(10 * time.Second)
	if got := w.Copies()[id]; !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after the reset: copies %v, want the evacuation landed on b", got)
	}
}

// Every heartbeat stops at once; hosts and guests run on.
func TestStopHeartbeats(t *testing.T) {
	w := newWorld(t, cfg())
	w.StopHeartbeats(true)
	w.wait(time.Minute)
	for _, h := range []string{"a", "b", "c"} {
		if s := w.service(t, h); s.Service != model.ServiceDown {
			t.Fatalf("%s: %+v, want down", h, s)
		}
		if tr := w.Truth(h); !tr.Alive || tr.Reporting {
			t.Fatalf("%s: truth %+v, want alive, not reporting", h, tr)
		}
	}
	w.StopHeartbeats(false)
	if s := w.service(t, "a"); s.Service != model.ServiceUp {
		t.Fatalf("heartbeats back: %+v, want up", s)
	}
}

// The notification feed carries every change at the cloud's time.
func TestNotifications(t *testing.T) {
	c := cfg()
	c.Notifications = true
	w := newWorld(t, c)
	w.wait(time.Second)
	_ = w.Crash(w.ids[1])
	ns := w.DrainNotifications()
	if len(ns) != 1 || ns[0].Server.ID != w.ids[1] || ns[0].Server.Status != model.StatusError || !ns[0].At.Equal(w.now) {
		t.Fatalf("notifications %+v, want one ERROR of %s at %s", ns, w.ids[1], w.now)
	}
	if len(w.DrainNotifications()) != 0 {
		t.Fatal("drained twice")
	}
}

// The owner's stop is carried out by the compute (powering-off); a dead compute
// never does it.
func TestStopGoesThroughItsCompute(t *testing.T) {
	w := newWorld(t, cfg())
	if err := w.Stop(w.ids[0]); err != nil {
		t.Fatal(err)
	}
	if s := w.server(t, w.ids[0]); s.TaskState != "powering-off" || s.Intent != model.IntentOff {
		t.Fatalf("stopping: %+v, want powering-off with intent off", s)
	}
	w.wait(2 * time.Second)
	if s := w.server(t, w.ids[0]); s.Status != model.StatusShutoff || len(w.Copies()[w.ids[0]]) != 0 {
		t.Fatalf("stopped: %+v copies %v, want SHUTOFF and no copy", s, w.Copies()[w.ids[0]])
	}
	_ = w.KillHost("b")
	_ = w.Stop(w.ids[1])
	w.wait(time.Minute)
	if s := w.server(t, w.ids[1]); s.Status != model.StatusActive || s.TaskState != "powering-off" {
		t.Fatalf("stop on a dead compute: %+v, want it hanging in powering-off", s)
	}
}

// A power loss kills the work its compute had started: an evacuation spawning on a
// target that dies does not finish when the target comes back; the server, still
// assigned there, goes to ERROR at init_host.
func TestPowerLossDropsStartedWork(t *testing.T) {
	w := newWorld(t, cfg())
	id := w.ids[0]
	_ = w.KillHost("a")
	w.wait(10 * time.Second)
	if err := w.Evacuate(ctx, id, "b"); err != nil {
		t.Fatal(err)
	}
	w.wait(3 * time.Second) // placed on b: rebuild_spawning there
	if s := w.server(t, id); s.Host != "b" || s.TaskState != "rebuild_spawning" {
		t.Fatalf("placed: %+v", s)
	}
	_ = w.KillHost("b")
	_ = w.PowerOnHost("b")
	w.wait(10 * time.Second)
	if s := w.server(t, id); s.Status != model.StatusError || s.TaskState != "" || len(w.Copies()[id]) != 0 {
		t.Fatalf("after b restarted: %+v copies %v, want ERROR, no task, no copy", s, w.Copies()[id])
	}
}
