package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// probeTick is how often the prober looks for probes that are due; a probe's own
// interval decides when it runs.
const probeTick = 100 * time.Millisecond

// probeKey names one probe of one domain.
type probeKey struct {
	uuid, name string
	guestAgent bool
}

type probeResult struct {
	key  probeKey
	spec model.ProbeSpec
	err  error
	at   time.Time
}

// probeLoop runs the probes the orders name for each running domain, each on its
// own interval and in its own goroutine: a hung guest's probe, waiting out its
// timeout, delays no other guest's.
func (a *agent) probeLoop(ctx context.Context, w *watcher) {
	next := map[probeKey]time.Time{}
	inFlight := map[probeKey]bool{}
	results := make(chan probeResult, 64)
	tick := time.NewTicker(probeTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-results:
			delete(inFlight, r.key)
			a.st.probed(r.key.uuid, r.spec, r.key.guestAgent, r.err, r.at)
			continue
		case <-tick.C:
		}
		now := time.Now()
		running := a.st.running()
		orders := a.st.currentOrders()
		for uuid, dp := range orders.Probes {
			if _, ok := running[uuid]; !ok {
				continue
			}
			type job struct {
				spec model.ProbeSpec
				ga   bool
			}
			var jobs []job
			if dp.GuestAgent != nil {
				jobs = append(jobs, job{*dp.GuestAgent, true})
			}
			for _, s := range dp.Apps {
				jobs = append(jobs, job{s, false})
			}
			for _, j := range jobs {
				if j.spec.Interval <= 0 || j.spec.Timeout <= 0 {
					continue // Vigil validates probes; a bad one is skipped, not spun on
				}
				k := probeKey{uuid: uuid, name: j.spec.Name, guestAgent: j.ga}
				if inFlight[k] || now.Before(next[k]) {
					continue
				}
				inFlight[k] = true
				next[k] = now.Add(j.spec.Interval)
				go func() {
					err := a.runProbe(ctx, w, uuid, j.spec)
					select {
					case results <- probeResult{key: k, spec: j.spec, err: err, at: time.Now()}:
					case <-ctx.Done():
					}
				}()
			}
		}
	}
}

// runProbe tries a probe once: nil is healthy, an error says why not.
func (a *agent) runProbe(ctx context.Context, w *watcher, uuid string, spec model.ProbeSpec) error {
	switch spec.Kind {
	case model.ProbeGuestAgent, "":
		c, d, ok := w.current(uuid)
		if !ok {
			return errors.New("libvirt not connected: guest agent not asked")
		}
		_, err := c.agentCommand(d, `{"execute":"guest-ping"}`, spec.Timeout)
		return err
	case model.ProbeCommand:
		if len(spec.Command) == 0 {
			return errors.New("command probe without a command")
		}
		c, d, ok := w.current(uuid)
		if !ok {
			return errors.New("libvirt not connected: command not run")
		}
		code, err := guestExec(c, d, spec.Command, spec.Timeout)
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("%s exited %d in the guest", spec.Command[0], code)
		}
		return nil
	case model.ProbeTCP:
		dctx, cancel := context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(dctx, "tcp", spec.Target)
		if err != nil {
			return fmt.Errorf("tcp %s: %w", spec.Target, err)
		}
		conn.Close()
		return nil
	case model.ProbeHTTP:
		return httpProbe(ctx, spec)
	}
	return fmt.Errorf("probe kind %q unknown to this agent", spec.Kind)
}

// httpProbe GETs the target: a 2xx or 3xx status is healthy (a redirect is an
// answer from a working application; it is not followed).
func httpProbe(ctx context.Context, spec model.ProbeSpec) error {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec.Target, nil)
	if err != nil {
		return fmt.Errorf("http %s: %w", spec.Target, err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("http %s: %w", spec.Target, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http %s: status %s", spec.Target, resp.Status)
	}
	return nil
}
