package sim

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// The "groups" world setting: two of the clusters are not created by an operator
// but defined in the cloud, a Heat stack tagged vigil-protect (cluster c3) and
// servers with vigil:cluster metadata (cluster c1), and during the run an operator
// adds servers to them and removes servers from them (a stack update, a metadata
// change). Vigil resolves the sources every groupsRefresh. The checks:
//   - a server that joined a source is protected after the first refresh that could
//     see it (the stack at once; metadata once Vigil's listing shows it);
//   - a server that left is let go at such a refresh, and Vigil takes no action on
//     it afterwards (invariant 9: it is no longer Vigil's to recover).

const groupsRefresh = 30 * time.Second

// groupsSeed is the stream the setting draws from: the other settings' draws and
// the fault schedule stay what they were without it.
const groupsSeed = 0x6709

type groupOp struct {
	at   time.Time
	join bool
	meta bool // the metadata cluster, else the stack
}

type groupsWorld struct {
	rng         *rand.Rand
	stack, meta string // cluster names (the stack's name, the metadata value)
	policy      map[string]model.Policy
	members     map[string][]string // cluster -> its members in truth
	pool        []string            // servers no cluster has
	ops         []groupOp
	next        time.Time         // the next refresh
	joining     map[string]string // server -> the cluster it joined, not yet seen protected
	leaving     map[string]string // server -> the cluster it left, not yet let go
	gone        map[string][]int  // servers Vigil let go -> the actions accepted for them then
	stackID     string
}

// groupClusters turns clusters c3 and c1 into a stack and metadata when the seed
// draws the setting; it returns the clusters an operator still creates.
func (w *world) groupClusters(clusters []model.Cluster, pols map[string]model.Policy, unprotected []string) []model.Cluster {
	rng := rand.New(rand.NewPCG(w.seed, groupsSeed))
	if w.cfg.Settings != nil && !slices.Contains(w.cfg.Settings, "groups") || rng.Float64() >= 0.5 {
		return clusters
	}
	g := &groupsWorld{rng: rng, policy: map[string]model.Policy{}, members: map[string][]string{},
		pool: slices.Clone(unprotected), joining: map[string]string{}, leaving: map[string]string{}, gone: map[string][]int{}}
	var keep []model.Cluster
	for _, c := range clusters {
		switch c.Name {
		case "c3":
			g.stack = c.Name
			g.stackID = w.cloud.CreateStack(c.Name, []string{model.TagProtect, model.TagPolicy + c.Policy}, c.Members...)
		case "c1":
			g.meta = c.Name
			for _, id := range c.Members {
				_ = w.cloud.SetMetadata(id, model.MetaCluster, c.Name)
				_ = w.cloud.SetMetadata(id, model.MetaPolicy, c.Policy)
			}
		default:
			keep = append(keep, c)
			continue
		}
		g.policy[c.Name] = pols[c.Policy]
		g.members[c.Name] = slices.Clone(c.Members)
	}
	if g.stack == "" && g.meta == "" {
		return clusters
	}
	window := w.cfg.Until - w.cfg.Settle
	for range 2 + rng.IntN(5) {
		g.ops = append(g.ops, groupOp{at: epoch0.Add(time.Minute + time.Duration(rng.Int64N(int64(window-time.Minute)))),
			join: rng.IntN(2) == 0, meta: rng.IntN(2) == 0})
	}
	slices.SortFunc(g.ops, func(a, b groupOp) int { return a.at.Compare(b.at) })
	w.grp = g
	w.settings = append(w.settings, fmt.Sprintf("groups(stack %s, metadata %s, %d operator edits)", g.stack, g.meta, len(g.ops)))
	return keep
}

// groupsStart resolves the sources once, before the run: the clusters exist from
// the start, as the operator-made ones do.
func (w *world) groupsStart(ctx context.Context) error {
	if w.grp == nil {
		return nil
	}
	if err := w.eng.RefreshClusters(ctx); err != nil {
		return err
	}
	w.grp.next = w.now.Add(groupsRefresh)
	for name, ids := range w.grp.members {
		c, ok := w.clusterNamed(name)
		if !ok || !slices.Equal(c.Members, sortedIDs(ids)) {
			return fmt.Errorf("cluster %s from the cloud: %+v (found %v), want members %v", name, c, ok, sortedIDs(ids))
		}
	}
	return nil
}

// groupsStep carries out the operator's edits that are due and, every
// groupsRefresh while Vigil runs, has it resolve the sources and checks the result.
func (w *world) groupsStep(ctx context.Context) {
	g := w.grp
	if g == nil {
		return
	}
	for len(g.ops) > 0 && !g.ops[0].at.After(w.now) {
		w.groupEdit(g.ops[0])
		g.ops = g.ops[1:]
	}
	w.checkGone()
	if w.eng == nil || w.now.Before(g.next) {
		return
	}
	g.next = w.now.Add(groupsRefresh)
	// What Vigil can know at this refresh: a stack's members at once; metadata once
	// its own listing shows it.
	view := map[string]model.Server{}
	for _, s := range w.eng.Servers() {
		view[s.ID] = s.Server
	}
	knows := func(id, cluster string, in bool) bool {
		if cluster == g.stack {
			return true
		}
		v, _ := view[id].Metadata.Get(model.MetaCluster)
		return (v == cluster) == in
	}
	var joins, leaves []string
	for _, id := range slices.Sorted(maps.Keys(g.joining)) {
		if knows(id, g.joining[id], true) {
			joins = append(joins, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(g.leaving)) {
		if knows(id, g.leaving[id], false) {
			leaves = append(leaves, id)
		}
	}
	w.refreshClusters(ctx)
	for _, id := range joins {
		name := g.joining[id]
		c, ok := w.clusterNamed(name)
		switch {
		case ok && c.Source != nil && c.Source.Error != "":
			// The source could not be read: the next refresh.
		case ok && slices.Contains(c.Members, id) && w.eng.Protected(id):
			delete(g.joining, id)
			w.prot[id], w.policyOf[id] = true, g.policy[name]
			w.logf("server %s is protected by cluster %s (it joined its source)", id, name)
		default:
			delete(g.joining, id)
			w.violate(6, "server %s joined the source of cluster %s but a refresh that could see it left it unprotected (cluster %+v, found %v)", id, name, c, ok)
		}
	}
	for _, id := range leaves {
		name := g.leaving[id]
		c, ok := w.clusterNamed(name)
		switch {
		case ok && c.Source != nil && c.Source.Error != "":
		case ok && slices.Contains(c.Members, id) || w.eng.Protected(id):
			delete(g.leaving, id)
			w.violate(9, "server %s left the source of cluster %s but a refresh that could see it still protects it", id, name)
		default:
			delete(g.leaving, id)
			w.prot[id] = false
			g.gone[id] = w.acceptedFor(id)
			g.pool = append(g.pool, id)
			w.logf("server %s is no longer protected (it left cluster %s's source)", id, name)
		}
	}
}

// groupEdit is one operator edit of a source.
func (w *world) groupEdit(op groupOp) {
	g := w.grp
	name := g.stack
	if op.meta && g.meta != "" || g.stack == "" {
		name = g.meta
	}
	if op.join {
		// A server that joins is a running one on a host in service, as a stack
		// update's new server is (Heat cannot adopt an existing server). One that is
		// already down on a host whose incident closed would not be answered: see
		// the report of issue 15's groups part (plan opens no second host incident).
		var free []string
		for _, id := range g.pool {
			s, ok := w.cloud.Server(id)
			if !ok || s.Status != model.StatusActive || g.joining[id] != "" || g.gone[id] != nil {
				continue
			}
			if t := w.cloud.Truth(s.Host); t.Reporting && !t.ForcedDown && !t.Disabled {
				free = append(free, id)
			}
		}
		if len(free) == 0 {
			return
		}
		id := free[g.rng.IntN(len(free))]
		g.pool = slices.DeleteFunc(g.pool, func(x string) bool { return x == id })
		g.members[name] = append(g.members[name], id)
		g.joining[id] = name
		w.setSource(name, id, true)
		w.logf("operator: server %s joins the source of cluster %s", id, name)
		return
	}
	var cand []string
	for _, id := range g.members[name] {
		if g.joining[id] == "" {
			cand = append(cand, id)
		}
	}
	if len(cand) < 2 { // a source keeps a member
		return
	}
	id := cand[g.rng.IntN(len(cand))]
	g.members[name] = slices.DeleteFunc(g.members[name], func(x string) bool { return x == id })
	g.leaving[id] = name
	w.setSource(name, id, false)
	w.logf("operator: server %s leaves the source of cluster %s", id, name)
}

func (w *world) setSource(name, id string, in bool) {
	g := w.grp
	if name == g.stack {
		_ = w.cloud.SetStackServers(g.stackID, g.members[name]...)
		return
	}
	v, p := "", ""
	if in {
		v, p = name, g.policy[name].Name
	}
	_ = w.cloud.SetMetadata(id, model.MetaCluster, v)
	_ = w.cloud.SetMetadata(id, model.MetaPolicy, p)
}

// checkGone: Vigil takes no action on a server it let go.
func (w *world) checkGone() {
	for _, id := range slices.Sorted(maps.Keys(w.grp.gone)) {
		if now := w.acceptedFor(id); !slices.Equal(now, w.grp.gone[id]) {
			w.violate(9, "server %s left its cluster's source and Vigil let it go, but then acted on it (actions accepted %v, were %v)", id, now, w.grp.gone[id])
			w.grp.gone[id] = now
		}
	}
}

var actedOn = []string{cloud.ActionReboot, cloud.ActionRebuild, cloud.ActionEvacuate}

func (w *world) acceptedFor(id string) []int {
	out := make([]int, len(actedOn))
	for i, a := range actedOn {
		out[i] = w.drv.accepted[actionKey(id, a)]
	}
	return out
}

func (w *world) clusterNamed(name string) (model.ClusterStatus, bool) {
	for _, c := range w.eng.Clusters() {
		if c.Name == name {
			return c, true
		}
	}
	return model.ClusterStatus{}, false
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// The simulation's driver passes the cloud's stacks and server groups on.
var _ cloud.Groups = (*driver)(nil)

func (d *driver) Stack(ctx context.Context, ref string) (cloud.Stack, error) {
	return d.cloud.Stack(ctx, ref)
}
func (d *driver) TaggedStacks(ctx context.Context, tag string) ([]cloud.Stack, error) {
	return d.cloud.TaggedStacks(ctx, tag)
}
func (d *driver) ServerGroup(ctx context.Context, ref string) (cloud.NovaGroup, error) {
	return d.cloud.ServerGroup(ctx, ref)
}
