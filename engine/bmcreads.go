package engine

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Defaults of the BMC reads (Config.BMCTimeout, BMCReads, BMCWait).
const (
	DefaultBMCTimeout = 5 * time.Second
	DefaultBMCReads   = 8
	DefaultBMCWait    = time.Second
)

// bmcReader runs the BMC reads of the reconciles, at most Config.BMCReads at
// once, each bounded by Config.BMCTimeout. A reconcile waits for its reads at
// most Config.BMCWait: a BMC that never answers costs its own host one timeout
// and no other host a delay; its read goes on meanwhile (never two at once for
// one host) and its answer, if one comes, is folded into the next reconcile's.
type bmcReader struct {
	sem chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // "power/HOST", "ident/HOST"
	silent   map[string]bool // hosts whose last power read failed
	power    map[string]model.Power
	ident    map[string]identAnswer
}

type identAnswer struct {
	id  string
	err error
}

func newBMCReader(workers int) *bmcReader {
	return &bmcReader{sem: make(chan struct{}, workers), inflight: map[string]bool{}, silent: map[string]bool{},
		power: map[string]model.Power{}, ident: map[string]identAnswer{}}
}

// read starts the power reads of powerHosts and the identity reads of identHosts
// (but a host whose same read is still in flight from an earlier reconcile), waits
// for them within wait (<0: for every one: the simulation, whose reads answer at
// once on its virtual clock), and returns every answer that came in since the last
// call, in maps: the fold does not depend on the order the answers came in.
//
// A BMC whose last power read failed (silent) is not waited for unless its host is
// at stake (urgent: being fenced, or maybe failed): its routine read answers into
// a later reconcile, so a dead BMC costs no reconcile its wait (it slowed every
// fifth poll by the whole wait: the dead-BMC integration test's detection).
func (r *bmcReader) read(ctx context.Context, f cloud.Fencer, powerHosts, identHosts []string, urgent map[string]bool, timeout, wait time.Duration) (map[string]model.Power, map[string]identAnswer) {
	var wg sync.WaitGroup
	start := func(key, host string, call func(ctx context.Context)) {
		r.mu.Lock()
		busy := r.inflight[key]
		r.inflight[key] = true
		r.mu.Unlock()
		if busy {
			return
		}
		run := wg.Go
		r.mu.Lock()
		silent := r.silent[host]
		r.mu.Unlock()
		if wait >= 0 && !urgent[host] && silent {
			run = func(f func()) { go f() }
		}
		run(func() {
			// Detached from the reconcile: a read outlives the reconcile that
			// started it, bounded by its own timeout.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			defer cancel()
			select {
			case r.sem <- struct{}{}:
			case <-cctx.Done():
				r.mu.Lock()
				delete(r.inflight, key)
				r.mu.Unlock()
				return
			}
			defer func() { <-r.sem }()
			call(cctx)
			r.mu.Lock()
			delete(r.inflight, key)
			r.mu.Unlock()
		})
	}
	idr, _ := f.(cloud.Identifier)
	for _, h := range powerHosts {
		start("power/"+h, h, func(ctx context.Context) {
			p, err := f.PowerStatus(ctx, h)
			if err != nil {
				p = model.PowerUnknown // no answer: no proof, and no doubt either
			}
			r.mu.Lock()
			r.power[h] = p
			if err != nil {
				r.silent[h] = true
			} else {
				delete(r.silent, h)
			}
			r.mu.Unlock()
		})
	}
	for _, h := range identHosts {
		if idr == nil {
			break
		}
		start("ident/"+h, h, func(ctx context.Context) {
			id, err := idr.Identity(ctx, h)
			r.mu.Lock()
			r.ident[h] = identAnswer{id, err}
			r.mu.Unlock()
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if wait < 0 {
		<-done
	} else {
		t := time.NewTimer(wait)
		select {
		case <-done:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	power, ident := r.power, r.ident
	r.power, r.ident = map[string]model.Power{}, map[string]identAnswer{}
	return power, ident
}

// foldIdentities notes the identities read (and why one could not be), in host
// order. The caller holds e.run.
func (e *Engine) foldIdentities(answers map[string]identAnswer) (ident, identErr map[string]string) {
	ident, identErr = map[string]string{}, map[string]string{}
	for _, h := range slices.Sorted(maps.Keys(answers)) {
		id, err := answers[h].id, answers[h].err
		switch {
		case err == nil && id != "":
			ident[h] = id
			delete(e.unconfirmed, h)
		case errors.Is(err, cloud.ErrNoIdentity):
			delete(e.unconfirmed, h) // nothing to compare: no reason to wait either
		case err != nil && cloud.IsTerminal(err):
			identErr[h] = err.Error()
			delete(e.unconfirmed, h)
		case err != nil:
			e.unconfirmed[h] = err.Error()
		}
	}
	return ident, identErr
}
