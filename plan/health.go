package plan

import (
	"fmt"

	"github.com/vigil-ha/vigil/model"
)

// Health reports a cluster against its desired state: Green when at least Desired
// members are healthy and nothing is being recovered; Yellow while a recovery is under
// way or fewer are healthy; Red when a member's incident was escalated and the member
// is still not healthy, or when no member is healthy.
func Health(c model.Cluster, servers map[string]model.Server, verdicts map[model.Subject]model.Verdict,
	open []model.Incident, lastClosed map[model.Subject]model.Incident) model.ClusterStatus {
	st := model.ClusterStatus{Cluster: c, Health: model.Green}
	recovering, escalated, waiting := 0, "", ""
	isMember := map[string]bool{}
	for _, id := range c.Members {
		isMember[id] = true
		subj := model.Subject{Kind: model.KindServer, ID: id}
		v, ok := verdicts[subj]
		s := servers[id]
		if ok && !v.Failed && v.Server == string(model.ServerHealthy) && s.Status == model.StatusActive {
			st.Healthy++
			continue
		}
		if last, ok := lastClosed[subj]; ok && last.State == model.IncidentEscalated && escalated == "" {
			escalated = fmt.Sprintf("server %s: %s", id, last.Reason)
		}
	}
	for _, inc := range open {
		if inc.Subject.Kind == model.KindServer && isMember[inc.Subject.ID] || inc.Subject.Kind == model.KindHost && touches(inc, isMember, servers) {
			recovering++
			if inc.State == model.IncidentWaiting && waiting == "" {
				waiting = inc.Reason
			}
		}
	}
	switch {
	case escalated != "":
		st.Health, st.Reason = model.Red, "escalated: "+escalated
	case c.Desired > 0 && st.Healthy == 0:
		st.Health, st.Reason = model.Red, "no member is healthy"
	case recovering > 0:
		st.Health, st.Reason = model.Yellow, fmt.Sprintf("%d recoveries under way; %d of %d desired healthy", recovering, st.Healthy, c.Desired)
	case st.Healthy < c.Desired:
		st.Health, st.Reason = model.Yellow, fmt.Sprintf("%d of %d desired members healthy", st.Healthy, c.Desired)
	}
	if waiting != "" && st.Health != model.Green {
		// Why a recovery does not go on (capacity short, a brake, a group rule):
		// the operator reads it here without opening the incident, also when
		// another member's escalation already turned the cluster Red.
		st.Reason += "; " + waiting
	}
	return st
}

func touches(inc model.Incident, member map[string]bool, servers map[string]model.Server) bool {
	for _, s := range inc.Steps {
		if member[s.Server] {
			return true
		}
	}
	for id := range member {
		if servers[id].Host == inc.Subject.ID {
			return true
		}
	}
	return false
}
