package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// A cluster may follow a source instead of listing IDs (model.ClusterSource): a
// Heat stack, a Nova server group, server metadata. Its members are resolved from
// the source at every refresh (RefreshEvery, and on demand), so a server added to
// the stack is protected without anyone telling Vigil its ID, and one removed is no
// longer recovered. Resolving is I/O against Heat and Nova, so it runs beside the
// reconcile loop (RefreshClusters takes only the state lock, briefly): a slow Heat
// never delays a recovery. The members last resolved are stored, so a restart of
// Vigil while Heat is down keeps protecting them.
//
// Besides the stored clusters, two kinds are discovered from the cloud: every stack
// tagged vigil-protect is a cluster named after the stack (policy from a
// policy=NAME tag), and every value of the servers' vigil:cluster metadata is a
// cluster of that name (policy from vigil:policy). They live as long as the tag or
// the metadata; a stored cluster of the same name wins. Metadata is read from the
// server listing, and Nova does not bump updated_at for a metadata change: a change
// is seen at the next full listing (Config.FullEvery), then at the next refresh.

// DefaultRefreshEvery is how often sources are resolved when Config.RefreshEvery is 0.
const DefaultRefreshEvery = 30 * time.Second

// ErrFollowsSource: the cluster's members follow its source; they cannot be edited.
var ErrFollowsSource = errors.New("members follow the source")

// groupsOf returns the compute driver's Groups, or nil when it offers none.
func (e *Engine) groupsOf() cloud.Groups {
	g, _ := e.cfg.Compute.(cloud.Groups)
	return g
}

// resolved is what one refresh found for one cluster's source.
type resolved struct {
	members []string
	err     string // the source could not be read: the members stay as they were
	cause   error  // err's error, for its class (not found, unavailable)
}

// RefreshClusters resolves every source now: the stored clusters' and the
// discovered ones. Members that changed are stored and journaled.
func (e *Engine) RefreshClusters(ctx context.Context) error {
	now := e.cfg.Now()
	e.mu.RLock()
	clusters := slices.Clone(e.clusters)
	view := e.det.View()
	listed := !view.LastSeen.IsZero()
	byMeta := metadataMembers(view.Servers)
	e.mu.RUnlock()

	g := e.groupsOf()
	res := map[string]resolved{}
	for _, c := range clusters {
		if c.Source.Explicit() || c.Source.Discovered {
			continue
		}
		res[c.Name] = e.resolve(ctx, g, *c.Source, listed, byMeta)
	}
	found, discErr := e.discover(ctx, g, listed, byMeta)

	e.mu.Lock()
	next, changed := e.merge(now, res, found, discErr, listed)
	e.clusters = next
	e.protect()
	e.lastRefresh = now
	e.mu.Unlock()

	// Only a replica leading a shard stores and journals what changed (renewed if
	// due: a refresh runs beside the reconciles); a standby, or a leader that lost
	// its leases and has not reconciled since, keeps the result in its view only.
	if err := e.keeper.TickIfDue(ctx); err != nil && ctx.Err() == nil {
		e.leaseErr(ctx, err)
	}
	if len(e.keeper.Led()) == 0 {
		return nil
	}
	var errs []error
	var evs []model.Event
	for _, ch := range changed {
		// Discovered clusters are stored too: a Vigil restarted while Heat does not
		// answer protects them as last found.
		var err error
		switch {
		case ch.gone:
			err = e.cfg.Store.DeleteCluster(ctx, ch.c.Name)
		case ch.found:
			err = e.cfg.Store.CreateCluster(ctx, ch.c)
		default:
			err = e.cfg.Store.UpdateCluster(ctx, ch.c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("store cluster %s as its source says: %w", ch.c.Name, err))
		}
		evs = append(evs, model.Event{At: now, Kind: "cluster", Subject: "cluster/" + ch.c.Name, Message: ch.message})
	}
	if len(evs) > 0 {
		errs = append(errs, e.emit(ctx, evs...))
	}
	return errors.Join(errs...)
}

// resolve reads one source's members.
func (e *Engine) resolve(ctx context.Context, g cloud.Groups, src model.ClusterSource, listed bool, byMeta map[string][]string) resolved {
	switch src.Kind {
	case model.SourceMetadata:
		if !listed {
			return resolved{err: "waiting for the first full listing of the servers"}
		}
		return resolved{members: byMeta[src.Ref]}
	case model.SourceHeatStack, model.SourceServerGroup:
		if g == nil {
			return resolved{err: "the compute driver cannot read Heat stacks or server groups"}
		}
		var members []string
		var err error
		if src.Kind == model.SourceHeatStack {
			var st cloud.Stack
			st, err = g.Stack(ctx, src.Ref)
			members = st.Servers
		} else {
			var sg cloud.NovaGroup
			sg, err = g.ServerGroup(ctx, src.Ref)
			members = sg.Members
		}
		if err != nil {
			return resolved{err: err.Error(), cause: err}
		}
		return resolved{members: members}
	}
	return resolved{err: fmt.Sprintf("unknown source kind %q (known: %v)", src.Kind, model.SourceKinds)}
}

// discover finds the clusters the cloud defines: stacks tagged vigil-protect and
// the servers' vigil:cluster metadata. discErr is set when the stacks could not be
// listed (the stack clusters found last time are kept meanwhile).
func (e *Engine) discover(ctx context.Context, g cloud.Groups, listed bool, byMeta map[string][]string) (found []model.Cluster, discErr error) {
	if g != nil {
		stacks, err := g.TaggedStacks(ctx, model.TagProtect)
		switch {
		case errors.Is(err, cloud.ErrNoService):
			// No Heat: nothing to discover, nothing wrong.
		case err != nil:
			discErr = err
		}
		for _, st := range stacks {
			c := model.Cluster{Name: st.Name, Members: st.Servers, Policy: "default",
				Source: &model.ClusterSource{Kind: model.SourceHeatStack, Ref: st.ID, Discovered: true, Recovery: model.HeatRecovery}}
			if p, ok := model.StackPolicy(st.Tags); ok {
				c.Source.Note = e.policyNote(&c, p, "tag "+model.TagPolicy+p)
			}
			found = append(found, c)
		}
	}
	if listed {
		for _, name := range slices.Sorted(maps.Keys(byMeta)) {
			c := model.Cluster{Name: name, Members: byMeta[name], Policy: "default",
				Source: &model.ClusterSource{Kind: model.SourceMetadata, Ref: name, Discovered: true}}
			e.mu.RLock()
			p := metadataPolicy(e.det.View().Servers, byMeta[name])
			e.mu.RUnlock()
			if p != "" {
				c.Source.Note = e.policyNote(&c, p, model.MetaPolicy+"="+p)
			}
			found = append(found, c)
		}
	}
	return found, discErr
}

// policyNote sets the cluster's policy to the one its source names, or says why
// not: an unknown name protects with the default policy rather than not at all.
func (e *Engine) policyNote(c *model.Cluster, policy, where string) string {
	if _, ok := e.cfg.Policies[policy]; ok {
		c.Policy = policy
		return ""
	}
	return fmt.Sprintf("%s names no known policy (known: %v): protected by policy default", where, policyNames(e.cfg.Policies))
}

// metadataMembers groups the servers by their vigil:cluster metadata.
func metadataMembers(servers map[string]model.Server) map[string][]string {
	out := map[string][]string{}
	for _, id := range slices.Sorted(maps.Keys(servers)) {
		s := servers[id]
		if s.Status == model.StatusDeleted {
			continue
		}
		if name, ok := s.Metadata.Get(model.MetaCluster); ok && name != "" {
			out[name] = append(out[name], id)
		}
	}
	return out
}

// metadataPolicy is the vigil:policy the members name (the first, by ID).
func metadataPolicy(servers map[string]model.Server, members []string) string {
	for _, id := range members {
		if p, ok := servers[id].Metadata.Get(model.MetaPolicy); ok && p != "" {
			return p
		}
	}
	return ""
}

// change is a cluster whose members a refresh changed.
type change struct {
	c           model.Cluster
	found, gone bool // a discovered cluster appeared, or any cluster's source no longer defines it
	message     string
}

// merge folds a refresh's results into the clusters as they are now (one may have
// been created or deleted while the sources were read), under e.mu. A server
// belongs to one cluster: explicit clusters keep theirs, then stored source
// clusters, then discovered ones, each class by name; the loser says so.
//
// A discovered cluster the refresh could not see (the stacks could not be listed,
// the servers were not listed yet since a restart) is kept as it was.
func (e *Engine) merge(now time.Time, res map[string]resolved, found []model.Cluster, discErr error, listed bool) ([]model.Cluster, []change) {
	var next []model.Cluster
	old := map[string]model.Cluster{}
	stored := map[string]bool{}
	for _, c := range e.clusters {
		old[c.Name] = c
		if c.Source.Explicit() || !c.Source.Discovered {
			stored[c.Name] = true
			next = append(next, c)
		}
	}
	for _, c := range e.clusters {
		if c.Source.Explicit() || !c.Source.Discovered {
			continue
		}
		src := *c.Source
		switch {
		case src.Kind == model.SourceHeatStack && discErr != nil:
			src.Error = "cannot list the stacks tagged " + model.TagProtect + ": " + discErr.Error()
		case src.Kind == model.SourceMetadata && !listed:
			src.Error = "waiting for the first full listing of the servers"
		default:
			continue
		}
		found = slices.DeleteFunc(found, func(f model.Cluster) bool { return f.Name == c.Name })
		c.Source = &src
		found = append(found, c)
	}
	taken := map[string]string{} // server -> cluster
	for _, c := range next {
		if c.Source.Explicit() {
			for _, id := range c.Members {
				taken[id] = c.Name
			}
		}
	}
	for i, c := range next {
		if c.Source.Explicit() {
			continue
		}
		src := *c.Source
		r, ok := res[c.Name]
		if !ok { // created after the sources were read: the next refresh
			continue
		}
		if r.err != "" {
			src.Error = r.err
		} else {
			src.Error, src.Resolved = "", now
			c.Members, src.Note = claim(r.members, c.Name, taken)
		}
		c.Source = &src
		next[i] = c
	}
	slices.SortFunc(found, func(a, b model.Cluster) int { return strings.Compare(a.Name, b.Name) })
	for _, c := range found {
		if stored[c.Name] || slices.ContainsFunc(next, func(n model.Cluster) bool { return n.Name == c.Name }) {
			continue // a stored cluster of that name wins (or a stack and a metadata value share it)
		}
		src := *c.Source
		if src.Error == "" {
			src.Resolved = now
			var note string
			c.Members, note = claim(c.Members, c.Name, taken)
			src.Note = strings.TrimPrefix(src.Note+"; "+note, "; ")
			src.Note = strings.TrimSuffix(src.Note, "; ")
		}
		c.Source = &src
		next = append(next, c)
	}
	for i, c := range next {
		if !c.Source.Explicit() && !c.Source.FixedDesired {
			next[i].Desired = len(c.Members)
		}
	}
	slices.SortFunc(next, func(a, b model.Cluster) int { return strings.Compare(a.Name, b.Name) })
	var changed []change
	for _, c := range next {
		o, had := old[c.Name]
		if msg := membersChanged(o, c, had); msg != "" {
			changed = append(changed, change{c: c, found: !had, message: msg})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		o := old[name]
		if !slices.ContainsFunc(next, func(n model.Cluster) bool { return n.Name == name }) {
			changed = append(changed, change{c: o, gone: true, message: fmt.Sprintf("cluster %s is gone: its %s no longer defines it; its %d servers are no longer protected by it",
				name, describe(o.Source), len(o.Members))})
		}
	}
	return next, changed
}

// claim keeps the members no earlier cluster took, and says which it lost.
func claim(members []string, name string, taken map[string]string) ([]string, string) {
	var keep, lost []string
	for _, id := range members {
		if other, ok := taken[id]; ok && other != name {
			lost = append(lost, fmt.Sprintf("%s (in cluster %s)", id, other))
			continue
		}
		taken[id] = name
		keep = append(keep, id)
	}
	slices.Sort(keep)
	keep = slices.Compact(keep)
	if len(lost) == 0 {
		return keep, ""
	}
	return keep, "not protected by this cluster, another one keeps them: " + strings.Join(lost, ", ")
}

// membersChanged describes what a refresh changed in a cluster ("" for nothing).
func membersChanged(o, c model.Cluster, had bool) string {
	if !had {
		return fmt.Sprintf("cluster %s found: %s, %d members %v, policy %s", c.Name, describe(c.Source), len(c.Members), c.Members, c.Policy)
	}
	var parts []string
	if added := minus(c.Members, o.Members); len(added) > 0 {
		parts = append(parts, fmt.Sprintf("joined: %v", added))
	}
	if removed := minus(o.Members, c.Members); len(removed) > 0 {
		parts = append(parts, fmt.Sprintf("left (no longer protected by it): %v", removed))
	}
	if o.Policy != c.Policy {
		parts = append(parts, fmt.Sprintf("policy %s (was %s)", c.Policy, o.Policy))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("cluster %s follows its %s: %s; %d members", c.Name, describe(c.Source), strings.Join(parts, "; "), len(c.Members))
}

func minus(a, b []string) []string {
	in := make(map[string]bool, len(b)) // clusters of thousands: not a scan per member
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// describe names a source for an operator.
func describe(src *model.ClusterSource) string {
	switch {
	case src.Explicit():
		return "member list"
	case src.Kind == model.SourceHeatStack:
		return "Heat stack " + src.Ref
	case src.Kind == model.SourceServerGroup:
		return "server group " + src.Ref
	case src.Kind == model.SourceMetadata:
		return "servers with metadata " + model.MetaCluster + "=" + src.Ref
	}
	return src.Kind + " " + src.Ref
}

// refreshLoop resolves the sources every RefreshEvery until ctx ends (Run starts it).
func (e *Engine) refreshLoop(ctx context.Context, onErr func(error)) {
	every := e.cfg.RefreshEvery
	if every <= 0 {
		every = DefaultRefreshEvery
	}
	for {
		if err := e.RefreshClusters(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
		wait := every
		e.mu.RLock()
		if e.det.View().LastSeen.IsZero() {
			wait = min(every, time.Second) // metadata clusters wait for the first listing
		}
		e.mu.RUnlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// clusterStatus adds what the source says to a cluster's health.
func clusterStatus(st model.ClusterStatus) model.ClusterStatus {
	src := st.Source
	if src.Explicit() {
		return st
	}
	if src.Error != "" {
		why := fmt.Sprintf("members as of the last resolution of its %s", describe(src))
		if !src.Resolved.IsZero() {
			why += " at " + src.Resolved.UTC().Format(time.RFC3339)
		}
		why += " (" + src.Error + ")"
		// Health stays what the members' state says: they are protected as last read.
		st.Reason = strings.TrimPrefix(st.Reason+"; "+why, "; ")
	}
	if src.Kind == model.SourceHeatStack && src.Recovery == "" {
		s := *src
		s.Recovery = model.HeatRecovery
		st.Source = &s
	}
	return st
}

// Protected reports whether the server is protected now: a member of a cluster, as
// the detector was told (what decides whether its failure is answered).
func (e *Engine) Protected(id string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.det.Protected(id)
}
