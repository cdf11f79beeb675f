package sim

import "github.com/vigil-ha/vigil/model"

// MovingTo is the host a live migration of the server in progress ends on, "" if
// none: during its switch-over the server's one copy runs there while Nova still
// places it on the source (the checkers must not take it for a second copy).
func (c *Cloud) MovingTo(id string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked()
	s, ok := c.servers[id]
	if !ok || s.deleted || s.status != model.StatusMigrating {
		return ""
	}
	for i := len(s.work) - 1; i >= 0; i-- {
		if s.work[i].dest != "" {
			return s.work[i].dest
		}
	}
	return ""
}
