package cloud

import (
	"context"
	"errors"
)

// Groups resolves the clouds' own groupings of servers, which clusters may follow
// (model.ClusterSource): Heat stacks and Nova server groups. A compute driver may
// offer it; server metadata needs no call of its own (the listing carries it).
type Groups interface {
	// Stack returns a stack, by name or ID, with its servers.
	Stack(ctx context.Context, ref string) (Stack, error)
	// TaggedStacks returns every stack carrying tag, with its servers.
	TaggedStacks(ctx context.Context, tag string) ([]Stack, error)
	// ServerGroup returns a Nova server group, by ID or name, with its members.
	ServerGroup(ctx context.Context, ref string) (NovaGroup, error)
}

// Stack is a Heat stack as a cluster sees it.
type Stack struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
	// Servers are the physical_resource_id of its OS::Nova::Server resources (those
	// of nested stacks too), sorted: the Nova server IDs, which evacuation keeps.
	Servers []string `json:"servers"`
}

// NovaGroup is a Nova server group.
type NovaGroup struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Policy  string   `json:"policy,omitempty"`
	Members []string `json:"members"`
}

// ErrNoService: the cloud offers no such service (no orchestration endpoint in the
// catalog): clusters cannot follow it, and discovery of tagged stacks is off.
var ErrNoService = errors.New("the cloud offers no such service")
