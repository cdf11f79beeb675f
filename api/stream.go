package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
)

// EventReader is what the stream needs of the store: the journal, by ID.
type EventReader interface {
	Events(ctx context.Context, after int64, limit int) ([]model.Event, error)
}

// Stream serves the journal as server-sent events (GET /v1/stream). One pump
// reads what the store journaled since the last read, when woken (Notify, called
// for every event the engine writes) or every PollEvery (events another replica
// journaled in a shared store), and fans each event out to the subscribers.
//
// The engine is never held up by a client: Notify only flags the pump, and a
// subscriber whose buffer is full is dropped; its browser reconnects with
// Last-Event-ID and resumes from the store, so a drop loses nothing.
type Stream struct {
	rec EventReader
	log *slog.Logger
	// Buffer is each subscriber's queue of events (default 256); WriteTimeout bounds
	// each write to one client (default 10 s); PollEvery is how often the store is
	// read without a Notify (default 2 s); Ping is the keep-alive comment interval
	// (default 15 s).
	Buffer       int
	WriteTimeout time.Duration
	PollEvery    time.Duration
	Ping         time.Duration
	// MaxClients caps the open streams (default 64): each costs a goroutine and a
	// buffer; beyond it a client gets a 503.
	MaxClients int

	wake  chan struct{}
	ready chan struct{}

	mu     sync.Mutex
	cursor int64 // the highest event ID read from the store and fanned out
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch chan model.Event // closed when dropped (it could not keep up) or at shutdown
}

// NewStream returns a stream of rec's journal; Run must pump it.
func NewStream(rec EventReader, log *slog.Logger) *Stream {
	if log == nil {
		log = slog.Default()
	}
	return &Stream{rec: rec, log: log, Buffer: 256, WriteTimeout: 10 * time.Second, PollEvery: 2 * time.Second,
		Ping: 15 * time.Second, MaxClients: 64,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), subs: map[*subscriber]struct{}{}}
}

// WithStream serves s at GET /v1/stream.
func WithStream(s *Stream) Option {
	return func(h *handler) {
		if s != nil {
			h.v1 = append(h.v1, func(r chi.Router) { r.Get("/stream", s.serve) })
		}
	}
}

// Notify tells the pump the journal grew. It never blocks.
func (s *Stream) Notify() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake is already pending: the pump reads everything new then
	}
}

// Run pumps the journal to the subscribers until ctx ends, then ends every stream.
func (s *Stream) Run(ctx context.Context) {
	defer s.closeAll()
	for {
		n, err := s.pump(ctx, false)
		if err == nil && n == 0 {
			break // the journal's end: streams start from here
		}
		if err != nil {
			s.log.Warn("event stream: read the journal's end", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	close(s.ready)
	t := time.NewTicker(s.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
		for {
			n, err := s.pump(ctx, true)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("event stream: read the journal", "err", err)
			}
			if err != nil || n < pumpPage {
				break
			}
		}
	}
}

const pumpPage = 1000

// pump reads one page of events after the cursor and, if fan, hands each to
// every subscriber; it returns how many it read.
func (s *Stream) pump(ctx context.Context, fan bool) (int, error) {
	s.mu.Lock()
	after := s.cursor
	s.mu.Unlock()
	evs, err := s.rec.Events(ctx, after, pumpPage)
	if err != nil {
		return 0, fmt.Errorf("events after %d: %w", after, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		s.cursor = ev.ID
		if !fan {
			continue
		}
		for sub := range s.subs {
			select {
			case sub.ch <- ev:
			default:
				s.dropLocked(sub)
			}
		}
	}
	return len(evs), nil
}

func (s *Stream) dropLocked(sub *subscriber) {
	delete(s.subs, sub)
	close(sub.ch)
}

func (s *Stream) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.ch)
	}
}

// Clients returns how many streams are open.
func (s *Stream) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

var errStreamFull = errors.New("too many open event streams; try again later")

// subscribe registers a subscriber and returns the cursor at that instant: the
// events after it come on its channel, those up to it are in the store.
func (s *Stream) subscribe() (*subscriber, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, 0, errors.New("the event stream is shutting down")
	}
	if len(s.subs) >= s.MaxClients {
		return nil, 0, errStreamFull
	}
	sub := &subscriber{ch: make(chan model.Event, s.Buffer)}
	s.subs[sub] = struct{}{}
	return sub, s.cursor, nil
}

func (s *Stream) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[sub]; ok {
		s.dropLocked(sub)
	}
}

// resumeFrom returns the event ID the client last saw: its Last-Event-ID header
// (a reconnecting EventSource sends it) or its after parameter; -1 for none (the
// stream then starts with the next event written).
func resumeFrom(r *http.Request) (int64, error) {
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, &engine.InvalidError{Field: "Last-Event-ID", Msg: fmt.Sprintf("must be an event ID (an integer from 0), got %q", v)}
		}
		return n, nil
	}
	if r.URL.Query().Has("after") {
		return intParam(r, "after", 0, 1<<62)
	}
	return -1, nil
}

func (s *Stream) serve(w http.ResponseWriter, r *http.Request) {
	from, err := resumeFrom(r)
	if err != nil {
		var ie *engine.InvalidError
		errors.As(err, &ie)
		write(w, http.StatusBadRequest, Error{Error: ie.Error(), Field: ie.Field})
		return
	}
	select {
	case <-s.ready:
	case <-r.Context().Done():
		return
	}
	sub, cursor, err := s.subscribe()
	if err != nil {
		write(w, http.StatusServiceUnavailable, Error{Error: err.Error()})
		return
	}
	defer s.unsubscribe(sub)
	c := &sseConn{w: w, rc: http.NewResponseController(w), timeout: s.WriteTimeout}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy must not hold events back
	w.WriteHeader(http.StatusOK)
	// The retry hint, and a first flush: the client knows at once it is connected.
	if err := c.send("retry: 2000\n\n"); err != nil {
		return
	}
	if from >= 0 && from < cursor {
		if err := s.replay(r.Context(), c, from, cursor); err != nil {
			s.log.Debug("event stream: replay", "err", err)
			return
		}
	}
	ping := time.NewTicker(s.Ping)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			if err := c.send(": ping\n\n"); err != nil {
				return
			}
		case ev, ok := <-sub.ch:
			if !ok {
				return // dropped (too slow) or shutting down: the client reconnects and resumes
			}
			if err := c.event(ev); err != nil {
				return
			}
		}
	}
}

// replay sends the journal's events after from up to the cursor, read from the
// store: what a reconnecting client missed.
func (s *Stream) replay(ctx context.Context, c *sseConn, from, cursor int64) error {
	for from < cursor {
		evs, err := s.rec.Events(ctx, from, pumpPage)
		if err != nil {
			return fmt.Errorf("events after %d: %w", from, err)
		}
		if len(evs) == 0 {
			return nil
		}
		for _, ev := range evs {
			if ev.ID > cursor {
				return nil // the channel carries it
			}
			if err := c.event(ev); err != nil {
				return err
			}
			from = ev.ID
		}
	}
	return nil
}

// sseConn writes one client's stream, each write under its own deadline: a
// client that stops reading is cut off, whatever the server's WriteTimeout.
type sseConn struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (c *sseConn) event(ev model.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("event %d: %w", ev.ID, err)
	}
	return c.send(fmt.Sprintf("id: %d\ndata: %s\n\n", ev.ID, b))
}

func (c *sseConn) send(s string) error {
	if err := c.rc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := c.w.Write([]byte(s)); err != nil {
		return err
	}
	return c.rc.Flush()
}
