package detect

import (
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// hostVerdict is a host's verdict: maintenance first (rule host-maintenance), else
// its health (hostHealth). A host in maintenance is never failed: Vigil neither
// fences nor evacuates it. When its signals say it failed beneath the maintenance,
// the verdict says so (rule host-maintenance-down, since when it failed): the
// planner answers its protected servers with an escalation, not a recovery.
func (d *Detector) hostVerdict(now time.Time, h model.Host) model.Verdict {
	under := d.hostHealth(now, h)
	why, in := d.maintenanceOf(h)
	if !in {
		delete(d.beneath, h.Name)
		return under
	}
	if old, ok := d.beneath[h.Name]; ok && old.Rule == under.Rule && old.Failed == under.Failed {
		under.Since = old.Since
	} else if under.Since.IsZero() {
		under.Since = now
	}
	d.beneath[h.Name] = under
	v := model.Verdict{Subject: under.Subject, Host: string(model.HostMaintenance), Rule: RuleHostMaintenance, Evidence: []string{why}}
	if under.Failed {
		v.Rule, v.Since = model.RuleHostMaintenanceDown, under.Since
		v.Evidence = append(v.Evidence, fmt.Sprintf("beneath the maintenance the host looks %s since %s (%s: %s); Vigil neither fences nor evacuates a host in maintenance",
			under.Host, under.Since.Format("15:04:05.000"), under.Rule, strings.Join(under.Evidence, "; ")))
	}
	return v
}

// maintenanceOf says whether a host is in maintenance, and why: an operator put it
// there (through Vigil, or the cloud's own flag), or Nova shows its compute
// service disabled and DisabledIsMaintenance honours that.
func (d *Detector) maintenanceOf(h model.Host) (string, bool) {
	if why, ok := d.hostMaint[h.Name]; ok {
		return why, true
	}
	if h.Maintenance {
		return "the cloud reports the host in maintenance", true
	}
	if h.Disabled && d.cfg.DisabledIsMaintenance {
		return "Nova's compute service on the host is disabled (no new servers there): honoured as maintenance (cloud.disabled_is_maintenance)", true
	}
	return "", false
}

// lastHealth is the host's last verdict beneath any maintenance: the start of a
// failure is kept across a maintenance (ended on a dead host, its grace is over).
func (d *Detector) lastHealth(subj model.Subject) (model.Verdict, bool) {
	old, ok := d.view.Verdicts[subj]
	if ok && old.Host == string(model.HostMaintenance) {
		b, ok := d.beneath[subj.ID]
		return b, ok
	}
	return old, ok
}

// HealthBeneath is the host's verdict beneath any maintenance: what its signals
// say (a host return checks that its compute reports, maintenance or not).
func (d *Detector) HealthBeneath(host string) (model.Verdict, bool) {
	return d.lastHealth(model.Subject{Kind: model.KindHost, ID: host})
}
