package poll

import (
	"context"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Overlap is subtracted from the last listing's start in changes-since, so that a
// change stamped by a Nova service whose clock is a little behind the API's (or, for
// a driver without a clock, a small skew between Vigil and the cloud) is not missed.
const Overlap = time.Second

// Poller lists the cloud in bulk.
type Poller struct {
	Lister cloud.Lister
	// FullEvery: a full listing repairs what incremental listings missed.
	FullEvery time.Duration
	last      listing
	lastFull  time.Time
}

// listing is when the last successful listing started, on each clock.
type listing struct {
	at      time.Time // Vigil's clock
	cloudAt time.Time // the cloud's clock; zero when the driver could not tell
}

// Poll observes the cloud at now: the full host list, and every server (full) or
// those changed since the last poll. When the Lister is also a cloud.Clock,
// obs.CloudAt is the cloud's clock as the listing started.
func (p *Poller) Poll(ctx context.Context, now time.Time) model.Observation {
	obs := model.Observation{At: now, Source: "poll"}
	if clock, ok := p.Lister.(cloud.Clock); ok {
		if t, ok := clock.CloudNow(); ok {
			obs.CloudAt = t
		}
	}
	hosts, err := p.Lister.ListHosts(ctx)
	if err != nil {
		obs.Err = err.Error()
		return obs
	}
	if hosts == nil {
		hosts = []model.Host{} // a cloud with no compute host was still listed
	}
	obs.Hosts = hosts
	if obs.CloudAt.IsZero() {
		obs.CloudAt = newestHeartbeat(hosts)
	}
	since, incremental := changesSince(p.last, obs.CloudAt)
	obs.Full = !incremental || p.lastFull.IsZero() || now.Sub(p.lastFull) >= p.FullEvery
	if obs.Full {
		since = time.Time{}
	}
	servers, err := p.Lister.ListServers(ctx, since)
	if err != nil {
		return model.Observation{At: now, CloudAt: obs.CloudAt, Source: "poll", Err: err.Error()}
	}
	obs.Servers = servers
	if gl, ok := p.Lister.(cloud.GroupLister); ok {
		// Server groups bind placement only: a failed read leaves the last ones in
		// force (nil), it does not fail the listing.
		if groups, err := gl.ListServerGroups(ctx); err == nil {
			obs.ServerGroups = groups
			if groups == nil {
				obs.ServerGroups = []model.ServerGroup{}
			}
		}
	}
	p.last = listing{at: now, cloudAt: obs.CloudAt}
	if obs.Full {
		p.lastFull = now
	}
	return obs
}

// newestHeartbeat is the newest updated_at among the compute services: the cloud
// wrote it before it answered the listing, so it is a lower bound of the cloud's
// clock then (within the skew of Nova's own hosts, which Overlap covers). It stands
// in where the driver cannot read the cloud's clock: a Nova served without a Date
// header (as the test peer's is) gives none. A lower bound errs on the safe side:
// changes-since a little earlier (more rows), heartbeats that look younger.
func newestHeartbeat(hosts []model.Host) time.Time {
	var t time.Time
	for _, h := range hosts {
		if h.LastSeenUp.After(t) {
			t = h.LastSeenUp
		}
	}
	return t
}

// changesSince is the changes-since of an incremental listing after prev, or false
// when only a full listing is safe.
//
// Nova keeps a server in a changes-since listing when its updated_at, stamped on
// the cloud's clock, is not before changes-since; so changes-since must be read on
// that clock too. A time from Vigil's clock is off by the skew between the two:
// with Vigil 5 s ahead, a server that crashed just after a poll is stamped before
// that poll's Vigil time and is missed until the next full listing, minutes later.
// The previous listing's start on the cloud's clock (the driver's estimate errs
// early, which only adds rows) less Overlap is never after a change made since.
// Without the cloud's time for the previous listing or this one (no Date header
// and no heartbeat to go by), or with a cloud clock that went back since the
// previous listing (what it stamped since may be before that listing's start), a
// full listing is the only safe one; only when the cloud's time is known for
// neither does it fall back to Vigil's clock, with Overlap as the only margin.
func changesSince(prev listing, cloudNow time.Time) (time.Time, bool) {
	switch {
	case prev.at.IsZero():
		return time.Time{}, false
	case prev.cloudAt.IsZero() && cloudNow.IsZero():
		return prev.at.Add(-Overlap), true
	case prev.cloudAt.IsZero() || cloudNow.IsZero() || cloudNow.Before(prev.cloudAt):
		return time.Time{}, false
	default:
		return prev.cloudAt.Add(-Overlap), true
	}
}
