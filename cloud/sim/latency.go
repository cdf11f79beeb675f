package sim

import (
	"math/rand/v2"
	"time"
)

// Latency makes the simulated cloud answer as slowly as a real control plane does
// (`vigil bench scale`): every compute API call takes a time drawn between Min and
// Max from a stream seeded with Seed, and a server listing comes in pages of
// PageSize (Nova's limit/marker), each page a call of its own that takes its own
// draw. BMC calls are not slowed (their timeouts are the executor's business).
// Off (nil) by default: tests, the demo and the simulation stay fast and exactly
// repeatable.
type Latency struct {
	Min, Max time.Duration
	PageSize int // servers per page of a listing; 0: one page
	Seed     uint64
	// Sleep spends the time (time.Sleep when nil).
	Sleep func(time.Duration)
}

// DefaultLatency is what the issue measured a loaded Nova to answer: 50-300 ms per
// call, pages of 1,000 servers.
func DefaultLatency(seed uint64) *Latency {
	return &Latency{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond, PageSize: 1000, Seed: seed}
}

// latency draws the times of the calls from the Latency's own stream, so turning
// it on does not shift the cloud's other draws.
type latency struct {
	cfg Latency
	rng *rand.Rand
}

func newLatency(cfg *Latency) *latency {
	if cfg == nil {
		return nil
	}
	l := &latency{cfg: *cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x1a7e))}
	if l.cfg.Sleep == nil {
		l.cfg.Sleep = time.Sleep
	}
	return l
}

// draw is the time of one call (under the cloud's lock: the stream is shared).
func (l *latency) draw() time.Duration {
	if l.cfg.Max <= l.cfg.Min {
		return l.cfg.Min
	}
	return l.cfg.Min + time.Duration(l.rng.Int64N(int64(l.cfg.Max-l.cfg.Min)))
}

// pages is how many calls a listing of n servers takes.
func (l *latency) pages(n int) int {
	if l == nil || l.cfg.PageSize <= 0 || n <= l.cfg.PageSize {
		return 1
	}
	return (n + l.cfg.PageSize - 1) / l.cfg.PageSize
}

// spendLocked spends the time of calls calls, with the cloud's lock released
// meanwhile (other callers go on, as they would with a real API's workers).
func (c *Cloud) spendLocked(calls int) {
	if c.lat == nil || calls <= 0 {
		return
	}
	var d time.Duration
	for range calls {
		d += c.lat.draw()
	}
	c.mu.Unlock()
	c.lat.cfg.Sleep(d)
	c.mu.Lock()
}
