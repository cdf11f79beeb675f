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
	// Planted at the simulation's edge (the driver), not in the engine:
	"evacuate-before-mark-down": 2,
	"fence-heard-host":          5, // fence a host silent on its management path while its storage path is heard
}

// planted are the sabotages the driver plants (Config.Planted), not the engine.
var planted = map[string]bool{"evacuate-before-mark-down": true, "fence-heard-host": true}

// SplitSabotage parses a --sabotage list into the engine's deliberate bugs and
// those the simulation's driver plants.
func SplitSabotage(list string) (model.Sabotage, []string, error) {
	var eng []string
	var edge []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if planted[name] {
			edge = append(edge, name)
		} else {
			eng = append(eng, name)
		}
	}
	s, err := ParseSabotage(strings.Join(eng, ","))
	return s, edge, err
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
			return s, fmt.Errorf("--sabotage: unknown %q (known: skip-fence, repeat-after-restart, ignore-limits, ignore-brake, fence-wrong-host, give-up-silently, drop-evidence, evacuate-before-mark-down, fence-heard-host)", name)
		}
	}
	return s, nil
}

// SabotageFlags is the --sabotage value for cfg's sabotage (the engine's and the
// driver's).
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
	out = append(out, cfg.Planted...)
	return strings.Join(out, ",")
}
