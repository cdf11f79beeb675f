package recover_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
)

// lockedJournal is the in-memory journal, safe to share with concurrent readers.
type lockedJournal struct {
	mu sync.Mutex
	journal
}

func (j *lockedJournal) AddStep(ctx context.Context, e int64, st *model.Step) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.journal.AddStep(ctx, e, st)
}
func (j *lockedJournal) UpdateStep(ctx context.Context, e int64, st model.Step) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.journal.UpdateStep(ctx, e, st)
}
func (j *lockedJournal) AppendEvents(ctx context.Context, evs ...model.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.journal.AppendEvents(ctx, evs...)
}

// log is the journal as a person reads it: each event with its step's ID.
func (j *lockedJournal) log() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var b strings.Builder
	for _, ev := range j.events {
		fmt.Fprintf(&b, "%s %s\n", ev.Subject, ev.Message)
	}
	return b.String()
}

// deadHostWorld: host h1 lost its power and is forced down; n servers on it wait
// for their evacuation; every API call takes a second (time.Sleep: the bubble's
// fake clock).
func deadHostWorld(t *testing.T, n int) (*sim.Cloud, []string) {
	cfg := sim.DefaultConfig()
	cfg.CallLatency, cfg.Sleep = time.Second, time.Sleep
	c := sim.New(cfg, time.Now)
	c.AddHost("h1", "a", 2*n)
	c.AddHost("h2", "a", 2*n)
	var ids []string
	for i := range n {
		id, err := c.CreateServer(fmt.Sprintf("vm%02d", i), "h1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := c.KillHost("h1"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetForcedDown("h1", true); err != nil {
		t.Fatal(err)
	}
	return c, ids
}

func evacuations(ids []string) []*model.Step {
	var steps []*model.Step
	for _, id := range ids {
		steps = append(steps, &model.Step{Incident: 1, Action: model.ActEvacuate, Server: id, Host: "h1", Timeout: time.Minute, Rule: "r"})
	}
	return steps
}

// A round of 8 evacuations whose API calls each take a second is done in the time
// of 8/MaxParallel of them (each: its action log read, then the evacuation), not
// 8; and the journal is the same run after run.
func TestRunTakesARoundsEvacuationsAtOnce(t *testing.T) {
	var logs []string
	for run := range 3 {
		synctest.Test(t, func(t *testing.T) {
			c, ids := deadHostWorld(t, 8)
			j := &lockedJournal{journal: journal{steps: map[int64]model.Step{}}}
			x := &recover.Executor{Compute: c, Journal: j, Epoch: 1, Now: time.Now,
				Limits: model.Limits{MaxParallel: 4, PerHost: 8, PerSegment: 8}}
			start := time.Now()
			if err := x.Run(context.Background(), evacuations(ids)); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			// Two waves of four: each a second of action-log reads, a second of evacuations.
			if took != 4*time.Second {
				t.Fatalf("run %d: 8 evacuations of 1 s each, 4 at once, took %s, want 4s", run, took)
			}
			if run == 0 {
				t.Logf("8 evacuations, 1 s per API call, max_parallel 4: %s (one at a time: 16s)", took)
			}
			for _, st := range j.steps {
				if st.State != model.StepIssued {
					t.Fatalf("%s: %s %s", st.Server, st.State, st.Error)
				}
			}
			logs = append(logs, j.log())
		})
	}
	if logs[0] != logs[1] || logs[1] != logs[2] {
		t.Fatalf("the journal differs between runs:\n%s\n---\n%s", logs[0], logs[1])
	}
}

// slowFencer powers hosts off after a delay of its own per host; a host in hang
// never answers until its context ends. It records when each call started.
type slowFencer struct {
	mu      sync.Mutex
	delay   map[string]time.Duration
	hang    map[string]bool
	started map[string]time.Time
	off     map[string]bool
}

func (f *slowFencer) CanFence(string) bool { return true }
func (f *slowFencer) PowerOff(ctx context.Context, host string) error {
	f.mu.Lock()
	f.started[host] = time.Now()
	d, hang := f.delay[host], f.hang[host]
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return fmt.Errorf("power off %s: %w", host, context.DeadlineExceeded)
	}
	time.Sleep(d)
	f.mu.Lock()
	f.off[host] = true
	f.mu.Unlock()
	return nil
}
func (f *slowFencer) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off[host] {
		return model.PowerOff, nil
	}
	return model.PowerOn, nil
}

func newSlowFencer() *slowFencer {
	return &slowFencer{delay: map[string]time.Duration{}, hang: map[string]bool{}, started: map[string]time.Time{}, off: map[string]bool{}}
}

func fences(hosts ...string) []*model.Step {
	var steps []*model.Step
	for i, h := range hosts {
		steps = append(steps, &model.Step{Incident: int64(i + 1), Action: model.ActFence, Host: h, Timeout: time.Minute, Rule: "r"})
	}
	return steps
}

// The journal does not depend on which answer comes first: fences answering in
// plan order and in reverse give the same journal.
func TestRunJournalsInPlanOrderWhateverAnswersFirst(t *testing.T) {
	hosts := []string{"h1", "h2", "h3", "h4", "h5"}
	var logs []string
	for _, reverse := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			f := newSlowFencer()
			for i, h := range hosts {
				d := time.Duration(i+1) * time.Second
				if reverse {
					d = time.Duration(len(hosts)-i) * time.Second
				}
				f.delay[h] = d
			}
			c, _ := deadHostWorld(t, 1)
			j := &lockedJournal{journal: journal{steps: map[int64]model.Step{}}}
			x := &recover.Executor{Compute: c, Fencer: f, Journal: j, Epoch: 1, Now: func() time.Time { return time.Time{} }}
			if err := x.Run(context.Background(), fences(hosts...)); err != nil {
				t.Fatal(err)
			}
			logs = append(logs, j.log())
		})
	}
	if logs[0] != logs[1] {
		t.Fatalf("the journal follows the order of the answers:\n%s\n---\n%s", logs[0], logs[1])
	}
	want := "host/h1 intent"
	if !strings.HasPrefix(logs[0], want) || strings.Index(logs[0], "host/h5 intent") > strings.Index(logs[0], "host/h1 issued") {
		t.Fatalf("want every intent, then every outcome, in plan order:\n%s", logs[0])
	}
}

// A power-off that never answers does not hold back another host's fence: both
// calls go out at once; the hung one ends at its context's deadline, its outcome
// unknown (left an intent for Settle to ask the BMC).
func TestRunAHungPowerOffDelaysNoOtherFence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newSlowFencer()
		f.hang["hA"] = true
		c, _ := deadHostWorld(t, 1)
		j := &lockedJournal{journal: journal{steps: map[int64]model.Step{}}}
		x := &recover.Executor{Compute: c, Fencer: f, Journal: j, Epoch: 1, Now: time.Now}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		steps := fences("hA", "hB")
		if err := x.Run(ctx, steps); err != nil {
			t.Fatal(err)
		}
		if d := f.started["hB"].Sub(start); d != 0 {
			t.Fatalf("hB's power-off went out %s after the round began, behind hA's that never answers", d)
		}
		if !f.off["hB"] || steps[1].State != model.StepIssued {
			t.Fatalf("hB: off %v, step %s", f.off["hB"], steps[1].State)
		}
		if steps[0].State != model.StepIntent {
			t.Fatalf("hA's hung power-off: %s, want an intent (outcome unknown)", steps[0].State)
		}
	})
}

// countingActor counts the evacuations in flight, per host and in all.
type countingActor struct {
	cloud.Actor
	mu             sync.Mutex
	now, max       int
	order          []string
	hostNow, hostM map[string]int
	hostOf         map[string]string
	seg            map[string]string
	segNow, segM   map[string]int
}

func (a *countingActor) Evacuate(ctx context.Context, server, target string) error {
	h := a.hostOf[server]
	a.mu.Lock()
	a.now++
	a.hostNow[h]++
	a.max = max(a.max, a.now)
	a.hostM[h] = max(a.hostM[h], a.hostNow[h])
	a.segNow[a.seg[h]]++
	a.segM[a.seg[h]] = max(a.segM[a.seg[h]], a.segNow[a.seg[h]])
	a.order = append(a.order, "start "+server)
	a.mu.Unlock()
	time.Sleep(time.Second)
	a.mu.Lock()
	a.now--
	a.hostNow[h]--
	a.segNow[a.seg[h]]--
	a.order = append(a.order, "end "+server)
	a.mu.Unlock()
	return nil
}
func (a *countingActor) ForceDown(ctx context.Context, host string, down bool) error {
	a.mu.Lock()
	a.order = append(a.order, "force-down "+host)
	a.mu.Unlock()
	time.Sleep(time.Second)
	a.mu.Lock()
	a.order = append(a.order, "forced "+host)
	a.mu.Unlock()
	return nil
}
func (a *countingActor) Actions(context.Context, string) ([]model.InstanceAction, error) {
	return nil, nil
}

// The caps hold: in all, per host, per segment; a host's own step (a force-down)
// waits for the steps before it on that host and holds back those after.
func TestRunKeepsItsLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seg := map[string]string{"h0": "a", "h1": "a", "h2": "b"}
		a := &countingActor{hostNow: map[string]int{}, hostM: map[string]int{}, hostOf: map[string]string{},
			seg: seg, segNow: map[string]int{}, segM: map[string]int{}}
		var steps []*model.Step
		for i := range 12 {
			h := []string{"h0", "h0", "h0", "h0", "h0", "h0", "h1", "h1", "h1", "h1", "h2", "h2"}[i] // h0, h1: segment a; h2: b
			id := fmt.Sprintf("s%02d", i)
			a.hostOf[id] = h
			steps = append(steps, &model.Step{Incident: 1, Action: model.ActEvacuate, Server: id, Timeout: time.Minute, Rule: "r"})
		}
		// A force-down of h2 planned between its servers' moves.
		steps = slices.Insert(steps, 11, &model.Step{Incident: 2, Action: model.ActMarkDown, Host: "h2", Timeout: time.Minute, Rule: "r"})
		j := &lockedJournal{journal: journal{steps: map[int64]model.Step{}}}
		x := &recover.Executor{Compute: a, Journal: j, Epoch: 1, Now: time.Now,
			Limits:    model.Limits{MaxParallel: 5, PerHost: 2, PerSegment: 3},
			HostOf:    func(s string) string { return a.hostOf[s] },
			SegmentOf: func(h string) string { return seg[h] }}
		if err := x.Run(context.Background(), steps); err != nil {
			t.Fatal(err)
		}
		if a.max > 5 {
			t.Fatalf("%d evacuations at once, max_parallel 5", a.max)
		}
		for h, m := range a.hostM {
			if m > 2 {
				t.Fatalf("%d evacuations off %s at once, per_host 2", m, h)
			}
		}
		if m := a.segM["a"]; m > 3 {
			t.Fatalf("%d evacuations in segment a at once, per_segment 3", m)
		}
		if a.max < 4 {
			t.Fatalf("at most %d evacuations at once: the round was not parallel", a.max)
		}
		// h2's server s10 comes before its force-down, s11 after.
		pos := func(s string) int { return slices.Index(a.order, s) }
		if !(pos("end s10") < pos("force-down h2") && pos("forced h2") < pos("start s11")) {
			t.Fatalf("the force-down of h2 was not a barrier for h2's steps: %v", a.order)
		}
		for _, st := range steps {
			if st.ID == 0 || st.State != model.StepIssued {
				t.Fatalf("%s %s%s: %s", st.Action, st.Server, st.Host, st.State)
			}
		}
	})
}

// Beyond actions_per_minute, steps wait for the next rounds, unjournaled (ID 0),
// and one event says so; the budget refills with time.
func TestRunRateLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, ids := deadHostWorldFast(t, 5)
	j := &lockedJournal{journal: journal{steps: map[int64]model.Step{}}}
	x := &recover.Executor{Compute: c, Journal: j, Epoch: 1, Now: func() time.Time { return now },
		Limits: model.Limits{ActionsPerMinute: 3}}
	steps := evacuations(ids)
	if err := x.Run(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	var taken, waiting []string
	for _, st := range steps {
		if st.ID == 0 {
			waiting = append(waiting, st.Server)
		} else {
			taken = append(taken, st.Server)
		}
	}
	if len(taken) != 3 || len(waiting) != 2 {
		t.Fatalf("actions_per_minute 3: taken %v, waiting %v", taken, waiting)
	}
	said := func() int { return strings.Count(j.log(), "rate limit: 3 actions per minute reached; 2 steps wait") }
	if said() != 1 {
		t.Fatalf("the rate limit is not told once:\n%s", j.log())
	}
	// The next round, 10 s later: nothing refilled yet (one per 20 s), no new word.
	now = now.Add(10 * time.Second)
	rest := evacuations(waiting)
	if err := x.Run(context.Background(), rest); err != nil {
		t.Fatal(err)
	}
	if rest[0].ID != 0 || said() != 1 {
		t.Fatalf("10 s later: %+v; told %d times", rest[0], said())
	}
	// 40 s later: two more actions in the budget.
	now = now.Add(30 * time.Second)
	if err := x.Run(context.Background(), rest); err != nil {
		t.Fatal(err)
	}
	if rest[0].ID == 0 || rest[1].ID == 0 {
		t.Fatalf("40 s later the budget refilled, yet: %+v", rest)
	}
}

func deadHostWorldFast(t *testing.T, n int) (*sim.Cloud, []string) {
	c := sim.New(sim.DefaultConfig(), time.Now)
	c.AddHost("h1", "a", 2*n)
	c.AddHost("h2", "a", 2*n)
	var ids []string
	for i := range n {
		id, err := c.CreateServer(fmt.Sprintf("vm%02d", i), "h1")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := c.KillHost("h1"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetForcedDown("h1", true); err != nil {
		t.Fatal(err)
	}
	return c, ids
}

// The Guard refusing stops the round: no action starts after it, those in flight
// are journaled, the rest are left unjournaled.
func TestRunStopsAtTheGuard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newSlowFencer()
		for _, h := range []string{"h1", "h2", "h3", "h4"} {
			f.delay[h] = time.Second
		}
		c, _ := deadHostWorld(t, 1)
		j := &lockedJournal{journal: journal{steps: map[int64]model.Step{}}}
		lost := errors.New("lease lost")
		x := &recover.Executor{Compute: c, Fencer: f, Journal: j, Epoch: 1, Now: time.Now,
			Guard: func(_ context.Context, st model.Step) error {
				if st.Host == "h3" {
					return lost
				}
				return nil
			}}
		steps := fences("h1", "h2", "h3", "h4")
		if err := x.Run(context.Background(), steps); !errors.Is(err, lost) {
			t.Fatalf("Run: %v, want the guard's error", err)
		}
		if steps[0].State != model.StepIssued || steps[1].State != model.StepIssued {
			t.Fatalf("the fences in flight were not journaled: %s, %s", steps[0].State, steps[1].State)
		}
		if steps[2].State != model.StepIntent || f.started["h3"] != (time.Time{}) {
			t.Fatalf("h3: %s, called %v", steps[2].State, f.started["h3"])
		}
		if steps[3].ID != 0 || f.started["h4"] != (time.Time{}) {
			t.Fatalf("h4 after the guard's refusal: ID %d, called %v", steps[3].ID, f.started["h4"])
		}
	})
}
