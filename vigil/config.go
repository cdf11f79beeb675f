package vigil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/fence/ipmi"
	"github.com/vigil-ha/vigil/fence/redfish"
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
	// Redfish: the hosts fenced through a Redfish service instead (one or the other
	// per host), passwords read.
	Redfish []redfish.BMC
	// ServiceDownTime is the cloud's own service_down_time (Nova's; 60 s when the
	// file does not say): how long a compute's heartbeat may be silent before it
	// is. A forced-down compute is judged by its heartbeats against it.
	ServiceDownTime time.Duration
	// Agents are the host agents that may report, with their tokens.
	Agents Agents
	// MasakariTokens are the tokens masakari-monitors present to the
	// Masakari-compatible notifications endpoint; none: no endpoint.
	MasakariTokens []string
	// DisabledNotMaintenance: Nova's disabled compute status is not taken as
	// maintenance (the file's cloud.disabled_is_maintenance: false; default true).
	DisabledNotMaintenance bool
	// ServiceCloud is the clouds.yaml entry of a user with the service role (the
	// fabric fence's Cinder half); "": none, Cinder then refuses to cut.
	ServiceCloud string
	// HA: how replicas share the store (lease TTL, shards).
	HA HA
	// Store: retention of history and how often it is compacted.
	Store StoreConfig
	// Auth: who may call the API besides holders of Vigil's tokens (authcfg.go).
	Auth AuthSettings
}

// DefaultConfig holds the built-in "default" policy and the default limits.
func DefaultConfig() Config {
	return Config{Policies: map[string]model.Policy{"default": model.DefaultPolicy()}, Limits: model.DefaultLimits(),
		Store: DefaultStoreConfig(), Agents: Agents{Interval: DefaultAgentInterval, Tokens: map[string]string{}}}
}

// LoadConfig reads a policy file. Fields left out take the defaults of the built-in
// "default" policy; the first mistake (by line) is returned, as
// FILE:LINE: field.path: what is wrong: what is allowed. CheckConfig finds them all.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("policy file: %w", err)
	}
	cfg, errs := CheckConfig(path, data)
	if len(errs) > 0 {
		return Config{}, errs[0]
	}
	return cfg, nil
}

// ParseConfig parses a policy file's contents (named "policy file" in its errors)
// and returns its first mistake. The secrets (BMC passwords, tokens) are read here,
// from the environment or their files.
func ParseConfig(data []byte) (Config, error) {
	cfg, errs := CheckConfig("policy file", data)
	if len(errs) > 0 {
		return Config{}, errs[0]
	}
	return cfg, nil
}

// Sections of the policy file, in the order the documentation gives them.
var sections = []string{"dry_run", "cloud", "limits", "policies", "fencing", "agents", "masakari", "store", "ha", "auth"}

// CheckConfig parses a policy file's contents and returns every mistake it can
// find independently, by line (none: the Config is valid). file names the file in
// the errors. An empty file is the defaults.
func CheckConfig(file string, data []byte) (cfg Config, errs ConfigErrors) {
	c := &checker{file: file}
	cfg = DefaultConfig()
	root, ok := c.document(data)
	if ok && root != nil {
		c.config(root, &cfg)
	}
	if errs = c.sorted(); len(errs) > 0 {
		return Config{}, errs
	}
	return cfg, nil
}

// document reads the file's one YAML document; nil when it is empty. A second
// document (a line `---` and more after it) is refused: Vigil would read only the
// first, and the user meant both.
func (c *checker) document(data []byte) (root *yaml.Node, ok bool) {
	defer func() {
		if r := recover(); r != nil { // the YAML parser must never take Vigil down
			c.at(1, "", "the YAML parser failed on this file (%v): the file is not valid YAML", r)
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true // empty, or only comments: the defaults
		}
		c.syntax(err, data)
		return nil, false
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case err == nil:
		line := second.Line
		if len(second.Content) > 0 {
			line = second.Content[0].Line
		}
		c.at(line, "", "a second YAML document (after ---): a policy file is one document: put all sections in the first, or remove the ---")
	case !errors.Is(err, io.EOF):
		c.syntax(err, data)
	}
	if len(doc.Content) == 0 {
		return nil, true
	}
	return doc.Content[0], true
}

func (c *checker) config(root *yaml.Node, cfg *Config) {
	var policies, fencing, agents, masakari *entry
	dry := false
	for _, e := range c.mapping(root, "", "a mapping of sections", nil) {
		e := e
		switch e.Key {
		case "dry_run":
			dry, _ = c.boolean(e.V, e.Path) // every policy dry-run (dryrun.go)
		case "cloud":
			c.cloud(e, cfg)
		case "limits":
			c.limits(e, cfg)
		case "policies":
			policies = &e
		case "fencing":
			fencing = &e
		case "agents":
			agents = &e
		case "masakari":
			masakari = &e
		case "ha":
			c.ha(e, cfg)
		case "store":
			c.storeSection(e, cfg)
		case "auth":
			c.authSection(e, cfg)
		default:
			c.bad(e.KeyNode, e.Path, "unknown section%s: known sections are %s", didYouMean(e.Key, sections), strings.Join(sections, ", "))
		}
	}
	if policies != nil {
		c.policies(*policies, cfg)
	}
	if dry {
		allDryRun(cfg)
	}
	if fencing != nil {
		cfg.Fencing, cfg.Redfish = c.fencing(*fencing)
	}
	if agents != nil {
		cfg.Agents = c.agents(*agents)
	}
	if masakari != nil {
		cfg.MasakariTokens = c.masakari(*masakari)
	}
}

func (c *checker) cloud(sec entry, cfg *Config) {
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"service_down_time", "disabled_is_maintenance", "service_cloud"}) {
		switch e.Key {
		case "service_cloud":
			// The clouds.yaml entry of a user with the service role, whose token lets
			// Cinder cut an attachment Nova still lists (the fabric fence).
			if v, ok := c.str(e.V, e.Path, "the name of a clouds.yaml entry"); ok {
				cfg.ServiceCloud = v
			}
		case "service_down_time":
			if d, ok := c.positive(e.V, e.Path, "60s (the cloud's own setting; Nova's default is 60s)"); ok {
				cfg.ServiceDownTime = d
			}
		case "disabled_is_maintenance":
			// Nova's disabled compute service is a host in maintenance (default true).
			if b, ok := c.boolean(e.V, e.Path); ok {
				cfg.DisabledNotMaintenance = !b
			}
		}
	}
}

func (c *checker) limits(sec entry, cfg *Config) {
	l := &cfg.Limits
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"max_concurrent", "brake_fraction", "brake_min_hosts",
		"max_parallel", "per_host", "per_segment", "actions_per_minute", "bmc_timeout"}) {
		switch e.Key {
		case "max_concurrent":
			if v, ok := c.between(e.V, e.Path, 1, 1<<20, "recoveries at once: give at least 1"); ok {
				l.MaxConcurrent = v
			}
		case "brake_fraction":
			if v, ok := c.number(e.V, e.Path); ok {
				if v <= 0 || v > 1 {
					c.bad(e.V, e.Path, "%g is out of range: give a share of a segment's hosts above 0 and at most 1, such as 0.5", v)
				} else {
					l.BrakeFraction = v
				}
			}
		case "brake_min_hosts":
			if v, ok := c.between(e.V, e.Path, 1, 1<<20, "hosts: give at least 1"); ok {
				l.BrakeMinHosts = v
			}
		case "max_parallel":
			if v, ok := c.between(e.V, e.Path, 1, 1024, "actions at once: give at least 1 (1 takes a round's steps one after another)"); ok {
				l.MaxParallel = v
			}
		case "per_host":
			if v, ok := c.between(e.V, e.Path, 1, 1024, "actions at once on one host: give at least 1"); ok {
				l.PerHost = v
			}
		case "per_segment":
			if v, ok := c.between(e.V, e.Path, 1, 1024, "actions at once in one segment: give at least 1"); ok {
				l.PerSegment = v
			}
		case "actions_per_minute":
			if v, ok := c.between(e.V, e.Path, 0, 1<<20, "actions per minute: give 0 for no cap, or at least 1"); ok {
				l.ActionsPerMinute = v
			}
		case "bmc_timeout":
			if v, ok := c.duration(e.V, e.Path); ok {
				if v < 100*time.Millisecond || v > 5*time.Minute {
					c.bad(e.V, e.Path, "%s is out of range: give how long one BMC read may take, from 100ms to 5m, such as 5s", v)
				} else {
					l.BMCTimeout = v
				}
			}
		}
	}
}
