package vigil

import (
	"strings"
	"testing"
)

// A policy's name travels in URLs (a cluster's policy) and tables: it follows the
// name rule, and a wrong one is refused at load naming its path.
func TestPolicyNameFollowsTheNameRule(t *testing.T) {
	for _, name := range []string{`"a/b"`, `"gold\nsilver"`, `"\e[2J"`, `"` + strings.Repeat("p", 65) + `"`, `"q?x=1"`} {
		_, err := ParseConfig([]byte("policies: [{name: " + name + ", step_timeout: 60s}]"))
		if err == nil || !strings.Contains(err.Error(), "policies[0].name") || !strings.Contains(err.Error(), "want 1 to 64 characters") {
			t.Errorf("policy name %s: %v, want refused at policies[0].name", name, err)
		}
	}
	if _, err := ParseConfig([]byte("policies: [{name: gold-1.v2_a, step_timeout: 60s}]")); err != nil {
		t.Errorf("a valid name: %v", err)
	}
}
