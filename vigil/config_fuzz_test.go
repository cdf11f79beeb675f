package vigil

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// FuzzParseConfig: whatever the file holds, the parser never panics, every error
// names its line in the one style, the first error is ParseConfig's, and a file
// that parses gives policies the engine accepts (model.Policy.Validate) and parses
// the same way again. CI runs it for a bounded time:
//
//	go test -run '^$' -fuzz '^FuzzParseConfig$' -fuzztime 60s ./vigil/
func FuzzParseConfig(f *testing.F) {
	for _, dir := range []string{"testdata/policy-bad", "testdata/policy-good"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, path := range files {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte("a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"))
	line := regexp.MustCompile(`^fuzz.yaml:[1-9][0-9]*: \S`)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, errs := CheckConfig("fuzz.yaml", data)
		for _, e := range errs {
			if !line.MatchString(e.Error()) || e.Msg == "" {
				t.Fatalf("error %q is not FILE:LINE: ...", e)
			}
		}
		_, err := ParseConfig(data)
		if (err == nil) != (len(errs) == 0) {
			t.Fatalf("ParseConfig %v, CheckConfig %d errors", err, len(errs))
		}
		if len(errs) > 0 {
			return
		}
		for name, p := range cfg.Policies {
			if p.Name != name {
				t.Fatalf("policy %q filed under %q", p.Name, name)
			}
			if err := p.Validate(); err != nil {
				t.Fatalf("a file that parses has a policy the engine refuses: %v", err)
			}
			if p.Deadline < p.StepTimeout {
				t.Fatalf("policy %s: deadline %s < step_timeout %s parsed", name, p.Deadline, p.StepTimeout)
			}
		}
		if l := cfg.Limits; l.MaxConcurrent < 1 || l.BrakeFraction <= 0 || l.BrakeFraction > 1 || l.BrakeMinHosts < 1 {
			t.Fatalf("limits %+v parsed", l)
		}
		again, errs := CheckConfig("fuzz.yaml", data)
		if len(errs) != 0 || len(again.Policies) != len(cfg.Policies) {
			t.Fatalf("parsed twice: %d policies then %d (%v)", len(cfg.Policies), len(again.Policies), errs)
		}
	})
}
