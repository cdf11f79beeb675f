package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/vigil"
)

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Work with policy files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Check a policy file: print every mistake, or a summary of what it says",
		Long: `Reads a policy file as 'vigil serve --policy FILE' would (secrets included: their
environment variables and files must be there) and prints every mistake it finds, one
a line, as FILE:LINE: field.path: what is wrong: what is allowed; it exits 1 then. A valid
file gets a summary: each policy's ladder per fault, its fence proof and priority, the
hosts that can be fenced (IPMI or Redfish: address and user) and the agents that may report (never a secret).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return checkPolicy(args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	})
	return cmd
}

func checkPolicy(path string, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("policy file: %w", err)
	}
	cfg, errs := vigil.CheckConfig(path, data)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		// main prints this last line, and exits 1.
		return fmt.Errorf("%s: %d %s", path, len(errs), plural(len(errs), "mistake", "mistakes"))
	}
	fmt.Fprint(stdout, summary(path, cfg))
	return nil
}

// summary says what a valid policy file asks of Vigil, without its secrets.
func summary(path string, cfg vigil.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: valid\n", path)
	for _, name := range slices.Sorted(maps.Keys(cfg.Policies)) {
		p := cfg.Policies[name]
		fabric := "on"
		if !p.FabricFence {
			fabric = "off"
		}
		fmt.Fprintf(&b, "policy %s: fence proof %s, fabric fence %s, priority %d, step timeout %s, deadline %s, max %d attempts\n",
			name, p.Proof(), fabric, p.Priority, p.StepTimeout, p.Deadline, p.MaxAttempts)
		if p.DryRun {
			fmt.Fprintf(&b, "  %-14s %s\n", "dry run", "decides and journals what it would do; takes no action")
		}
		fmt.Fprintf(&b, "  %-14s %s\n", "ladder", ladder(p.Ladder))
		faults := append(slices.Clone(model.Faults), model.FaultHostDead, model.FaultHostIsolated)
		for _, f := range faults {
			_, own := p.Ladders[f]
			_, rules := p.FaultRules[f]
			if !own && !rules {
				continue
			}
			line := ladder(p.LadderFor(f))
			if rules {
				line += fmt.Sprintf(" (max %d attempts, deadline %s)", p.AttemptsFor(f), p.DeadlineFor(f))
			}
			fmt.Fprintf(&b, "  %-14s %s\n", f, line)
		}
		if len(p.ReservedHosts) > 0 {
			fmt.Fprintf(&b, "  reserved hosts %s\n", strings.Join(p.ReservedHosts, ", "))
		}
		if p.GuestAgent != nil {
			fmt.Fprintf(&b, "  probe %s every %s\n", p.GuestAgent.Name, p.GuestAgent.Interval)
		}
		for _, a := range p.Apps {
			fmt.Fprintf(&b, "  probe %s (%s) every %s\n", a.Name, a.Kind, a.Interval)
		}
	}
	l := cfg.Limits
	fmt.Fprintf(&b, "limits: %d recoveries at once; brake at %g of a segment's hosts (at least %d)\n", l.MaxConcurrent, l.BrakeFraction, l.BrakeMinHosts)
	fmt.Fprintf(&b, "actions: %s\n", actionCaps(l))
	if len(cfg.Fencing) == 0 && len(cfg.Redfish) == 0 {
		fmt.Fprintf(&b, "fencing: no host (a dead host's servers are evacuated only under fence_proof: service)\n")
	}
	for _, bmc := range cfg.Fencing {
		fmt.Fprintf(&b, "fencing: %s by IPMI %s as %s\n", bmc.Host, bmc.Addr(), bmc.Username)
	}
	for _, bmc := range cfg.Redfish {
		fmt.Fprintf(&b, "fencing: %s by Redfish %s as %s\n", bmc.Host, bmc.Endpoint, bmc.Username)
	}
	hosts := slices.Sorted(maps.Keys(cfg.Agents.Tokens))
	if len(hosts) == 0 {
		fmt.Fprintf(&b, "agents: none may report\n")
	} else {
		fmt.Fprintf(&b, "agents: %s (heartbeat every %s)\n", strings.Join(hosts, ", "), cfg.Agents.Interval)
	}
	if n := len(cfg.MasakariTokens); n > 0 {
		fmt.Fprintf(&b, "masakari: notifications endpoint on, %d %s\n", n, plural(n, "token", "tokens"))
	}
	return b.String()
}

func ladder(l []model.Action) string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = string(a)
	}
	return strings.Join(s, " → ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// actionCaps says the executor's caps as a person reads them.
func actionCaps(l model.Limits) string {
	p := l.Parallel()
	rate := "no cap per minute"
	if l.ActionsPerMinute > 0 {
		rate = fmt.Sprintf("at most %d per minute", l.ActionsPerMinute)
	}
	return fmt.Sprintf("%d at once (%d per host, %d per segment), %s", p.MaxParallel, p.PerHost, p.PerSegment, rate)
}
