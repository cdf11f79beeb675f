package plan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/vigil-ha/vigil/model"
)

// CloudWide is the key of Brakes' answer for the brake over the whole cloud.
const CloudWide = "*"

// Brakes returns, per segment whose brake is engaged, the reason; under CloudWide
// the reason the whole cloud is braked. When an unusual share of one failure
// domain's hosts look down at once, a network or controller fault is likelier than
// that many dead hosts: nothing is fenced or evacuated there. The same holds over
// the whole cloud (a RabbitMQ or conductor outage stops every heartbeat at once,
// across segments too small to brake on their own). Only hosts that can host count
// (not disabled, not in maintenance): a fleet half in maintenance is not a storm.
func Brakes(hosts map[string]model.Host, verdicts map[model.Subject]model.Verdict, lim model.Limits) map[string]string {
	total, down := map[string]int{}, map[string]int{}
	for name, h := range hosts {
		v, ok := verdicts[model.Subject{Kind: model.KindHost, ID: name}]
		if h.Disabled || h.Maintenance || ok && v.Host == string(model.HostMaintenance) {
			continue
		}
		total[h.Segment]++
		total[CloudWide]++
		// Vigil cut off from a host (controller-partitioned) counts: that is exactly
		// what the brake is for.
		if ok && (v.Failed || v.Host == string(model.HostSuspect) || v.Host == string(model.HostPartitioned)) {
			down[h.Segment]++
			down[CloudWide]++
		}
	}
	out := map[string]string{}
	for _, seg := range slices.Sorted(maps.Keys(down)) {
		n, t := down[seg], total[seg]
		if lim.BrakeMinHosts <= 0 || n < lim.BrakeMinHosts || float64(n) < lim.BrakeFraction*float64(t) {
			continue
		}
		where := fmt.Sprintf("in segment %q", seg)
		if seg == CloudWide {
			where = "across the whole cloud"
		}
		out[seg] = fmt.Sprintf("brake engaged: %d of %d hosts %s look down at once (threshold %.0f%%, at least %d; hosts disabled or in maintenance not counted); more likely a network or controller fault than dead hosts: nothing is fenced or evacuated there until an operator confirms or the hosts return",
			n, t, where, lim.BrakeFraction*100, lim.BrakeMinHosts)
	}
	return out
}

// brakeOn returns the reason nothing may be fenced or evacuated in segment, if any:
// its own brake, or the cloud's.
func brakeOn(braked map[string]string, segment string) (string, bool) {
	if r, ok := braked[CloudWide]; ok {
		return r, true
	}
	r, ok := braked[segment]
	return r, ok
}
