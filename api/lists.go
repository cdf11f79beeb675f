package api

// Pagination and filters of the list routes. Every list answers a JSON array; a
// page that is not the last carries a Link header (RFC 8288) with rel="next" whose
// URL is the same request continued after the page's last item (its marker), so a
// client pages by following Link until it is absent.
//
// Clusters, hosts and servers are the engine's in-memory view: sorted by their key
// (name, name, ID), a page holds the items after the marker; without a limit the
// whole list. Incidents are read from the store newest first, filtered there
// before the limit (store.IncidentQuery), so a page is never short while more
// matches exist. Events keep their own cursor: after=ID, oldest first.

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// maxPage is the largest limit a list accepts.
const maxPage = 10000

// onlyParams refuses (400 naming it) a query parameter the route does not know: a
// misspelt filter must not silently return everything.
func onlyParams(r *http.Request, known ...string) error {
	q := r.URL.Query()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	}) {
		if !slices.Contains(known, k) {
			return &engine.InvalidError{Field: k, Msg: fmt.Sprintf("unknown query parameter; %s %s takes %s", r.Method, r.URL.Path, strings.Join(known, ", "))}
		}
	}
	return nil
}

// setNext links the next page: this request's URL with marker set to next.
func setNext(w http.ResponseWriter, r *http.Request, param, next string) {
	q := r.URL.Query()
	q.Set(param, next)
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	w.Header().Set("Link", "<"+u.String()+`>; rel="next"`)
}

// pageAfter returns the items after marker (by key, ascending), at most limit of
// them (0: all), linking the next page when some are left.
func pageAfter[T any](w http.ResponseWriter, r *http.Request, items []T, key func(T) string) ([]T, error) {
	limit, err := intParam(r, "limit", 0, maxPage)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	if m := r.URL.Query().Get("marker"); m != "" {
		i, _ := slices.BinarySearchFunc(items, m, func(it T, m string) int { return cmp.Compare(key(it), m) })
		for i < len(items) && key(items[i]) <= m {
			i++
		}
		items = items[i:]
	}
	if limit > 0 && len(items) > int(limit) {
		items = items[:limit]
		setNext(w, r, "marker", key(items[len(items)-1]))
	}
	if items == nil {
		items = []T{}
	}
	return items, nil
}

// filter keeps the items ok accepts.
func filter[T any](items []T, ok func(T) bool) []T {
	return slices.DeleteFunc(items, func(it T) bool { return !ok(it) })
}

// listClusters: GET /v1/clusters?limit=&marker=&health=Green|Yellow|Red&policy=.
func (h *handler) listClusters(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r, "limit", "marker", "health", "policy"); err != nil {
		h.fail(w, err)
		return
	}
	q := r.URL.Query()
	health := model.ClusterHealth(q.Get("health"))
	if health != "" && !slices.Contains([]model.ClusterHealth{model.Green, model.Yellow, model.Red}, health) {
		h.fail(w, &engine.InvalidError{Field: "health", Msg: fmt.Sprintf("must be Green, Yellow or Red, got %q", health)})
		return
	}
	cs := filter(h.eng.Clusters(), func(c model.ClusterStatus) bool {
		return (health == "" || c.Health == health) && (q.Get("policy") == "" || c.Policy == q.Get("policy"))
	})
	page, err := pageAfter(w, r, cs, func(c model.ClusterStatus) string { return c.Name })
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusOK, page)
}

// listHosts: GET /v1/hosts?limit=&marker=&segment=.
func (h *handler) listHosts(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r, "limit", "marker", "segment"); err != nil {
		h.fail(w, err)
		return
	}
	seg, bySeg := r.URL.Query()["segment"]
	hs := filter(h.eng.Hosts(), func(s engine.HostStatus) bool { return !bySeg || s.Segment == seg[0] })
	page, err := pageAfter(w, r, hs, func(s engine.HostStatus) string { return s.Name })
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusOK, page)
}

// listServers: GET /v1/servers?limit=&marker=&host=&cluster= (the cluster's
// members).
func (h *handler) listServers(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r, "limit", "marker", "host", "cluster"); err != nil {
		h.fail(w, err)
		return
	}
	q := r.URL.Query()
	host, cluster := q.Get("host"), q.Get("cluster")
	var members []string
	if cluster != "" {
		members = h.members(cluster)
	}
	ss := filter(h.eng.Servers(), func(s engine.ServerStatus) bool {
		return (host == "" || s.Host == host) && (cluster == "" || slices.Contains(members, s.ID))
	})
	page, err := pageAfter(w, r, ss, func(s engine.ServerStatus) string { return s.ID })
	if err != nil {
		h.fail(w, err)
		return
	}
	write(w, http.StatusOK, page)
}

// members are the servers of the cluster named (none for an unknown one).
func (h *handler) members(cluster string) []string {
	for _, c := range h.eng.Clusters() {
		if c.Name == cluster {
			return c.Members
		}
	}
	return nil
}

// incidentStates are the values of the state filter: an incident state, or
// "closed" for every closed one.
var incidentStates = map[string][]model.IncidentState{
	"open":       {model.IncidentOpen},
	"waiting":    {model.IncidentWaiting},
	"resolved":   {model.IncidentResolved},
	"escalated":  {model.IncidentEscalated},
	"superseded": {model.IncidentSuperseded},
	"closed":     {model.IncidentResolved, model.IncidentEscalated, model.IncidentSuperseded},
}

// incidentQuery reads GET /v1/incidents' parameters: limit (default 100), marker
// (an incident ID: the page continues below it), state (comma-separated), cluster
// and host.
func (h *handler) incidentQuery(r *http.Request) (store.IncidentQuery, error) {
	if err := onlyParams(r, "limit", "marker", "state", "cluster", "host"); err != nil {
		return store.IncidentQuery{}, err
	}
	limit, err := intParam(r, "limit", 100, maxPage)
	if err != nil {
		return store.IncidentQuery{}, err
	}
	if limit == 0 {
		return store.IncidentQuery{}, &engine.InvalidError{Field: "limit", Msg: fmt.Sprintf("must be an integer from 1 to %d, got 0", maxPage)}
	}
	marker, err := intParam(r, "marker", 0, 1<<62)
	if err != nil {
		return store.IncidentQuery{}, err
	}
	q := r.URL.Query()
	iq := store.IncidentQuery{Limit: int(limit), Before: marker, Cluster: q.Get("cluster"), Host: q.Get("host")}
	if s := q.Get("state"); s != "" {
		for _, one := range strings.Split(s, ",") {
			states, ok := incidentStates[one]
			if !ok {
				return store.IncidentQuery{}, &engine.InvalidError{Field: "state", Msg: fmt.Sprintf(
					"unknown state %q; want open, waiting, resolved, escalated, superseded or closed (comma-separated for several)", one)}
			}
			iq.States = append(iq.States, states...)
		}
	}
	if iq.Host != "" {
		for _, s := range h.eng.Servers() {
			if s.Host == iq.Host {
				iq.Servers = append(iq.Servers, s.ID)
			}
		}
	}
	return iq, nil
}

func (h *handler) listIncidents(w http.ResponseWriter, r *http.Request) {
	iq, err := h.incidentQuery(r)
	if err != nil {
		h.fail(w, err)
		return
	}
	p, err := h.queryIncidents(r.Context(), iq)
	if err != nil {
		h.fail(w, err)
		return
	}
	if p.next != 0 {
		setNext(w, r, "marker", strconv.FormatInt(p.next, 10))
	}
	write(w, http.StatusOK, p.items)
}

// queryIncidents reads one more than the page to know whether a next page exists.
func (h *handler) queryIncidents(ctx context.Context, iq store.IncidentQuery) (incidentPage, error) {
	iq.Limit++
	incs, err := h.rec.QueryIncidents(ctx, iq)
	if err != nil {
		return incidentPage{}, err
	}
	p := incidentPage{items: incs}
	if len(incs) == iq.Limit {
		p.items = incs[:iq.Limit-1]
		p.next = p.items[len(p.items)-1].ID
	}
	if p.items == nil {
		p.items = []model.Incident{}
	}
	return p, nil
}

type incidentPage struct {
	items []model.Incident
	next  int64 // the marker of the next page; 0 on the last
}

func (h *handler) listEvents(w http.ResponseWriter, r *http.Request) {
	if err := onlyParams(r, "after", "limit"); err != nil {
		h.fail(w, err)
		return
	}
	after, err := intParam(r, "after", 0, 1<<62)
	if err != nil {
		h.fail(w, err)
		return
	}
	limit, err := intParam(r, "limit", 500, maxPage)
	if err != nil {
		h.fail(w, err)
		return
	}
	evs, err := h.rec.Events(r.Context(), after, int(limit))
	if err != nil {
		h.fail(w, err)
		return
	}
	if evs == nil {
		evs = []model.Event{}
	}
	// Events grow: a full page may be followed by more, a short one is the end
	// for now (poll again with after=the last ID).
	if limit > 0 && len(evs) == int(limit) {
		setNext(w, r, "after", strconv.FormatInt(evs[len(evs)-1].ID, 10))
	}
	write(w, http.StatusOK, evs)
}
