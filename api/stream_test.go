package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/model"
)

// memJournal is an in-memory journal: IDs from 1, in order, as a store assigns them.
type memJournal struct {
	mu  sync.Mutex
	evs []model.Event
}

func (j *memJournal) append(msgs ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, m := range msgs {
		j.evs = append(j.evs, model.Event{ID: int64(len(j.evs) + 1), At: time.Now(), Kind: "step", Subject: "server/s1", Incident: 7, Message: m})
	}
}

func (j *memJournal) Events(_ context.Context, after int64, limit int) ([]model.Event, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if after >= int64(len(j.evs)) {
		return nil, nil
	}
	out := j.evs[after:]
	if len(out) > limit {
		out = out[:limit]
	}
	return append([]model.Event(nil), out...), nil
}

// streamRig serves the API with a stream of a memJournal, pumped until the test ends.
// The journal holds the seed events before the pump starts.
func streamRig(t *testing.T, tune func(*api.Stream), seed ...string) (*memJournal, *api.Stream, string) {
	t.Helper()
	r := newRig(t)
	j := &memJournal{}
	j.append(seed...)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := api.NewStream(j, log)
	s.PollEvery = time.Hour // only Notify delivers: the test sees the wake-up work
	if tune != nil {
		tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	srv := httptest.NewServer(api.Handler(r.eng, r.db, log, api.WithStream(s)))
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return j, s, srv.URL
}

type sseEvent struct {
	id int64
	ev model.Event
}

// openStream connects to /v1/stream with the given Last-Event-ID ("" for none)
// and returns its events on a channel, closed when the stream ends.
func openStream(t *testing.T, ctx context.Context, url, lastID string) (<-chan sseEvent, *http.Response) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/stream", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/stream: %v", err)
	}
	out := make(chan sseEvent, 100000)
	if resp.StatusCode != http.StatusOK {
		close(out)
		return out, resp
	}
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var cur sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				cur.id, _ = strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			case line == "" && data != "":
				if err := json.Unmarshal([]byte(data), &cur.ev); err != nil {
					return
				}
				out <- cur
				cur, data = sseEvent{}, ""
			}
		}
	}()
	return out, resp
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("the stream ended")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

// waitClients waits until the stream counts n open clients.
func waitClients(t *testing.T, s *api.Stream, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Clients() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients on the stream, want %d", s.Clients(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An event journaled while a client watches reaches it at once, with its journal ID.
func TestStreamPushesEventsAsJournaled(t *testing.T) {
	j, s, url := streamRig(t, nil, "before the client came")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, resp := openStream(t, ctx, url, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	waitClients(t, s, 1)
	j.append("fence host-1: succeeded", "evacuate s1: succeeded")
	s.Notify()
	for i, want := range []string{"fence host-1: succeeded", "evacuate s1: succeeded"} {
		e := next(t, ch)
		if e.id != int64(i+2) || e.ev.ID != e.id || e.ev.Message != want || e.ev.Incident != 7 {
			t.Fatalf("event %d: id %d %+v, want id %d %q", i, e.id, e.ev, i+2, want)
		}
	}
}

// A client that reconnects with Last-Event-ID gets what it missed from the store,
// then the live events, each once.
func TestStreamResumesFromLastEventID(t *testing.T) {
	// Written before the stream started: only the store has them.
	j, s, url := streamRig(t, nil, "event 1", "event 2", "event 3", "event 4", "event 5")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := openStream(t, ctx, url, "2")
	for want := int64(3); want <= 5; want++ {
		if e := next(t, ch); e.id != want || e.ev.Message != fmt.Sprintf("event %d", want) {
			t.Fatalf("resumed: id %d %q, want %d", e.id, e.ev.Message, want)
		}
	}
	j.append("event 6")
	s.Notify()
	if e := next(t, ch); e.id != 6 {
		t.Fatalf("live after the replay: id %d, want 6", e.id)
	}
	select {
	case e := <-ch:
		t.Fatalf("an extra event: %+v", e)
	case <-time.After(200 * time.Millisecond):
	}
}

// A client that stops reading never holds the journal up: the others get every
// event, and the stuck one is cut off. A client dropped for being slow resumes
// with Last-Event-ID and misses nothing.
func TestStreamStuckClientBlocksNothing(t *testing.T) {
	j, s, url := streamRig(t, func(s *api.Stream) { s.Buffer, s.WriteTimeout = 8, 300*time.Millisecond })
	// The stuck client: sends its request, never reads a byte.
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
	waitClients(t, s, 1)

	// A reader that reconnects from its last ID whenever it is dropped.
	const total = 6000
	big := strings.Repeat("x", 2000) // 12 MB in all: more than the sockets buffer
	got := make(chan int64, total)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		last := int64(0)
		for ctx.Err() == nil {
			ch, resp := openStream(t, ctx, url, strconv.FormatInt(last, 10))
			if resp.StatusCode != http.StatusOK {
				return
			}
			for e := range ch {
				if e.id != last+1 {
					t.Errorf("event %d after %d: a gap or a duplicate", e.id, last)
					return
				}
				last = e.id
				got <- e.id
			}
		}
	}()
	waitClients(t, s, 2)
	start := time.Now()
	for i := 0; i < total; i += 100 {
		msgs := make([]string, 100)
		for k := range msgs {
			msgs[k] = big
		}
		j.append(msgs...)
		s.Notify()
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("journaling %d events with a stuck client took %s", total, d)
	}
	deadline := time.After(30 * time.Second)
	for n := int64(0); n < total; {
		select {
		case n = <-got:
		case <-deadline:
			t.Fatalf("the reading client got %d of %d events", n, total)
		}
	}
	waitClients(t, s, 1) // the stuck one was cut off; the reader remains
}

func TestStreamRefusesBadLastEventID(t *testing.T) {
	_, _, url := streamRig(t, nil)
	_, resp := openStream(t, context.Background(), url, "yesterday")
	defer resp.Body.Close()
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != http.StatusBadRequest || e.Field != "Last-Event-ID" {
		t.Fatalf("%d %+v", resp.StatusCode, e)
	}
}
