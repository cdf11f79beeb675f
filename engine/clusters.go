package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// InvalidError says which field of a request is wrong and why.
type InvalidError struct {
	Field string
	Msg   string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// IsInvalid reports whether err is an *InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// ValidateCluster checks a cluster against the policies and the servers Vigil sees.
func (e *Engine) ValidateCluster(c model.Cluster) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	switch {
	case model.CheckName(c.Name) != nil:
		return &InvalidError{"name", model.CheckName(c.Name).Error()}
	case c.Desired < 0:
		return &InvalidError{"desired", fmt.Sprintf("must not be negative, got %d", c.Desired)}
	}
	if _, ok := e.cfg.Policies[c.Policy]; !ok {
		return &InvalidError{"policy", fmt.Sprintf("unknown policy %q (known: %v)", c.Policy, policyNames(e.cfg.Policies))}
	}
	if !c.Source.Explicit() {
		return validateSource(c)
	}
	switch {
	case len(c.Members) == 0:
		return &InvalidError{"members", "must list at least one server ID"}
	case c.Desired > len(c.Members):
		return &InvalidError{"desired", fmt.Sprintf("is %d but the cluster has only %d members", c.Desired, len(c.Members))}
	}
	seen := map[string]bool{}
	owners := e.owners(c.Name)
	for i, id := range c.Members {
		field := fmt.Sprintf("members[%d]", i)
		if seen[id] {
			return &InvalidError{field, fmt.Sprintf("server %q is listed twice", id)}
		}
		seen[id] = true
		if err := e.checkMember(field, id, c.Name, owners); err != nil {
			return err
		}
	}
	return nil
}

// checkMember checks that a server may join cluster name: the cloud lists it and
// no other cluster has it. Under e.mu.
func (e *Engine) checkMember(field, id, name string, owners map[string]string) error {
	if _, ok := e.det.View().Servers[id]; !ok {
		return &InvalidError{field, fmt.Sprintf("unknown server %q: the cloud does not list it", id)}
	}
	if other, ok := owners[id]; ok {
		return &InvalidError{field, fmt.Sprintf("server %q already belongs to cluster %q", id, other)}
	}
	return nil
}

// owners maps each server of a cluster other than except to that cluster (the
// first by name: the clusters are kept sorted), built once per validation: looking
// each member up in every cluster made protecting 100,000 servers quadratic.
// Under e.mu.
func (e *Engine) owners(except string) map[string]string {
	out := map[string]string{}
	for _, c := range e.clusters {
		if c.Name == except {
			continue
		}
		for _, id := range c.Members {
			if _, ok := out[id]; !ok {
				out[id] = c.Name
			}
		}
	}
	return out
}

// validateSource checks a cluster whose members follow a source.
func validateSource(c model.Cluster) error {
	src := c.Source
	if !slices.Contains(model.SourceKinds, src.Kind) {
		return &InvalidError{"source.kind", fmt.Sprintf("unknown source %q (known: %v)", src.Kind, model.SourceKinds)}
	}
	if src.Ref == "" {
		return &InvalidError{"source.ref", "must name the " + src.Kind + " the members come from"}
	}
	if len(c.Members) > 0 {
		return &InvalidError{"members", "must be empty: the members of a cluster defined by a " + src.Kind + " are read from it"}
	}
	return nil
}

func policyNames(p map[string]model.Policy) []string {
	var names []string
	for n := range p {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CreateCluster validates and stores a cluster; from the next reconcile its members
// are protected. A cluster defined by a source has its members read from it now (a
// source that names nothing is refused).
func (e *Engine) CreateCluster(ctx context.Context, c model.Cluster) error {
	e.edit.Lock()
	defer e.edit.Unlock()
	if c.Policy == "" {
		c.Policy = "default"
	}
	if e.hasCluster(c.Name) {
		return fmt.Errorf("cluster %q: %w", c.Name, store.ErrExists)
	}
	if err := e.ValidateCluster(c); err != nil {
		return err
	}
	if !c.Source.Explicit() {
		if err := e.resolveNew(ctx, &c); err != nil {
			return err
		}
	}
	if err := e.cfg.Store.CreateCluster(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	e.clusters = append(e.clusters, c)
	slices.SortFunc(e.clusters, func(a, b model.Cluster) int { return strings.Compare(a.Name, b.Name) })
	e.protect()
	e.mu.Unlock()
	msg := fmt.Sprintf("cluster %s created: %d members, desired %d, policy %s", c.Name, len(c.Members), c.Desired, c.Policy)
	if !c.Source.Explicit() {
		msg += fmt.Sprintf(" (members follow its %s: %v)", describe(c.Source), c.Members)
	}
	return e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "cluster", Subject: "cluster/" + c.Name, Message: msg})
}

// resolveNew reads a new cluster's members from its source.
func (e *Engine) resolveNew(ctx context.Context, c *model.Cluster) error {
	src := *c.Source
	src.Discovered, src.Error, src.Note = false, "", ""
	if src.Kind == model.SourceHeatStack {
		src.Recovery = model.HeatRecovery
	}
	e.mu.RLock()
	listed := !e.det.View().LastSeen.IsZero()
	byMeta := metadataMembers(e.det.View().Servers)
	e.mu.RUnlock()
	r := e.resolve(ctx, e.groupsOf(), src, listed, byMeta)
	switch {
	case r.err != "" && (src.Kind == model.SourceMetadata && listed || errors.Is(r.cause, cloud.ErrNotFound)):
		return &InvalidError{"source.ref", fmt.Sprintf("%s: %s", describe(&src), r.err)}
	case r.err != "":
		return fmt.Errorf("cluster %s: read its %s: %s", c.Name, describe(&src), r.err)
	case src.Kind == model.SourceMetadata && len(r.members) == 0:
		return &InvalidError{"source.ref", fmt.Sprintf("no server has metadata %s=%s", model.MetaCluster, src.Ref)}
	}
	e.mu.RLock()
	taken := map[string]string{}
	for _, o := range e.clusters {
		for _, id := range o.Members {
			taken[id] = o.Name
		}
	}
	e.mu.RUnlock()
	c.Members, src.Note = claim(r.members, c.Name, taken)
	src.Resolved = e.cfg.Now()
	if !src.FixedDesired {
		c.Desired = len(c.Members)
	}
	c.Source = &src
	return nil
}

// EditCluster adds servers to and removes servers from a cluster that lists its
// members. A cluster defined by a source refuses (ErrFollowsSource): its members
// are the source's. Desired follows the member count when it equalled it.
func (e *Engine) EditCluster(ctx context.Context, name string, add, remove []string) (model.Cluster, error) {
	e.edit.Lock()
	defer e.edit.Unlock()
	e.mu.RLock()
	i := slices.IndexFunc(e.clusters, func(c model.Cluster) bool { return c.Name == name })
	if i < 0 {
		e.mu.RUnlock()
		return model.Cluster{}, fmt.Errorf("cluster %q: %w", name, store.ErrNotFound)
	}
	c := e.clusters[i]
	c.Members = slices.Clone(c.Members)
	if !c.Source.Explicit() {
		e.mu.RUnlock()
		return c, fmt.Errorf("cluster %s: %w: they are read from its %s at every refresh; change the %s instead",
			name, ErrFollowsSource, describe(c.Source), c.Source.Kind)
	}
	next, err := e.edited(c, add, remove)
	e.mu.RUnlock()
	if err != nil {
		return c, err
	}
	if err := e.cfg.Store.UpdateCluster(ctx, next); err != nil {
		return c, err
	}
	e.mu.Lock()
	if j := slices.IndexFunc(e.clusters, func(o model.Cluster) bool { return o.Name == name }); j >= 0 {
		e.clusters[j] = next
	}
	e.protect()
	e.mu.Unlock()
	return next, e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "cluster", Subject: "cluster/" + name,
		Message: fmt.Sprintf("cluster %s edited: added %v, removed %v (no longer protected by it); %d members, desired %d",
			name, add, remove, len(next.Members), next.Desired)})
}

// edited is c with the edit applied, validated like a new cluster. Under e.mu.
func (e *Engine) edited(c model.Cluster, add, remove []string) (model.Cluster, error) {
	if len(add)+len(remove) == 0 {
		return c, &InvalidError{"add", "give at least one server to add or to remove"}
	}
	members := slices.Clone(c.Members)
	for i, id := range remove {
		j := slices.Index(members, id)
		if j < 0 {
			return c, &InvalidError{fmt.Sprintf("remove[%d]", i), fmt.Sprintf("server %q is not a member of cluster %s", id, c.Name)}
		}
		members = slices.Delete(members, j, j+1)
	}
	owners := e.owners(c.Name)
	for i, id := range add {
		field := fmt.Sprintf("add[%d]", i)
		if slices.Contains(members, id) {
			return c, &InvalidError{field, fmt.Sprintf("server %q is already a member of cluster %s", id, c.Name)}
		}
		if err := e.checkMember(field, id, c.Name, owners); err != nil {
			return c, err
		}
		members = append(members, id)
	}
	if len(members) == 0 {
		return c, &InvalidError{"remove", "would leave cluster " + c.Name + " with no members: delete the cluster instead"}
	}
	next := c
	next.Members = members
	if c.Desired == len(c.Members) {
		next.Desired = len(members)
	}
	if next.Desired > len(members) {
		return c, &InvalidError{"remove", fmt.Sprintf("would leave %d members but the cluster's desired is %d: lower desired first", len(members), c.Desired)}
	}
	return next, nil
}

func (e *Engine) hasCluster(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.ContainsFunc(e.clusters, func(c model.Cluster) bool { return c.Name == name })
}

// DeleteCluster removes a cluster; its servers are no longer protected.
func (e *Engine) DeleteCluster(ctx context.Context, name string) error {
	e.edit.Lock()
	defer e.edit.Unlock()
	e.mu.RLock()
	i := slices.IndexFunc(e.clusters, func(c model.Cluster) bool { return c.Name == name })
	var src *model.ClusterSource
	if i >= 0 {
		src = e.clusters[i].Source
	}
	e.mu.RUnlock()
	if !src.Explicit() && src.Discovered {
		how := "remove the tag " + model.TagProtect + " from the stack"
		if src.Kind == model.SourceMetadata {
			how = "remove the metadata " + model.MetaCluster + " from its servers"
		}
		return fmt.Errorf("cluster %s: %w: Vigil found it in the cloud (its %s); to stop protecting it, %s",
			name, ErrFollowsSource, describe(src), how)
	}
	if err := e.cfg.Store.DeleteCluster(ctx, name); err != nil {
		return err
	}
	e.mu.Lock()
	e.clusters = slices.DeleteFunc(e.clusters, func(c model.Cluster) bool { return c.Name == name })
	e.protect()
	e.mu.Unlock()
	return e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "cluster", Subject: "cluster/" + name, Message: "cluster " + name + " deleted"})
}

// Policies returns the known policies.
func (e *Engine) Policies() map[string]model.Policy { return e.cfg.Policies }
