package sim

import (
	"fmt"
	"strings"

	"github.com/vigil-ha/vigil/model"
)

// Sabotages names the deliberate bugs `vigil sim --sabotage` can switch on, each
// with the invariant it must trip.
var Sabotages = map[string]int{
	"skip-fence":           2,
	"repeat-after-restart": 3,
	"ignore-limits":        4,
	"ignore-brake":         4,
	"fence-wrong-host":     5,
	"give-up-silently":     6,
	"drop-evidence":        7,
}

// ParseSabotage turns a comma-separated list into a Sabotage.
func ParseSabotage(list string) (model.Sabotage, error) {
	var s model.Sabotage
	for _, name := range strings.Split(list, ",") {
		switch strings.TrimSpace(name) {
		case "":
		case "skip-fence":
			s.SkipFence = true
		case "repeat-after-restart":
			s.RepeatAfterRestart = true
		case "ignore-limits":
			s.IgnoreLimits = true
		case "ignore-brake":
			s.IgnoreBrake = true
		case "fence-wrong-host":
			s.FenceWrongHost = true
		case "give-up-silently":
			s.GiveUpSilently = true
		case "drop-evidence":
			s.DropEvidence = true
		default:
			return s, fmt.Errorf("--sabotage: unknown %q (known: skip-fence, repeat-after-restart, ignore-limits, ignore-brake, fence-wrong-host, give-up-silently, drop-evidence)", name)
		}
	}
	return s, nil
}

// SabotageFlags is the --sabotage value for cfg's sabotage.
func SabotageFlags(cfg Config) string {
	s := cfg.Sabotage
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{s.SkipFence, "skip-fence"}, {s.RepeatAfterRestart, "repeat-after-restart"}, {s.IgnoreLimits, "ignore-limits"},
		{s.IgnoreBrake, "ignore-brake"}, {s.FenceWrongHost, "fence-wrong-host"}, {s.GiveUpSilently, "give-up-silently"},
		{s.DropEvidence, "drop-evidence"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return strings.Join(out, ",")
}
