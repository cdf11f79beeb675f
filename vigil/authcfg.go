package vigil

import "time"

// AuthSettings is the policy file's auth section: who may call the API. Vigil's
// own bearer tokens (`vigil token create`) are always accepted on every route;
// these settings open reads or add Keystone's tokens.
type AuthSettings struct {
	// OpenReads lets GET and HEAD through without a token (the dashboard, curl,
	// /metrics), except the list of tokens (auth.open_reads; default false).
	OpenReads bool
	// Keystone also accepts an OpenStack token (X-Auth-Token) whose roles include
	// admin, validated against the watched cloud's Keystone with Vigil's own
	// credentials (auth.keystone; default false; `vigil serve` only).
	Keystone bool
	// KeystoneCache: how long one validation is reused, never past the token's
	// expiry (auth.keystone_cache; default 1m).
	KeystoneCache time.Duration
}

func (c *checker) authSection(sec entry, cfg *Config) {
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"open_reads", "keystone", "keystone_cache"}) {
		switch e.Key {
		case "open_reads":
			if b, ok := c.boolean(e.V, e.Path); ok {
				cfg.Auth.OpenReads = b
			}
		case "keystone":
			if b, ok := c.boolean(e.V, e.Path); ok {
				cfg.Auth.Keystone = b
			}
		case "keystone_cache":
			if d, ok := c.positive(e.V, e.Path, "1m (Keystone is asked again after it; a revoked Keystone token works until then)"); ok {
				cfg.Auth.KeystoneCache = d
			}
		}
	}
}
