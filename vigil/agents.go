package vigil

import (
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

// agents reads the agents section:
//
//	agents:
//	  interval: 1s
//	  hosts:
//	    - name: fake-compute-1
//	      token_env: VIGIL_AGENT_TOKEN_1       # or token_file: /etc/vigil/agents/fake-compute-1
//
// Every token comes from exactly one of token_env, token_file or token (in the file
// itself: discouraged); two hosts may not share one (a token names its host).
func (c *checker) agents(sec entry) Agents {
	a := Agents{Interval: DefaultAgentInterval, Tokens: map[string]string{}}
	owner := map[string]string{} // token -> host
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"interval", "hosts"}) {
		switch e.Key {
		case "interval":
			if d, ok := c.duration(e.V, e.Path); ok {
				if d < 100*time.Millisecond || d > time.Minute {
					c.bad(e.V, e.Path, "%s is out of range: give a heartbeat interval between 100ms and 1m, such as 1s", d)
				} else {
					a.Interval = d
				}
			}
		case "hosts":
			lines := map[string]int{}
			for i, h := range c.list(e.V, e.Path, "hosts (each with a name and token_env or token_file)") {
				hp := index(e.Path, i)
				before := len(c.errs)
				var name string
				var nameNode *yaml.Node
				tf := secretFields{base: "token"}
				for _, f := range c.mapping(h, hp, "a host (name and token_env or token_file)", []string{"name", "token", "token_env", "token_file"}) {
					if tf.take(c, f) {
						continue
					}
					nameNode = f.V
					if v, ok := c.str(f.V, f.Path, "the host's name, as its compute service gives it"); ok {
						if strings.TrimSpace(v) == "" {
							c.bad(f.V, f.Path, "empty: give the host's name, as its compute service gives it")
						}
						name = v
					}
				}
				if !isMapping(h) || len(c.errs) > before {
					continue
				}
				switch {
				case nameNode == nil:
					c.bad(h, hp+".name", "missing: give the host's name, as its compute service gives it")
					continue
				case len(tf.sources) == 0:
					c.bad(h, hp, "no token: give token_env (an environment variable) or token_file")
					continue
				case len(tf.sources) > 1:
					c.bad(tf.nodes[tf.sources[1]], hp, "%s: give only one way to the token", strings.Join(tf.sources, " and "))
					continue
				}
				if line, dup := lines[name]; dup {
					c.bad(nameNode, hp+".name", "host %q is listed twice (first at line %d): list each host once", name, line)
					continue
				}
				lines[name] = nameNode.Line
				tok, ok := tf.read(c, hp)
				if !ok {
					continue
				}
				at := tf.nodes[tf.sources[0]]
				if len(tok) < 16 {
					c.bad(at, join(hp, tf.sources[0]), "the token of host %s is too short (%d characters): use at least 16 random ones", name, len(tok))
					continue
				}
				if other, dup := owner[tok]; dup {
					c.bad(at, join(hp, tf.sources[0]), "host %s has the token of host %s: give each agent its own", name, other)
					continue
				}
				owner[tok] = name
				a.Tokens[name] = tok
			}
		}
	}
	return a
}

// masakari reads the masakari section: the tokens masakari-monitors present
// (X-Auth-Token) to POST /v1/notifications. The endpoint exists only when the section
// lists at least one: a monitor's report can make Vigil recover a server, so an
// open endpoint would let anyone on the network ask for a reboot.
//
//	masakari:
//	  tokens:
//	    - token_env: VIGIL_MASAKARI_TOKEN      # or token_file: /etc/vigil/masakari.token
func (c *checker) masakari(sec entry) []string {
	var tokens []string
	entries := c.mapping(sec.V, sec.Path, "a mapping with tokens", []string{"tokens"})
	if isMapping(sec.V) && len(entries) == 0 && len(c.errs) == 0 {
		c.bad(sec.V, sec.Path+".tokens", "missing: list at least one token (token_env or token_file), or leave the masakari section out")
	}
	for _, e := range entries {
		items := c.list(e.V, e.Path, "tokens (each token_env or token_file)")
		if len(items) == 0 {
			if n := c.deref(e.V, e.Path); n != nil && (isNull(n) || n.Kind == yaml.SequenceNode) {
				c.bad(n, e.Path, "empty: list at least one token (token_env or token_file), or leave the masakari section out")
			}
			continue
		}
		for i, t := range items {
			tp := index(e.Path, i)
			before := len(c.errs)
			tf := secretFields{base: "token"}
			for _, f := range c.mapping(t, tp, "a token (token_env or token_file)", []string{"token", "token_env", "token_file"}) {
				tf.take(c, f)
			}
			if !isMapping(t) || len(c.errs) > before {
				continue
			}
			if len(tf.sources) != 1 {
				c.bad(t, tp, "%d ways to the token given: give exactly one of token_env, token_file or token", len(tf.sources))
				continue
			}
			tok, ok := tf.read(c, tp)
			if !ok {
				continue
			}
			if len(tok) < 16 {
				c.bad(tf.nodes[tf.sources[0]], join(tp, tf.sources[0]), "the token is too short (%d characters): use at least 16 random ones", len(tok))
				continue
			}
			tokens = append(tokens, tok)
		}
	}
	return tokens
}
