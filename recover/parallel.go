package recover

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/vigil-ha/vigil/model"
)

// Run journals and takes the steps of one round, several at once within the
// executor's limits (Limits: in flight at once in all, per host, per segment;
// ActionsPerMinute), in waves:
//
//   - a wave is chosen in plan order from the steps not yet taken: a step waits
//     for every earlier step of its server (a server's steps stay one after
//     another: the fabric fence's ports-down, then volumes-cut), and a step on a
//     host (a fence, a force-down) waits for every earlier step touching that host
//     and holds back every later one (what follows a fence depends on it);
//   - each step of the wave is journaled (its intent, the AfterIntent hook, the
//     Guard) in plan order, and its action starts right after, in its own goroutine;
//   - once every action of the wave answered, their outcomes are journaled in plan
//     order, and the next wave is chosen.
//
// The journal (step IDs, the order of events) depends only on the plan and the
// answers, never on which answer came first: the same inputs give the same
// journal. A wave waits for its slowest action before the next starts; the
// actions themselves never wait for one another within a wave.
//
// It stops at the first journal error (a stale epoch means another owner took
// over), a hook's error or the Guard's: no action starts after it; those in flight
// finish and their outcomes are journaled if the journal still takes them. A
// server whose step was left unsettled (its answer lost: it may have been taken)
// gets no other step of the batch, which is left unjournaled (ID 0) for the
// planner to decide again once the first is settled: two of its steps would
// otherwise be in flight at once. So is a step beyond the rate limit.
func (x *Executor) Run(ctx context.Context, steps []*model.Step) error {
	r := &round{x: x, steps: steps, lim: x.Limits.Parallel(), done: make([]bool, len(steps)),
		gone: map[string]bool{}}
	for {
		before := r.finished()
		wave, err := r.wave(ctx)
		if cerr := r.conclude(ctx, wave); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if len(wave) == 0 && r.finished() == before || r.finished() == len(steps) {
			x.rateNote(ctx, r.held)
			return nil
		}
	}
}

// round is one Run: which steps are journaled to their end (or dropped), and which
// servers and hosts get no further step.
type round struct {
	x     *Executor
	steps []*model.Step
	lim   model.Limits
	done  []bool
	// gone: "server/ID" or "host/NAME" whose step was left unsettled or held by the
	// rate limit: the batch's later steps on it are dropped (ID 0).
	gone map[string]bool
	held int // steps beyond the rate limit
}

func (r *round) finished() int {
	n := 0
	for _, d := range r.done {
		if d {
			n++
		}
	}
	return n
}

// flight is an action of the wave in progress.
type flight struct {
	i   int
	out chan result
}

// wave picks the next wave (see Run), journals each step of it up to its action
// and starts the action. A step that needs no action (skipped, confirmed) is
// journaled here when no action of the wave comes before it (so one at a time,
// MaxParallel 1, is exactly the steps in plan order). The action logs the wave's
// intents need are read at once first, each bounded like the actions.
func (r *round) wave(ctx context.Context) ([]flight, error) {
	x := r.x
	picked := r.pick()
	pre := make([]*prior, len(picked))
	var wg sync.WaitGroup
	for k, i := range picked {
		if st := *r.steps[i]; acts(st) && cloudAction(st.Action) != "" {
			wg.Go(func() { pre[k] = x.readPrior(ctx, st) })
		}
	}
	wg.Wait()
	var wave []flight
	for k, i := range picked {
		st := r.steps[i]
		act, err := x.begin(ctx, st, pre[k])
		if err != nil {
			r.done[i] = true
			return wave, err
		}
		if !act {
			r.done[i] = true
			continue
		}
		f := flight{i: i, out: make(chan result, 1)}
		go func(st model.Step) { f.out <- x.take(ctx, st) }(*st)
		wave = append(wave, f)
	}
	return wave, nil
}

// acts: the step calls a driver (a skipped or confirmed step is only journaled).
func acts(st model.Step) bool {
	return st.State != model.StepSkipped && st.State != model.StepSucceeded && st.State != model.StepWould
}

// pick chooses the next wave in plan order within the limits (see Run); a step
// beyond the rate limit, or behind one, is dropped.
func (r *round) pick() []int {
	x := r.x
	var picked []int
	actions := 0
	perHost, perSeg := map[string]int{}, map[string]int{}
	busyServer, busyHost, barrier := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, st := range r.steps {
		if r.done[i] {
			continue
		}
		host := x.hostOf(*st)
		// Whatever comes later waits on this step as on an earlier one of its server
		// or host, taken or not in this wave.
		wait := func() {
			if st.Server != "" {
				busyServer[st.Server] = true
			}
			if host != "" {
				busyHost[host] = true
				barrier[host] = barrier[host] || st.Server == ""
			}
		}
		if st.Server != "" && r.gone["server/"+st.Server] || host != "" && r.gone["host/"+host] {
			r.done[i] = true // dropped: ID 0
			continue
		}
		if st.Server != "" && busyServer[st.Server] || host != "" && (barrier[host] || st.Server == "" && busyHost[host]) {
			wait()
			continue
		}
		a, seg := acts(*st), x.segmentOf(host)
		if !a && actions > 0 ||
			a && (actions >= r.lim.MaxParallel || host != "" && perHost[host] >= r.lim.PerHost || perSeg[seg] >= r.lim.PerSegment) {
			wait()
			continue
		}
		if a && !x.allow() {
			// Beyond the rate: not journaled (ID 0), planned again next round; what
			// follows on its server (or on its host, for a host's step) goes with it.
			r.held++
			r.done[i] = true
			r.drop(*st)
			continue
		}
		picked = append(picked, i)
		if a {
			wait()
			actions++
			perHost[host]++
			perSeg[seg]++
		}
	}
	return picked
}

// drop marks the step's server (or host, for a host's step) as getting no further
// step in this batch.
func (r *round) drop(st model.Step) {
	if st.Server != "" {
		r.gone["server/"+st.Server] = true
	} else if st.Host != "" {
		r.gone["host/"+st.Host] = true
	}
}

// conclude waits for every action of the wave and journals their outcomes in plan
// order. It returns the first error; the outcomes after it are still journaled if
// the journal takes them (a step whose hook stopped it journals none).
func (r *round) conclude(ctx context.Context, wave []flight) error {
	rs := make([]result, len(wave))
	for k, f := range wave {
		rs[k] = <-f.out
	}
	var first error
	for k, f := range wave {
		st := r.steps[f.i]
		r.done[f.i] = true
		err := r.x.conclude(ctx, st, rs[k])
		if st.State == model.StepIntent {
			r.drop(*st)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// hostOf is the host a step touches: its own, else its server's (HostOf).
func (x *Executor) hostOf(st model.Step) string {
	if st.Host != "" || st.Server == "" || x.HostOf == nil {
		return st.Host
	}
	return x.HostOf(st.Server)
}

func (x *Executor) segmentOf(host string) string {
	if x.SegmentOf == nil || host == "" {
		return ""
	}
	return x.SegmentOf(host)
}

// allow takes one action from the per-minute budget (the executor's clock: the
// simulation's virtual time).
func (x *Executor) allow() bool {
	if x.Limits.ActionsPerMinute <= 0 {
		return true
	}
	if x.rate == nil || x.rateOf != x.Limits.ActionsPerMinute {
		n := x.Limits.ActionsPerMinute
		x.rate, x.rateOf = rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n), n
	}
	return x.rate.AllowN(x.Now(), 1)
}

// rateNote says once that steps wait for the rate limit, until a round holds none.
func (x *Executor) rateNote(ctx context.Context, held int) {
	if held == 0 {
		x.rateSaid = false
		return
	}
	if x.rateSaid {
		return
	}
	x.rateSaid = true
	_ = x.Journal.AppendEvents(ctx, model.Event{At: x.Now(), Kind: "limit", Subject: "cloud",
		Message: fmt.Sprintf("rate limit: %d actions per minute reached; %d steps wait (limits.actions_per_minute; they are planned again as the budget refills)", x.Limits.ActionsPerMinute, held)})
}
