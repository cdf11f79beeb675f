package vigil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/fence/ipmi"
	"github.com/vigil-ha/vigil/model"
)

// Config is the policy file: the named policies clusters refer to, the limits, and
// the BMCs that fence hosts.
type Config struct {
	Policies map[string]model.Policy
	Limits   model.Limits
	// Fencing: one BMC per host that can be fenced (see Fencer); passwords already
	// read from their environment variable or file.
	Fencing []ipmi.BMC
	// ServiceDownTime is the cloud's own service_down_time (Nova's; 60 s when the
	// file does not say): how long a compute's heartbeat may be silent before it
	// is. A forced-down compute is judged by its heartbeats against it.
	ServiceDownTime time.Duration
	// Agents are the host agents that may report, with their tokens.
	Agents Agents
	// MasakariTokens are the tokens masakari-monitors present to the
	// Masakari-compatible notifications endpoint; none: no endpoint.
	MasakariTokens []string
	// ServiceCloud is the clouds.yaml entry of a user with the service role (the
	// fabric fence's Cinder half); "": none, Cinder then refuses to cut.
	ServiceCloud string
}

// DefaultConfig holds the built-in "default" policy and the default limits.
func DefaultConfig() Config {
	return Config{Policies: map[string]model.Policy{"default": model.DefaultPolicy()}, Limits: model.DefaultLimits(),
		Agents: Agents{Interval: DefaultAgentInterval, Tokens: map[string]string{}}}
}

type fileLimits struct {
	MaxConcurrent *int     `yaml:"max_concurrent"`
	BrakeFraction *float64 `yaml:"brake_fraction"`
	BrakeMinHosts *int     `yaml:"brake_min_hosts"`
}

type filePolicy struct {
	Name                  string         `yaml:"name"`
	Ladder                []model.Action `yaml:"ladder"`
	StepTimeout           *time.Duration `yaml:"step_timeout"`
	HostDownGrace         *time.Duration `yaml:"host_down_grace"`
	Deadline              *time.Duration `yaml:"deadline"`
	MaxAttempts           *int           `yaml:"max_attempts"`
	ServiceFenceOnly      *bool          `yaml:"service_fence_only"`
	EvacuateOnHostFailure *bool          `yaml:"evacuate_on_host_failure"`
	FenceProof            *string        `yaml:"fence_proof"`
	FabricFence           *bool          `yaml:"fabric_fence"`
	// Ladders per fault (hung, app-failed, ...) and the probes of the policy's
	// servers, run by the host agents.
	Ladders    map[string][]model.Action `yaml:"ladders"`
	GuestAgent *model.ProbeSpec          `yaml:"guest_agent"`
	Apps       []model.ProbeSpec         `yaml:"apps"`
}

type fileCloud struct {
	ServiceDownTime *time.Duration `yaml:"service_down_time"`
	// ServiceCloud: the clouds.yaml entry of a user with the service role, whose
	// token lets Cinder cut an attachment Nova still lists (the fabric fence).
	ServiceCloud *string `yaml:"service_cloud"`
}

type file struct {
	Cloud    fileCloud    `yaml:"cloud"`
	Limits   fileLimits   `yaml:"limits"`
	Policies []filePolicy `yaml:"policies"`
	Fencing  yaml.Node    `yaml:"fencing"`  // walked by parseFencing
	Agents   yaml.Node    `yaml:"agents"`   // walked by parseAgents
	Masakari yaml.Node    `yaml:"masakari"` // walked by parseMasakari
}

// LoadConfig reads a policy file. Fields left out take the defaults of the built-in
// "default" policy; unknown fields and invalid values are errors naming the file,
// the policy and the field.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("policy file: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("policy file %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a policy file's contents. The fencing section's passwords are
// read here, from the environment or their files.
func ParseConfig(data []byte) (Config, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(&f)
	if err != nil && !errors.Is(err, io.EOF) { // an empty file is the defaults
		return Config{}, err
	}
	cfg := DefaultConfig()
	if f.Limits.MaxConcurrent != nil {
		cfg.Limits.MaxConcurrent = *f.Limits.MaxConcurrent
	}
	if f.Limits.BrakeFraction != nil {
		cfg.Limits.BrakeFraction = *f.Limits.BrakeFraction
	}
	if f.Limits.BrakeMinHosts != nil {
		cfg.Limits.BrakeMinHosts = *f.Limits.BrakeMinHosts
	}
	switch l := cfg.Limits; {
	case l.MaxConcurrent <= 0:
		return Config{}, fmt.Errorf("limits.max_concurrent: must be positive, got %d", l.MaxConcurrent)
	case l.BrakeFraction <= 0 || l.BrakeFraction > 1:
		return Config{}, fmt.Errorf("limits.brake_fraction: must be in (0, 1], got %g", l.BrakeFraction)
	case l.BrakeMinHosts < 1:
		return Config{}, fmt.Errorf("limits.brake_min_hosts: must be at least 1, got %d", l.BrakeMinHosts)
	}
	if d := f.Cloud.ServiceDownTime; d != nil {
		if *d <= 0 {
			return Config{}, fmt.Errorf("cloud.service_down_time: must be positive (the cloud's own setting, Nova's default is 60s), got %s", *d)
		}
		cfg.ServiceDownTime = *d
	}
	if s := f.Cloud.ServiceCloud; s != nil {
		cfg.ServiceCloud = *s
	}
	for i, fp := range f.Policies {
		p := model.DefaultPolicy()
		p.Name = fp.Name
		if fp.Ladder != nil {
			p.Ladder = fp.Ladder
		}
		assign(&p.StepTimeout, fp.StepTimeout)
		assign(&p.HostDownGrace, fp.HostDownGrace)
		assign(&p.Deadline, fp.Deadline)
		assign(&p.MaxAttempts, fp.MaxAttempts)
		assign(&p.ServiceFenceOnly, fp.ServiceFenceOnly)
		assign(&p.EvacuateOnHostFailure, fp.EvacuateOnHostFailure)
		assign(&p.FenceProof, fp.FenceProof)
		assign(&p.FabricFence, fp.FabricFence)
		if fp.Ladders != nil {
			p.Ladders = maps.Clone(p.Ladders) // never the default's own map
			if p.Ladders == nil {
				p.Ladders = map[string][]model.Action{}
			}
		}
		for f, l := range fp.Ladders {
			p.Ladders[f] = l // the default's ladder for that fault is replaced, the others kept
		}
		if fp.GuestAgent != nil {
			ga := *fp.GuestAgent
			if ga.Kind == "" {
				ga.Kind = model.ProbeGuestAgent
			}
			if ga.Name == "" {
				ga.Name = model.ProbeGuestAgent
			}
			p.GuestAgent = &ga
		}
		if fp.Apps != nil {
			p.Apps = fp.Apps
		}
		if err := p.Validate(); err != nil {
			return Config{}, fmt.Errorf("policies[%d]: %w", i, err)
		}
		if _, dup := cfg.Policies[p.Name]; dup && p.Name != "default" {
			return Config{}, fmt.Errorf("policies[%d]: policy %q is defined twice", i, p.Name)
		}
		cfg.Policies[p.Name] = p
	}
	if cfg.Fencing, err = parseFencing(&f.Fencing); err != nil {
		return Config{}, err
	}
	if cfg.Agents, err = parseAgents(&f.Agents); err != nil {
		return Config{}, err
	}
	if cfg.MasakariTokens, err = parseMasakari(&f.Masakari); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func assign[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}
