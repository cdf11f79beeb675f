package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// An adaptive failure detector per heartbeat path (Hayashibara's phi accrual, as
// Cassandra and Akka use it): the inter-arrival times of a path's beats are kept
// over a window, and the suspicion of a silence is how unlikely it is that the next
// beat is merely late, given that history. A path whose beats jitter is given more
// room before it is called silent; a steady one is called silent in a few
// intervals. Suspicion alone never acts: a silent path is one signal among others.

// Defaults of the path detector.
const (
	// DefaultPhiSilent: a path is silent when phi reaches this (1e-8 odds that the
	// beat is only late).
	DefaultPhiSilent = 8.0
	// phiWindow: how many inter-arrival times a path keeps.
	phiWindow = 64
	// silenceFloor, in expected intervals: one missed beat (a gap of two intervals,
	// plus some delay) is nothing, however steady the path was.
	silenceFloor = 2.5
	// silenceCap, in expected intervals: a path is silent after this whatever its
	// history (a history of long gaps must not hide a dead host for ever).
	silenceCap = 12.0
	// suspectPhi: a path is suspect (shown, never acted on) from this phi.
	suspectPhi = 2.0
)

// Path liveness as the detector judges it.
const (
	PathHeard   = "heard"
	PathSuspect = "suspect"
	PathSilent  = "silent"
)

// path is the failure detector of one (host, path).
type path struct {
	boot     string
	seq      uint64
	last     time.Time // arrival (Vigil's clock) of the newest beat accepted
	first    time.Time // arrival of the first beat accepted
	interval time.Duration
	gaps     []time.Duration // ring of the last phiWindow inter-arrival times
	next     int
}

// accept folds one beat in; false when it is a duplicate (a seq not newer than the
// last of the same boot) or older than the last accepted beat.
func (p *path) accept(b model.AgentBeat, at time.Time) bool {
	if b.Interval > 0 {
		p.interval = b.Interval
	}
	if !p.last.IsZero() && b.Boot == p.boot && b.Seq <= p.seq {
		return false
	}
	if !p.last.IsZero() && at.Before(p.last) {
		return false // arrived out of order across a restart of the agent
	}
	if gap := at.Sub(p.last); !p.last.IsZero() && gap <= time.Duration(silenceCap*float64(p.expected())) {
		// (A longer gap was an outage, not the path's jitter: kept, it would slow the
		// detection of the next real silence for a whole window.)
		if len(p.gaps) < phiWindow {
			p.gaps = append(p.gaps, gap)
		} else {
			p.gaps[p.next] = gap
			p.next = (p.next + 1) % phiWindow
		}
	}
	if p.first.IsZero() {
		p.first = at
	}
	p.boot, p.seq, p.last = b.Boot, b.Seq, at
	return true
}

// stats are the mean and standard deviation of the path's inter-arrival times, with
// the agent's interval standing in until there are a few, and a floor on the
// deviation (a perfectly steady path must not call a beat 10 ms late a silence).
func (p *path) stats() (mean, std time.Duration) {
	iv := p.expected()
	if len(p.gaps) < 3 {
		return iv, iv / 4
	}
	var sum float64
	for _, g := range p.gaps {
		sum += float64(g)
	}
	m := sum / float64(len(p.gaps))
	var sq float64
	for _, g := range p.gaps {
		sq += (float64(g) - m) * (float64(g) - m)
	}
	s := math.Sqrt(sq / float64(len(p.gaps)))
	return time.Duration(m), max(time.Duration(s), iv/4)
}

// expected is the interval the agent declared (one second when it did not).
func (p *path) expected() time.Duration {
	if p.interval > 0 {
		return p.interval
	}
	return time.Second
}

// silentAfter is how long after its last beat the path is silent: where phi
// reaches the threshold, bounded by the floor and the cap.
func (p *path) silentAfter(phiSilent float64) time.Duration {
	mean, std := p.stats()
	t := mean + time.Duration(phiInverse(phiSilent)*float64(std))
	iv := float64(p.expected())
	return min(max(t, time.Duration(silenceFloor*iv)), time.Duration(silenceCap*iv))
}

// phi is the suspicion of a silence of elapsed, given the path's history.
func (p *path) phi(elapsed time.Duration) float64 {
	mean, std := p.stats()
	return phiOf((float64(elapsed) - float64(mean)) / float64(std))
}

// state judges the path at now.
func (p *path) state(now time.Time, phiSilent float64) (string, time.Duration) {
	elapsed := now.Sub(p.last)
	switch {
	case elapsed >= p.silentAfter(phiSilent):
		return PathSilent, elapsed
	case elapsed > p.expected() && p.phi(elapsed) >= suspectPhi:
		return PathSuspect, elapsed
	}
	return PathHeard, elapsed
}

// silentAt is when the path became (or will become) silent without a new beat.
func (p *path) silentAt(phiSilent float64) time.Time { return p.last.Add(p.silentAfter(phiSilent)) }

func (p *path) describe(name string, now time.Time, phiSilent float64) string {
	st, el := p.state(now, phiSilent)
	mean, std := p.stats()
	return fmt.Sprintf("path %s %s: last beat %s ago (at %s, seq %d), arrivals every %s ± %s, silent after %s",
		name, st, el.Round(time.Millisecond), p.last.Format("15:04:05.000"), p.seq,
		mean.Round(time.Millisecond), std.Round(time.Millisecond), p.silentAfter(phiSilent).Round(time.Millisecond))
}

// phiOf is -log10 of the probability that a normal variable exceeds y standard
// deviations (the logistic approximation of its tail that Akka uses).
func phiOf(y float64) float64 {
	e := math.Exp(-y * (1.5976 + 0.070566*y*y))
	if y > 0 {
		return -math.Log10(e / (1 + e))
	}
	return -math.Log10(1 - 1/(1+e))
}

// phiInverse is the y at which phiOf reaches phi (phiOf increases with y).
func phiInverse(phi float64) float64 {
	lo, hi := -10.0, 40.0
	for range 60 {
		mid := (lo + hi) / 2
		if phiOf(mid) < phi {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}
