package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	case c.Name == "":
		return &InvalidError{"name", "must not be empty"}
	case len(c.Name) > 128:
		return &InvalidError{"name", "must be at most 128 characters"}
	case len(c.Members) == 0:
		return &InvalidError{"members", "must list at least one server ID"}
	case c.Desired < 0:
		return &InvalidError{"desired", fmt.Sprintf("must not be negative, got %d", c.Desired)}
	case c.Desired > len(c.Members):
		return &InvalidError{"desired", fmt.Sprintf("is %d but the cluster has only %d members", c.Desired, len(c.Members))}
	}
	if _, ok := e.cfg.Policies[c.Policy]; !ok {
		return &InvalidError{"policy", fmt.Sprintf("unknown policy %q (known: %v)", c.Policy, policyNames(e.cfg.Policies))}
	}
	servers := e.det.View().Servers
	seen := map[string]bool{}
	for i, id := range c.Members {
		if seen[id] {
			return &InvalidError{fmt.Sprintf("members[%d]", i), fmt.Sprintf("server %q is listed twice", id)}
		}
		seen[id] = true
		if _, ok := servers[id]; !ok {
			return &InvalidError{fmt.Sprintf("members[%d]", i), fmt.Sprintf("unknown server %q: the cloud does not list it", id)}
		}
		for _, other := range e.clusters {
			if slices.Contains(other.Members, id) {
				return &InvalidError{fmt.Sprintf("members[%d]", i), fmt.Sprintf("server %q already belongs to cluster %q", id, other.Name)}
			}
		}
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
// are protected.
func (e *Engine) CreateCluster(ctx context.Context, c model.Cluster) error {
	if c.Policy == "" {
		c.Policy = "default"
	}
	if e.hasCluster(c.Name) {
		return fmt.Errorf("cluster %q: %w", c.Name, store.ErrExists)
	}
	if err := e.ValidateCluster(c); err != nil {
		return err
	}
	if err := e.cfg.Store.CreateCluster(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	e.clusters = append(e.clusters, c)
	slices.SortFunc(e.clusters, func(a, b model.Cluster) int { return strings.Compare(a.Name, b.Name) })
	e.protect()
	e.mu.Unlock()
	return e.emit(ctx, model.Event{At: e.cfg.Now(), Kind: "cluster", Subject: "cluster/" + c.Name,
		Message: fmt.Sprintf("cluster %s created: %d members, desired %d, policy %s", c.Name, len(c.Members), c.Desired, c.Policy)})
}

func (e *Engine) hasCluster(name string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.ContainsFunc(e.clusters, func(c model.Cluster) bool { return c.Name == name })
}

// DeleteCluster removes a cluster; its servers are no longer protected.
func (e *Engine) DeleteCluster(ctx context.Context, name string) error {
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
