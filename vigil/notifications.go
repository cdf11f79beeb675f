package vigil

import (
	"context"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/source/notifications"
)

// Notifications consumes Nova's versioned notifications until ctx ends and feeds the
// engine: a server change as a partial observation, anything else (a compute service
// update) as a request to poll now. It returns the consumer's final error.
func Notifications(ctx context.Context, cfg notifications.Config, pushed chan<- model.Observation) error {
	c := notifications.New(cfg)
	return c.Run(ctx, func(ev notifications.Event) {
		obs := ev.Obs
		if ev.Host != nil || (len(obs.Servers) == 0 && len(obs.Deleted) == 0) {
			obs = model.Observation{At: obs.At, Source: notifications.Source, Poll: true}
		}
		select {
		case pushed <- obs:
		case <-ctx.Done():
		}
	})
}
