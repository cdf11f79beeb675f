package engine

import "github.com/vigil-ha/vigil/plan"

// Brakes returns the segments whose brake is engaged now, each with its reason
// (under plan.CloudWide: the whole cloud's). It is the planner's own rule
// (plan.Brakes) applied to what the engine sees, so the dashboard shows the brake
// the next plan obeys.
func (e *Engine) Brakes() map[string]string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	v := e.det.View()
	return plan.Brakes(v.Hosts, v.Verdicts, e.cfg.Limits)
}
