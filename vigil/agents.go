package vigil

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Agents is the policy file's agents section: the host agents that may report to
// this Vigil, each with its own token, and the heartbeat interval they are told.
type Agents struct {
	// Interval is the heartbeat interval Vigil asks of the agents (default 1 s).
	Interval time.Duration
	// Tokens holds each host's agent token, already read from its environment
	// variable or file. A host not listed cannot report.
	Tokens map[string]string
}

// DefaultAgentInterval is the heartbeat interval agents are told by default.
const DefaultAgentInterval = time.Second

// parseAgents reads the agents section:
//
//	agents:
//	  interval: 1s
//	  hosts:
//	    - name: fake-compute-1
//	      token_env: VIGIL_AGENT_TOKEN_1       # or token_file: /etc/vigil/agents/fake-compute-1
//
// Every token comes from exactly one of token_env, token_file or token (in the file
// itself: discouraged); two hosts may not share one (a token names its host).
func parseAgents(n *yaml.Node) (Agents, error) {
	a := Agents{Interval: DefaultAgentInterval, Tokens: map[string]string{}}
	if n == nil || n.Kind == 0 {
		return a, nil
	}
	owner := map[string]string{} // token -> host
	err := fields(n, "agents", func(key string, v *yaml.Node, path string) error {
		switch key {
		case "interval":
			if err := scalar(v, path, &a.Interval); err != nil {
				return err
			}
			if a.Interval < 100*time.Millisecond || a.Interval > time.Minute {
				return fmt.Errorf("%s: must be between 100ms and 1m, got %s", path, a.Interval)
			}
			return nil
		case "hosts":
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: must be a list of hosts", path)
			}
			for i, h := range v.Content {
				hp := fmt.Sprintf("%s[%d]", path, i)
				var name string
				tf := secretFields{base: "token"}
				err := fields(h, hp, func(key string, v *yaml.Node, p string) error {
					if ok, err := tf.take(key, v, p); ok {
						return err
					}
					if key == "name" {
						return scalar(v, p, &name)
					}
					return unknown(p)
				})
				if err != nil {
					return err
				}
				switch {
				case name == "":
					return fmt.Errorf("%s.name: must name the host (as the compute service does)", hp)
				case len(tf.sources) == 0:
					return fmt.Errorf("%s: no token: give token_env (an environment variable) or token_file", hp)
				case len(tf.sources) > 1:
					return fmt.Errorf("%s: %s: give only one way to the token", hp, strings.Join(tf.sources, " and "))
				}
				if _, dup := a.Tokens[name]; dup {
					return fmt.Errorf("%s.name: host %q is listed twice", hp, name)
				}
				tok, err := tf.read(hp)
				if err != nil {
					return err
				}
				if len(tok) < 16 {
					return fmt.Errorf("%s: the token of host %s is too short (%d characters): use at least 16 random ones", hp, name, len(tok))
				}
				if other, dup := owner[tok]; dup {
					return fmt.Errorf("%s: host %s has the token of host %s: each agent needs its own", hp, name, other)
				}
				owner[tok] = name
				a.Tokens[name] = tok
			}
			return nil
		}
		return unknown(path)
	})
	return a, err
}

// parseMasakari reads the masakari section: the tokens masakari-monitors present
// (X-Auth-Token) to POST /v1/notifications. The endpoint exists only when the section
// lists at least one: a monitor's report can make Vigil recover a server, so an
// open endpoint would let anyone on the network ask for a reboot.
//
//	masakari:
//	  tokens:
//	    - token_env: VIGIL_MASAKARI_TOKEN      # or token_file: /etc/vigil/masakari.token
func parseMasakari(n *yaml.Node) ([]string, error) {
	if n == nil || n.Kind == 0 {
		return nil, nil
	}
	var tokens []string
	err := fields(n, "masakari", func(key string, v *yaml.Node, path string) error {
		if key != "tokens" {
			return unknown(path)
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			return fmt.Errorf("%s: must list at least one token (token_env or token_file)", path)
		}
		for i, t := range v.Content {
			tp := fmt.Sprintf("%s[%d]", path, i)
			tf := secretFields{base: "token"}
			err := fields(t, tp, func(key string, v *yaml.Node, p string) error {
				if ok, err := tf.take(key, v, p); ok {
					return err
				}
				return unknown(p)
			})
			if err != nil {
				return err
			}
			if len(tf.sources) != 1 {
				return fmt.Errorf("%s: give exactly one of token_env, token_file or token", tp)
			}
			tok, err := tf.read(tp)
			if err != nil {
				return err
			}
			if len(tok) < 16 {
				return fmt.Errorf("%s: the token is too short (%d characters): use at least 16 random ones", tp, len(tok))
			}
			tokens = append(tokens, tok)
		}
		return nil
	})
	return tokens, err
}
