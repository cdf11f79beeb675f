package vigil

import (
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// HA is how replicas of Vigil share a store (the policy file's ha section).
type HA struct {
	// LeaseTTL: a shard whose leader stopped renewing is taken over after this
	// (model.LeaseTiming; default model.DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Sharding splits the cloud's segments among shards, each led by one replica
	// (default: one shard of every segment).
	Sharding model.Sharding
}

// ha reads the ha section:
//
//	ha:
//	  lease_ttl: 10s
//	  shards:
//	    - name: east
//	      segments: [az1, az2]
//	    - name: rest        # no segments: every segment no other shard lists
func (c *checker) ha(sec entry, cfg *Config) {
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"lease_ttl", "shards"}) {
		switch e.Key {
		case "lease_ttl":
			if d, ok := c.positive(e.V, e.Path, "10s"); ok {
				if d < 2*time.Second || d > 10*time.Minute {
					c.bad(e.V, e.Path, "%s is out of range: give between 2s and 10m (a dead leader is replaced within about 1.25 of it; each replica renews every quarter of it)", d)
				} else {
					cfg.HA.LeaseTTL = d
				}
			}
		case "shards":
			c.shards(e, cfg)
		}
	}
}

func (c *checker) shards(sec entry, cfg *Config) {
	names := map[string]bool{}
	owner := map[string]string{} // segment -> shard
	var out []model.Shard
	catchAll := ""
	for i, n := range c.list(sec.V, sec.Path, "shards (name, segments)") {
		path := fmt.Sprintf("%s[%d]", sec.Path, i)
		var sh model.Shard
		ok := true
		for _, e := range c.mapping(n, path, "a mapping with name and segments", []string{"name", "segments"}) {
			switch e.Key {
			case "name":
				v, vok := c.str(e.V, e.Path, "the shard's name")
				switch {
				case !vok:
					ok = false
				case v == "":
					c.bad(e.V, e.Path, "empty: give the shard a name")
					ok = false
				case names[v]:
					c.bad(e.V, e.Path, "shard %q is defined twice: give each shard its own name", v)
					ok = false
				default:
					sh.Name = v
					names[v] = true
				}
			case "segments":
				for j, s := range c.list(e.V, e.Path, "segment names (availability zones)") {
					sp := fmt.Sprintf("%s[%d]", e.Path, j)
					seg, sok := c.str(s, sp, "a segment's name")
					if !sok {
						ok = false
						continue
					}
					if prev, dup := owner[seg]; dup {
						c.bad(s, sp, "segment %q is already in shard %q: a segment belongs to one shard", seg, prev)
						ok = false
						continue
					}
					owner[seg] = sh.Name
					sh.Segments = append(sh.Segments, seg)
				}
			}
		}
		if sh.Name == "" && ok {
			c.bad(n, path, "no name: give each shard a name")
			ok = false
		}
		if ok && len(sh.Segments) == 0 {
			if catchAll != "" {
				c.bad(n, path, "shard %q lists no segment, like shard %q: only one shard may take every segment no other lists", sh.Name, catchAll)
				ok = false
			} else {
				catchAll = sh.Name
			}
		}
		if ok {
			out = append(out, sh)
		}
	}
	if len(out) > 0 {
		cfg.HA.Sharding = model.Sharding{Shards: out}
	}
}
