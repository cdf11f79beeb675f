package detect

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// arrivals generates the arrival times of beats sent every interval from t0 for
// span, each lost with probability loss and delayed by up to jitter (uniform),
// sorted by arrival (a late beat may arrive after a newer one).
func arrivals(seed uint64, interval, span, jitter time.Duration, loss float64) []model.AgentBeat {
	r := rand.New(rand.NewPCG(seed, 14))
	var out []model.AgentBeat
	seq := uint64(0)
	for at := t0; at.Before(t0.Add(span)); at = at.Add(interval) {
		seq++
		if r.Float64() < loss {
			continue
		}
		d := time.Duration(0)
		if jitter > 0 {
			d = time.Duration(r.Int64N(int64(jitter)))
		}
		out = append(out, model.AgentBeat{Host: "h1", Path: model.PathManagement, Boot: "b1", Seq: seq, Sent: at, At: at.Add(d), Interval: interval})
	}
	slices.SortStableFunc(out, func(a, b model.AgentBeat) int { return a.At.Compare(b.At) })
	return out
}

// silence replays beats into one path and returns, over [from, until) sampled
// every tick, the longest stretch the path was silent and the share of the time.
func silence(beats []model.AgentBeat, from, until time.Time, tick time.Duration) (longest time.Duration, share float64) {
	var p path
	i, silentFor, samples, silent := 0, time.Duration(0), 0, 0
	for now := t0; now.Before(until); now = now.Add(tick) {
		for i < len(beats) && !beats[i].At.After(now) {
			p.accept(beats[i], beats[i].At)
			i++
		}
		if now.Before(from) || p.last.IsZero() {
			continue
		}
		samples++
		if st, _ := p.state(now, DefaultPhiSilent); st == PathSilent {
			silent++
			silentFor += tick
			longest = max(longest, silentFor)
		} else {
			silentFor = 0
		}
	}
	return longest, float64(silent) / float64(max(samples, 1))
}

func TestPathDetector(t *testing.T) {
	const iv = time.Second
	cases := []struct {
		name         string
		jitter       time.Duration
		loss         float64
		maxLongest   time.Duration
		maxShare     float64
		detectWithin time.Duration // a real silence at the end is seen within this
	}{
		{"steady", 0, 0, 0, 0, 3 * iv},
		{"steady with small jitter", iv / 5, 0, 0, 0, 3 * iv},
		// Three beats lost in a row do happen at 10 % loss: a brief silence then is right.
		{"10 % loss", iv / 5, 0.1, iv, 0.005, 4 * iv},
		{"jitter up to 5x the interval, 30 % loss", 5 * iv, 0.3, 2 * iv, 0.01, 12 * iv},
	}
	for _, c := range cases {
		for seed := uint64(1); seed <= 5; seed++ {
			beats := arrivals(seed, iv, 10*time.Minute, c.jitter, c.loss)
			end := t0.Add(10 * time.Minute)
			longest, share := silence(beats, t0.Add(30*time.Second), end, 100*time.Millisecond)
			if longest > c.maxLongest || share > c.maxShare {
				t.Errorf("%s, seed %d: silent for up to %s (%.2f%% of the time) while beats still arrive; want at most %s and %.2f%%",
					c.name, seed, longest, share*100, c.maxLongest, c.maxShare*100)
			}
			// The agent stops: the path must be silent within detectWithin of its last beat.
			var p path
			for _, b := range beats {
				p.accept(b, b.At)
			}
			if got := p.silentAfter(DefaultPhiSilent); got > c.detectWithin {
				t.Errorf("%s, seed %d: a real silence is seen after %s, want at most %s", c.name, seed, got, c.detectWithin)
			}
			if got := p.silentAfter(DefaultPhiSilent); c.loss == 0 && got < 2*iv {
				t.Errorf("%s, seed %d: silent after %s: one missed beat would be a silence", c.name, seed, got)
			}
		}
	}
}

func TestOneMissedBeatIsNothing(t *testing.T) {
	const iv = time.Second
	var p path
	for i := 1; i <= 20; i++ {
		at := t0.Add(time.Duration(i) * iv)
		p.accept(model.AgentBeat{Boot: "b", Seq: uint64(i), Interval: iv}, at)
	}
	// Beat 21 is lost; just before beat 22 is due (plus a little delay):
	if st, _ := p.state(p.last.Add(2*iv+300*time.Millisecond), DefaultPhiSilent); st == PathSilent {
		t.Fatalf("one missed beat made the path %s", st)
	}
	if st, _ := p.state(p.last.Add(3*iv), DefaultPhiSilent); st != PathSilent {
		t.Fatalf("three intervals without a beat: path %s, want silent", st)
	}
}

func TestDuplicatesAndRestarts(t *testing.T) {
	var p path
	b := model.AgentBeat{Boot: "b1", Seq: 5, Interval: time.Second}
	if !p.accept(b, t0) {
		t.Fatal("first beat refused")
	}
	if p.accept(b, t0.Add(time.Second)) {
		t.Fatal("a duplicate (same boot, same seq) was accepted: a replayed beat would look like a live host")
	}
	b.Seq = 4
	if p.accept(b, t0.Add(2*time.Second)) {
		t.Fatal("an older seq of the same boot was accepted")
	}
	b.Boot, b.Seq = "b2", 1
	if !p.accept(b, t0.Add(3*time.Second)) {
		t.Fatal("a restarted agent (new boot, seq 1) was refused")
	}
}

// A history of long gaps widens the detector, but never past the cap: a dead host
// behind an erratic path is still seen.
func TestSilenceIsCapped(t *testing.T) {
	const iv = time.Second
	var p path
	at := t0
	for i := 1; i <= 40; i++ {
		at = at.Add(iv + time.Duration(i%2)*10*iv) // 1 s, 11 s, 1 s...
		p.accept(model.AgentBeat{Boot: "b", Seq: uint64(i), Interval: iv}, at)
	}
	if got := p.silentAfter(DefaultPhiSilent); got > silenceCap*iv {
		t.Fatalf("silent after %s, past the cap of %v intervals", got, silenceCap)
	}
}
