package plan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/vigil-ha/vigil/model"
)

// Brakes returns, per segment whose brake is engaged, the reason. When an unusual
// share of one failure domain's hosts look down at once, a network or controller
// fault is likelier than that many dead hosts: nothing is fenced or evacuated there.
func Brakes(hosts map[string]model.Host, verdicts map[model.Subject]model.Verdict, lim model.Limits) map[string]string {
	total, down := map[string]int{}, map[string]int{}
	for name, h := range hosts {
		total[h.Segment]++
		v, ok := verdicts[model.Subject{Kind: model.KindHost, ID: name}]
		if ok && (v.Failed || v.Host == string(model.HostSuspect)) {
			down[h.Segment]++
		}
	}
	out := map[string]string{}
	for _, seg := range slices.Sorted(maps.Keys(down)) {
		n, t := down[seg], total[seg]
		if lim.BrakeMinHosts > 0 && n >= lim.BrakeMinHosts && float64(n) >= lim.BrakeFraction*float64(t) {
			out[seg] = fmt.Sprintf("brake engaged: %d of %d hosts in segment %q look down at once (threshold %.0f%%, at least %d); more likely a network or controller fault than dead hosts: nothing is fenced or evacuated there until an operator confirms or the hosts return",
				n, t, seg, lim.BrakeFraction*100, lim.BrakeMinHosts)
		}
	}
	return out
}
