package vigil

import (
	"strings"
	"testing"
)

// The report a user reads: each contender's median over its completed rounds (a
// failed round counted apart, not as a time), its ratio to the oracle's median,
// and the phase that took longest.
func TestNovaReportSummary(t *testing.T) {
	r := NovaReport{Contenders: []string{ContenderVigil, ContenderOracle, ContenderMasakari}, Rounds: []NovaRound{
		{Contender: ContenderVigil, Seconds: 30, Milestones: []Milestone{{"nova says down", 16}, {"host verdict", 26}, {"all ACTIVE elsewhere", 30}}},
		{Contender: ContenderVigil, Seconds: 34, Milestones: []Milestone{{"nova says down", 18}, {"host verdict", 28}, {"all ACTIVE elsewhere", 34}}},
		{Contender: ContenderVigil, Seconds: 32, Milestones: []Milestone{{"nova says down", 17}, {"host verdict", 27}, {"all ACTIVE elsewhere", 32}}},
		{Contender: ContenderVigil, Error: "servers not all ACTIVE"},
		{Contender: ContenderOracle, Seconds: 4, Milestones: []Milestone{{"all ACTIVE elsewhere", 4}}},
		{Contender: ContenderOracle, Seconds: 5, Milestones: []Milestone{{"all ACTIVE elsewhere", 5}}},
		{Contender: ContenderMasakari, Seconds: 250, Milestones: []Milestone{{"all ACTIVE elsewhere", 250}}},
	}}
	r.summarize()
	if len(r.Summary) != 3 {
		t.Fatalf("summary %+v", r.Summary)
	}
	v, o, m := r.Summary[0], r.Summary[1], r.Summary[2]
	if v.Completed != 3 || v.Failed != 1 || v.Median != 32 || v.Min != 30 || v.Max != 34 {
		t.Errorf("vigil %+v, want 3 completed, 1 failed, median 32, min 30, max 34", v)
	}
	if o.Median != 4.5 || v.Ratio != 32/4.5 || o.Ratio != 1 || m.Ratio != 250/4.5 {
		t.Errorf("oracle median %v, ratios vigil %v oracle %v masakari %v", o.Median, v.Ratio, o.Ratio, m.Ratio)
	}
	if !strings.HasPrefix(v.Dominant, "fault -> nova says down (median 17.0 s") {
		t.Errorf("vigil's dominant phase %q, want Nova's detection (17 s of 32)", v.Dominant)
	}
	if len(v.Phases) != 3 || v.Phases[1].Name != "nova says down -> host verdict" || v.Phases[1].At != 10 {
		t.Errorf("vigil's phases %+v", v.Phases)
	}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3 (+1 failed)  32.0    30.0   34.0   7.11", "FAILED: servers not all ACTIVE"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
