package metrics

import (
	"context"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// Journal returns s observed: each incident and step the engine writes, once the
// write succeeded, feeds the recoveries, step durations and times to detect,
// fence and recover. The journal is the truth of what Vigil did (a standby writes
// nothing, so it counts nothing); reads and every other write pass through.
func (m *Metrics) Journal(s store.Store) store.Store { return &journal{Store: s, m: m} }

type journal struct {
	store.Store
	m *Metrics
}

func (j *journal) CreateIncident(ctx context.Context, epoch int64, in *model.Incident) error {
	if err := j.Store.CreateIncident(ctx, epoch, in); err != nil {
		return err
	}
	j.m.incidentOpened(*in)
	return nil
}

func (j *journal) UpdateIncident(ctx context.Context, epoch int64, in model.Incident) error {
	if err := j.Store.UpdateIncident(ctx, epoch, in); err != nil {
		return err
	}
	j.m.incidentUpdated(in)
	return nil
}

func (j *journal) UpdateStep(ctx context.Context, epoch int64, st model.Step) error {
	if err := j.Store.UpdateStep(ctx, epoch, st); err != nil {
		return err
	}
	if !st.State.Done() || !j.m.firstDone(st) {
		return nil
	}
	if st.Action == model.ActFence && st.State == model.StepSucceeded {
		j.m.fenced(ctx, j.Store, st)
	}
	return nil
}

// incidentOpened records when the incident opened and observes the time to
// detect: from its subject's failed verdict's since (the first evidence).
func (m *Metrics) incidentOpened(in model.Incident) {
	m.mu.Lock()
	m.opened[in.ID] = openedAt{in.Opened.UnixNano()}
	src := m.src
	m.mu.Unlock()
	if src == nil {
		return
	}
	if since, ok := failingSince(src, in.Subject); ok && !in.Opened.Before(since) {
		m.detect.Observe(in.Opened.Sub(since).Seconds())
	}
}

// failingSince is when the subject's failure was first observed, if its verdict
// is a failure (a drain, an operator's request, has none: no time to detect).
func failingSince(src Source, subj model.Subject) (time.Time, bool) {
	var v model.Verdict
	switch subj.Kind {
	case model.KindHost:
		for _, h := range src.Hosts() {
			if h.Name == subj.ID {
				v = h.Verdict
			}
		}
	case model.KindServer:
		for _, s := range src.Servers() {
			if s.ID == subj.ID {
				v = s.Verdict
			}
		}
	}
	return v.Since, v.Failed && !v.Since.IsZero()
}

// incidentUpdated counts an incident closed (once) and observes its time to
// recover when resolved.
func (m *Metrics) incidentUpdated(in model.Incident) {
	if !in.State.Closed() {
		return
	}
	m.mu.Lock()
	if m.closed[in.ID] {
		m.mu.Unlock()
		return
	}
	if len(m.closed) >= 4096 { // an incident is closed once: the guard needs no long memory
		clear(m.closed)
	}
	m.closed[in.ID] = true
	delete(m.opened, in.ID)
	delete(m.done, in.ID)
	m.mu.Unlock()
	m.recoveries.WithLabelValues(string(in.State)).Inc()
	if in.State == model.IncidentResolved && !in.Opened.IsZero() && !in.Closed.IsZero() {
		m.recover.Observe(in.Closed.Sub(in.Opened).Seconds())
	}
}

// firstDone observes a finished step's duration, the first time it is journaled
// finished (a step settled again after a restart is not counted twice here); it
// reports whether it was the first.
func (m *Metrics) firstDone(st model.Step) bool {
	m.mu.Lock()
	steps := m.done[st.Incident]
	if steps == nil {
		steps = map[int64]bool{}
		m.done[st.Incident] = steps
	}
	seen := steps[st.ID]
	steps[st.ID] = true
	m.mu.Unlock()
	if seen {
		return false
	}
	start := st.Started
	if start.IsZero() {
		start = st.Planned
	}
	if !start.IsZero() && !st.Finished.IsZero() && !st.Finished.Before(start) {
		m.steps.WithLabelValues(string(st.Action), string(st.State)).Observe(st.Finished.Sub(start).Seconds())
	}
	return true
}

// fenced observes the time to fence: from the incident opened to its fence
// confirmed. An incident opened before this process started is read back.
func (m *Metrics) fenced(ctx context.Context, s store.Store, st model.Step) {
	m.mu.Lock()
	o, ok := m.opened[st.Incident]
	m.mu.Unlock()
	opened := time.Unix(0, o.at)
	if !ok {
		in, err := s.Incident(ctx, st.Incident)
		if err != nil {
			return
		}
		opened = in.Opened
	}
	if !st.Finished.IsZero() && !opened.IsZero() && !st.Finished.Before(opened) {
		m.fence.Observe(st.Finished.Sub(opened).Seconds())
	}
}
