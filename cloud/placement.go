package cloud

import (
	"context"

	"github.com/vigil-ha/vigil/model"
)

// GroupLister is what a Lister may also offer: the cloud's server groups
// (Nova's os-server-groups, every project), in one call. A driver may answer from
// a cache it refreshes on an interval: groups change rarely.
//
// Resources ride on the other listings: a server's flavor on ListServers
// (model.Server.Flavor), a host's free room as Placement counts it on ListHosts
// (model.Host.Free, FreeKnown, FreeAt).
type GroupLister interface {
	ListServerGroups(ctx context.Context) ([]model.ServerGroup, error)
}
