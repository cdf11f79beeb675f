package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newReceiver() *Receiver {
	tokens := map[string]string{"host-a": "secret-a", "host-b": "secret-b"}
	return &Receiver{
		Tokens: func(h string) (string, bool) { t, ok := tokens[h]; return t, ok },
		Orders: func(h string) model.AgentOrders {
			return model.AgentOrders{Interval: 2 * time.Second, Probes: map[string]model.DomainProbes{
				"uuid-1": {GuestAgent: &model.ProbeSpec{Name: "ga", Kind: model.ProbeGuestAgent, Interval: time.Second, Timeout: time.Second, Failures: 3}},
			}}
		},
		Now: func() time.Time { return t0 },
	}
}

func beat(host, path string, seq uint64) model.AgentBeat {
	return model.AgentBeat{Host: host, Path: path, Boot: "b1", Seq: seq, Sent: t0.Add(-time.Hour), Interval: time.Second}
}

func post(t *testing.T, h http.Handler, token string, body any) *httptest.ResponseRecorder {
	t.Helper()
	var buf bytes.Buffer
	if s, ok := body.(string); ok {
		buf.WriteString(s)
	} else if err := json.NewEncoder(&buf).Encode(body); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, BeatPath, &buf)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestBeatAcceptedStampedAndAnsweredWithOrders(t *testing.T) {
	r := newReceiver()
	rec := post(t, r, "secret-a", beat("host-a", model.PathManagement, 1))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var orders model.AgentOrders
	if err := json.Unmarshal(rec.Body.Bytes(), &orders); err != nil {
		t.Fatal(err)
	}
	if orders.Interval != 2*time.Second || orders.Probes["uuid-1"].GuestAgent == nil {
		t.Fatalf("orders not answered: %+v", orders)
	}
	got := r.Drain()
	if len(got) != 1 || got[0].Host != "host-a" || got[0].Seq != 1 {
		t.Fatalf("drained %+v", got)
	}
	// At is Vigil's clock, whatever the agent's says.
	if !got[0].At.Equal(t0) {
		t.Fatalf("At = %s, want the receiver's clock %s", got[0].At, t0)
	}
	if again := r.Drain(); len(again) != 0 {
		t.Fatalf("Drain did not clear: %+v", again)
	}
}

func TestBadTokensRefused(t *testing.T) {
	r := newReceiver()
	for name, tc := range map[string]struct {
		token string
		host  string
	}{
		"no token":                 {"", "host-a"},
		"wrong token":              {"secret-x", "host-a"},
		"another host's token":     {"secret-b", "host-a"},
		"unknown host":             {"secret-a", "host-z"},
		"token prefix of the real": {"secret", "host-a"},
	} {
		rec := post(t, r, tc.token, beat(tc.host, model.PathManagement, 1))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "secret") {
			t.Errorf("%s: the answer shows a token: %s", name, rec.Body)
		}
	}
	if got := r.Drain(); len(got) != 0 {
		t.Fatalf("refused beats were buffered: %+v", got)
	}
}

func TestBadBeatsNameTheField(t *testing.T) {
	r := newReceiver()
	mod := func(f func(*model.AgentBeat)) model.AgentBeat {
		b := beat("host-a", model.PathManagement, 1)
		f(&b)
		return b
	}
	for field, body := range map[string]any{
		"body":          `{"host": "host-a",`,
		"path":          mod(func(b *model.AgentBeat) { b.Path = "" }),
		"boot":          mod(func(b *model.AgentBeat) { b.Boot = "" }),
		"seq":           mod(func(b *model.AgentBeat) { b.Seq = 0 }),
		"sent":          mod(func(b *model.AgentBeat) { b.Sent = time.Time{} }),
		"interval":      mod(func(b *model.AgentBeat) { b.Interval = 0 }),
		"peers[host-b]": mod(func(b *model.AgentBeat) { b.Peers = map[string]time.Duration{"host-b": -1} }),
		"report.domains[1]": mod(func(b *model.AgentBeat) {
			b.Report = &model.HostReport{Domains: []model.Domain{{UUID: "u", State: "running"}, {UUID: "", State: "running"}}}
		}),
		"report.events[0].uui": mod(func(b *model.AgentBeat) {
			b.Report = &model.HostReport{Events: []model.DomainEvent{{Event: "stopped"}}}
		}),
	} {
		rec := post(t, r, "secret-a", body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", field, rec.Code)
			continue
		}
		if !strings.Contains(rec.Body.String(), field) {
			t.Errorf("%s: the error does not name the field: %s", field, rec.Body)
		}
	}
	if got := r.Drain(); len(got) != 0 {
		t.Fatalf("bad beats were buffered: %+v", got)
	}
}

func TestBodyLimit(t *testing.T) {
	r := newReceiver()
	r.MaxBody = 512
	b := beat("host-a", model.PathManagement, 1)
	b.Report = &model.HostReport{Libvirt: strings.Repeat("x", 1000)}
	if rec := post(t, r, "secret-a", b); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", rec.Code)
	}
}

func TestWakeOnlyOnNews(t *testing.T) {
	r := newReceiver()
	woke := func() bool {
		select {
		case <-r.Wake():
			return true
		default:
			return false
		}
	}
	running := &model.HostReport{Domains: []model.Domain{{UUID: "u1", State: model.DomainRunning, Since: t0}}}
	send := func(seq uint64, rep *model.HostReport) {
		b := beat("host-a", model.PathManagement, seq)
		b.Report = rep
		if rec := post(t, r, "secret-a", b); rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	send(1, running)
	if !woke() {
		t.Fatal("the first report of a host did not wake the engine")
	}
	send(2, nil)
	if woke() {
		t.Fatal("a plain beat woke the engine")
	}
	same := *running
	same.Domains = []model.Domain{{UUID: "u1", State: model.DomainRunning, Since: t0.Add(time.Minute)}}
	send(3, &same)
	if woke() {
		t.Fatal("a repeated report (only times differ) woke the engine")
	}
	send(4, &model.HostReport{Domains: []model.Domain{{UUID: "u1", State: model.DomainShutoff, Reason: model.ReasonCrashed}}})
	if !woke() {
		t.Fatal("a changed report (running -> shutoff) did not wake the engine")
	}
	send(5, &model.HostReport{Domains: []model.Domain{{UUID: "u1", State: model.DomainShutoff, Reason: model.ReasonCrashed}},
		Events: []model.DomainEvent{{UUID: "u1", Event: "stopped", Detail: "failed"}}})
	if !woke() {
		t.Fatal("a report with events did not wake the engine")
	}
	// Many beats with news: one wake-up pending, no blocking.
	for i := uint64(6); i < 10; i++ {
		send(i, &model.HostReport{Events: []model.DomainEvent{{UUID: "u1", Event: "started"}}})
	}
	if !woke() || woke() {
		t.Fatal("want exactly one pending wake-up after several beats with news")
	}
}

func TestOverflowKeepsNewestPerHostPathAndTheirNews(t *testing.T) {
	r := newReceiver()
	r.MaxBuffered = 4
	crash := &model.HostReport{
		Domains: []model.Domain{{UUID: "u1", State: model.DomainShutoff, Reason: model.ReasonCrashed}},
		Events:  []model.DomainEvent{{UUID: "u1", Event: "stopped", Detail: "failed"}},
	}
	seq := uint64(0)
	send := func(host, path string, rep *model.HostReport) {
		seq++
		b := beat(host, path, seq)
		b.Report = rep
		if rec := post(t, r, "secret-"+host[len(host)-1:], b); rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	send("host-a", model.PathManagement, crash)
	for range 5 {
		send("host-a", model.PathManagement, nil)
		send("host-a", model.PathStorage, nil)
		send("host-b", model.PathManagement, nil)
	}
	got := r.Drain()
	if len(got) > 4 {
		t.Fatalf("buffer over its bound: %d beats", len(got))
	}
	if r.Dropped() == 0 {
		t.Fatal("drops not counted")
	}
	seen := map[string]uint64{}
	var crashKept bool
	for _, b := range got {
		seen[b.Host+"/"+b.Path] = b.Seq
		if b.Host == "host-a" && b.Path == model.PathManagement && b.Report != nil && len(b.Report.Events) == 1 &&
			b.Report.Domains[0].State == model.DomainShutoff {
			crashKept = true
		}
	}
	if len(seen) != 3 {
		t.Fatalf("want the newest beat of each of 3 host+paths, got %v", seen)
	}
	if seen["host-b/"+model.PathManagement] != seq {
		t.Fatalf("newest beat of host-b lost: %v (last seq %d)", seen, seq)
	}
	if !crashKept {
		t.Fatalf("the crash report was dropped with its beat: %+v", got)
	}
}
