package engine

// serverHost names the host a server runs on, as last observed: a step of a
// server that names no host counts against that host's limit (recover.Run).
func (e *Engine) serverHost(id string) string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.det.View().Servers[id].Host
}

// hostSegment names a host's segment, as last observed (the per-segment limit).
func (e *Engine) hostSegment(name string) string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.det.View().Hosts[name].Segment
}
