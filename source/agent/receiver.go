package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// BeatPath is where agents post their heartbeats.
const BeatPath = "/v1/agent/beat"

// Defaults of a Receiver's limits.
const (
	DefaultMaxBody     = 1 << 20 // a report of a few hundred domains fits with room to spare
	DefaultMaxBuffered = 4096
)

// Receiver receives agents' heartbeats. Set Tokens and Orders before serving; the
// zero values of the other fields are usable.
type Receiver struct {
	// Tokens gives a host's token; ok is false for a host Vigil does not know.
	Tokens func(host string) (token string, ok bool)
	// Orders gives what a host's agent should probe; nil answers empty orders.
	Orders func(host string) model.AgentOrders
	// Now is Vigil's clock (default time.Now): it stamps each beat's At.
	Now func() time.Time
	// MaxBody caps a beat's size in bytes (default DefaultMaxBody).
	MaxBody int64
	// MaxBuffered caps the beats held between two drains (default DefaultMaxBuffered).
	MaxBuffered int

	mu       sync.Mutex
	buf      []model.AgentBeat
	dropped  int
	received int64
	last     map[string]string // host -> fingerprint of its last report
	wake     chan struct{}
	once     sync.Once
}

func (r *Receiver) init() {
	r.once.Do(func() {
		r.wake = make(chan struct{}, 1)
		r.last = map[string]string{}
	})
}

// Wake is signalled when a beat brings news (domain events, or a report that
// differs from its host's last one): the engine should drain and reconcile now,
// not at its next tick. Its capacity is 1: many beats, one wake-up.
func (r *Receiver) Wake() <-chan struct{} {
	r.init()
	return r.wake
}

// Drain returns the beats received since the last drain, in arrival order, and
// forgets them.
func (r *Receiver) Drain() []model.AgentBeat {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.buf
	r.buf = nil
	return out
}

// Dropped counts the beats merged away because the buffer overflowed (the engine
// did not drain it in time). Their news was kept; only stale plain beats go.
func (r *Receiver) Dropped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}

// Received counts the beats accepted since the receiver started.
func (r *Receiver) Received() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// ServeHTTP answers POST /v1/agent/beat: 200 with the host's orders, 400 naming the
// field on a bad beat, 401 on a missing or wrong token.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.init()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "method: only POST is allowed on "+BeatPath)
		return
	}
	maxBody := r.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	var b model.AgentBeat
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxBody))
	if err := dec.Decode(&b); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", maxBody))
			return
		}
		httpError(w, http.StatusBadRequest, "body: not a heartbeat (JSON): "+err.Error())
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		httpError(w, http.StatusBadRequest, "body: one JSON object expected, found more after it")
		return
	}
	// The host is needed to pick the token; everything else is checked only for a
	// caller that proved who it is.
	if b.Host == "" {
		httpError(w, http.StatusBadRequest, "host: must not be empty")
		return
	}
	if !r.authorized(b.Host, req.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil-agent"`)
		httpError(w, http.StatusUnauthorized, "authorization: no valid token for host "+b.Host+" (Bearer, the host's own token)")
		return
	}
	if err := ValidateBeat(b); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	b.At = r.now()
	r.add(b)

	var orders model.AgentOrders
	if r.Orders != nil {
		orders = r.Orders(b.Host)
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(orders); err != nil {
		// The beat is buffered; the agent keeps its last orders and retries next beat.
		return
	}
}

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// authorized compares in constant time, so a wrong token's timing tells nothing of
// the right one. A token is only ever compared with its own host's: one host's
// token cannot speak for another.
func (r *Receiver) authorized(host, header string) bool {
	if r.Tokens == nil {
		return false
	}
	want, ok := r.Tokens(host)
	if !ok || want == "" {
		return false
	}
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) == 1
}

// ValidateBeat says what is wrong with a beat, naming the field.
func ValidateBeat(b model.AgentBeat) error {
	switch {
	case b.Host == "":
		return errors.New("host: must not be empty")
	case b.Path == "":
		return errors.New("path: must not be empty (management, storage...)")
	case b.Boot == "":
		return errors.New("boot: must not be empty (the agent run's identifier)")
	case b.Seq == 0:
		return errors.New("seq: must be positive")
	case b.Sent.IsZero():
		return errors.New("sent: must be set (the agent's clock when it sent the beat)")
	case b.Interval <= 0:
		return fmt.Errorf("interval: must be positive, got %s", b.Interval)
	}
	for name, age := range b.Peers {
		if name == "" {
			return errors.New("peers: a peer has an empty name")
		}
		if age < 0 {
			return fmt.Errorf("peers[%s]: age must not be negative, got %s", name, age)
		}
	}
	if b.Report == nil {
		return nil
	}
	for i, d := range b.Report.Domains {
		switch {
		case d.UUID == "":
			return fmt.Errorf("report.domains[%d].uuid: must not be empty", i)
		case d.State == "":
			return fmt.Errorf("report.domains[%d].state: must not be empty (domain %s)", i, d.UUID)
		}
	}
	for i, e := range b.Report.Events {
		switch {
		case e.UUID == "":
			return fmt.Errorf("report.events[%d].uuid: must not be empty", i)
		case e.Event == "":
			return fmt.Errorf("report.events[%d].event: must not be empty (domain %s)", i, e.UUID)
		}
	}
	return nil
}

// add buffers a beat and wakes the engine if it brings news.
func (r *Receiver) add(b model.AgentBeat) {
	r.mu.Lock()
	r.received++
	news := false
	if b.Report != nil {
		fp := b.Report.StateKey()
		news = len(b.Report.Events) > 0 || r.last[b.Host] != fp
		r.last[b.Host] = fp
	}
	max := r.MaxBuffered
	if max <= 0 {
		max = DefaultMaxBuffered
	}
	r.buf = append(r.buf, b)
	if len(r.buf) > max {
		before := len(r.buf)
		r.buf = compact(r.buf)
		for len(r.buf) > max { // more host+paths than room: the oldest go
			r.buf = r.buf[1:]
		}
		r.dropped += before - len(r.buf)
	}
	r.mu.Unlock()
	if news {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// compact keeps the newest beat of each host+path, in arrival order. The news of
// the beats it drops is not lost: the kept beat gets their events (in order) and,
// if it has none of its own, the newest report among them.
func compact(beats []model.AgentBeat) []model.AgentBeat {
	type key struct{ host, path string }
	newest := map[key]int{}
	for i, b := range beats {
		newest[key{b.Host, b.Path}] = i
	}
	var events = map[key][]model.DomainEvent{}
	var report = map[key]*model.HostReport{}
	for i, b := range beats {
		k := key{b.Host, b.Path}
		if b.Report == nil {
			continue
		}
		events[k] = append(events[k], b.Report.Events...)
		if i != newest[k] {
			report[k] = b.Report
		}
	}
	out := make([]model.AgentBeat, 0, len(newest))
	for i, b := range beats {
		k := key{b.Host, b.Path}
		if newest[k] != i {
			continue
		}
		if b.Report == nil && report[k] != nil {
			rep := *report[k]
			b.Report = &rep
		}
		if b.Report != nil && len(events[k]) > 0 {
			rep := *b.Report
			rep.Events = events[k]
			b.Report = &rep
		}
		out = append(out, b)
	}
	return out
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
