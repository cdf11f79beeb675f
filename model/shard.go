package model

import "time"

// DefaultShard is the one shard of a cloud not split among replicas: every segment.
const DefaultShard = "all"

// Shard is a set of segments (availability zones, Nova cells) led by one Vigil
// replica at a time: the leader of a shard opens and carries out the recoveries of
// its hosts and of the servers on them; the other replicas watch and stand by.
type Shard struct {
	Name string `json:"name"`
	// Segments: the segments it holds; empty: every segment no other shard holds.
	Segments []string `json:"segments,omitempty"`
}

// Sharding maps each segment to its shard.
type Sharding struct {
	Shards []Shard `json:"shards"`
}

// DefaultSharding is one shard holding every segment.
func DefaultSharding() Sharding { return Sharding{Shards: []Shard{{Name: DefaultShard}}} }

// Names returns the shards' names, in the configured order.
func (s Sharding) Names() []string {
	out := make([]string, 0, len(s.Shards))
	for _, sh := range s.Shards {
		out = append(out, sh.Name)
	}
	return out
}

// Of returns the shard of a segment: the one listing it, else the first shard
// listing no segment (the catch-all), else the first shard.
func (s Sharding) Of(segment string) string {
	if len(s.Shards) == 0 {
		return DefaultShard
	}
	catchAll := ""
	for _, sh := range s.Shards {
		if len(sh.Segments) == 0 && catchAll == "" {
			catchAll = sh.Name
		}
		for _, seg := range sh.Segments {
			if seg == segment {
				return sh.Name
			}
		}
	}
	if catchAll != "" {
		return catchAll
	}
	return s.Shards[0].Name
}

// LeaseTiming is how leadership is kept: the leader renews every TTL/4 and acts
// only within 3/4 of a TTL of its last renewal's start; a standby takes a shard
// over once it saw its lease unchanged for a whole TTL on its own clock. So the
// two never act at once, whatever their clocks read, as long as their rates differ
// by less than a quarter.
type LeaseTiming struct {
	TTL time.Duration `json:"ttl"`
}

// MaxClockSkew bounds how far apart the clocks of Vigil's replicas may be (NTP
// keeps them within milliseconds; the bound is generous). Leadership compares no
// clock across replicas; the one use of the bound is a new leader reading the
// step times an old one wrote: they are taken as up to this much later than its
// own clock says (engine's fromOtherClock).
const MaxClockSkew = 2 * time.Minute

// DefaultLeaseTTL: a dead leader is replaced within 10-12.5 s.
const DefaultLeaseTTL = 10 * time.Second

// RenewEvery is how often a leader renews.
func (l LeaseTiming) RenewEvery() time.Duration { return l.TTL / 4 }

// Valid is how long after a renewal's start the leader may act on it.
func (l LeaseTiming) Valid() time.Duration { return l.TTL * 3 / 4 }
