package vigil

// Dry run. The policy file's top-level `dry_run: true` makes every policy dry-run
// (the built-in default included); a policy's own `dry_run: true` makes that
// policy's clusters dry-run (a cluster picks its policy, so this is dry-run per
// cluster). Under a dry-run policy Vigil detects, decides and journals the first
// step of each incident as "would" (model.StepWould: same rule and reason) and
// takes no action: no cloud, BMC or fabric call that changes anything. The incident
// then waits, its reason saying what would have been done; it resolves if its
// subject recovers by itself and escalates at its deadline like any other. A host
// holding servers of a dry-run policy is never acted on (plan's merged host
// policy is dry-run if any of its policies is).

// allDryRun makes every policy of cfg dry-run (the top-level dry_run key).
func allDryRun(cfg *Config) {
	for name, p := range cfg.Policies {
		p.DryRun = true
		cfg.Policies[name] = p
	}
}
