package poll

import (
	"context"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Overlap is subtracted from the last poll's time in changes-since, so that a change
// made while that poll ran, or a small clock skew with the cloud, is not missed.
const Overlap = time.Second

// Poller lists the cloud in bulk.
type Poller struct {
	Lister cloud.Lister
	// FullEvery: a full listing repairs what incremental listings missed.
	FullEvery time.Duration
	lastPoll  time.Time
	lastFull  time.Time
}

// Poll observes the cloud at now: the full host list, and every server (full) or
// those changed since the last poll.
func (p *Poller) Poll(ctx context.Context, now time.Time) model.Observation {
	obs := model.Observation{At: now, Source: "poll"}
	hosts, err := p.Lister.ListHosts(ctx)
	if err != nil {
		obs.Err = err.Error()
		return obs
	}
	if hosts == nil {
		hosts = []model.Host{} // a cloud with no compute host was still listed
	}
	obs.Hosts = hosts
	obs.Full = p.lastFull.IsZero() || now.Sub(p.lastFull) >= p.FullEvery
	since := time.Time{}
	if !obs.Full {
		since = p.lastPoll.Add(-Overlap)
	}
	servers, err := p.Lister.ListServers(ctx, since)
	if err != nil {
		return model.Observation{At: now, Source: "poll", Err: err.Error()}
	}
	obs.Servers = servers
	p.lastPoll = now
	if obs.Full {
		p.lastFull = now
	}
	return obs
}
