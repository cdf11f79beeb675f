package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// beatPath is where Vigil receives beats (source/agent.BeatPath; not imported: the
// agent does not link Vigil's side).
const beatPath = "/v1/agent/beat"

// maxBackoff caps the wait between tries while Vigil is away: when it returns it
// hears the agent within this long.
const maxBackoff = 10 * time.Second

// newClient builds one path's HTTP client: its own connections (a dead path's
// stuck dial holds no other path's), bounded dial and request times.
func newClient(caFile string) (*http.Client, error) {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout:   2 * time.Second,
		ResponseHeaderTimeout: 5 * time.Second,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       30 * time.Second,
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca: no PEM certificate in %s", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// beatLoop heartbeats on one path until ctx ends: every interval, at once on a
// change, with backoff and jitter while Vigil does not answer.
func (a *agent) beatLoop(ctx context.Context, p Path, client *http.Client) {
	url := strings.TrimSuffix(p.URL, "/") + beatPath
	failures := 0
	for ctx.Err() == nil {
		changed := a.st.changes()
		beat, mark := a.st.nextBeat(p.Name, time.Now(), a.cfg.ReportEvery, a.cfg.Libvirt != "")
		interval := a.st.beatInterval()
		orders, err := a.post(ctx, client, url, beat, interval)
		var wait time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%30 == 0 {
				a.log.Warn("heartbeat not delivered; retrying with backoff", "path", p.Name, "url", p.URL, "tries", failures, "err", err)
			}
			wait = backoff(interval, failures)
		} else {
			if failures > 0 {
				a.log.Info("heartbeat delivered again", "path", p.Name, "after_tries", failures)
			}
			failures = 0
			a.st.delivered(p.Name, mark)
			a.st.setOrders(orders)
			wait = a.st.beatInterval()
		}
		t := time.NewTimer(wait)
		if err != nil {
			changed = nil // while Vigil is away, a change waits for the backoff: no storm
		}
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-changed:
			t.Stop()
		}
	}
}

// backoff is the wait after n consecutive failures: doubling from the interval up
// to maxBackoff, with full jitter over its upper half so that many agents cut off
// together do not come back in step.
func backoff(interval time.Duration, n int) time.Duration {
	d := interval
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// post sends one beat and returns Vigil's orders.
func (a *agent) post(ctx context.Context, client *http.Client, url string, b model.AgentBeat, interval time.Duration) (model.AgentOrders, error) {
	body, err := json.Marshal(b)
	if err != nil {
		return model.AgentOrders{}, fmt.Errorf("encode beat: %w", err)
	}
	// A beat later than two intervals is stale news: give up and send a fresh one.
	ctx, cancel := context.WithTimeout(ctx, min(max(2*interval, time.Second), 10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return model.AgentOrders{}, fmt.Errorf("beat to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	resp, err := client.Do(req)
	if err != nil {
		return model.AgentOrders{}, fmt.Errorf("beat to %s: %w", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return model.AgentOrders{}, fmt.Errorf("beat to %s: reading the answer: %w", url, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return model.AgentOrders{}, fmt.Errorf("beat to %s: Vigil refused the token of host %s (401): check --token-file against Vigil's tokens", url, b.Host)
	default:
		return model.AgentOrders{}, fmt.Errorf("beat to %s: %s: %s", url, resp.Status, strings.TrimSpace(string(data)))
	}
	var o model.AgentOrders
	if err := json.Unmarshal(data, &o); err != nil {
		return model.AgentOrders{}, fmt.Errorf("beat to %s: orders not understood: %w", url, err)
	}
	return o, nil
}
