package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/vigil"
)

func benchStormCmd() *cobra.Command {
	var (
		o   vigil.BenchStormOptions
		out benchOutput
	)
	cmd := &cobra.Command{
		Use:   "storm",
		Short: "Many hosts of one segment die at once: Vigil must brake and take no action",
		Long: `Starts Vigil on a simulated cloud of --hosts hosts in segments of --segment-size (every
server protected, the API slowed to 50-300 ms per call), then powers off --kill hosts of one
segment at once. So many at once is likelier a network or power fault than dead machines:
Vigil's brake must engage (its host incidents wait, an operator is told) and nothing may be
fenced, forced down or evacuated there. Reports the time from the power loss to the brake,
and every action taken meanwhile and for --hold after; exits non-zero if any was taken or
the brake did not engage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if p := out.progressTo(cmd); p != nil {
				o.Progress = p
			}
			rep, err := vigil.BenchStorm(cmd.Context(), o)
			if err != nil {
				return err
			}
			table := vigil.StormTable(rep)
			if out.results != "" {
				name := fmt.Sprintf("storm-%s", time.Now().UTC().Format("20060102-150405"))
				p, err := vigil.WriteBenchResult(out.results, name, rep, table)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "results written to %s (and .md)\n", p)
			}
			if err := out.print(cmd, rep, table); err != nil {
				return err
			}
			switch {
			case !rep.Braked:
				return fmt.Errorf("the brake did not engage within %s after %d of %d hosts of one segment died", o.Timeout, o.Kill, o.SegmentSize)
			case rep.ActionsTotal > 0:
				return fmt.Errorf("%d actions taken in a storm (goal 0): %v", rep.ActionsTotal, rep.Actions)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Hosts, "hosts", 5000, "simulated hosts")
	f.IntVar(&o.Servers, "servers", 10000, "simulated servers (all protected)")
	f.IntVar(&o.SegmentSize, "segment-size", 500, "hosts per segment (the brake's failure domain)")
	f.IntVar(&o.Kill, "kill", 500, "hosts of the first segment that lose their power at once")
	f.DurationVar(&o.Warmup, "warmup", 20*time.Second, "steady state before the storm")
	f.DurationVar(&o.Hold, "hold", time.Minute, "how long Vigil is watched after the brake engaged")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "how long the brake may take to engage")
	f.DurationVar(&o.Interval, "interval", 2*time.Second, "Vigil's poll interval")
	f.BoolVar(&o.NoLatency, "no-latency", false, "instant API answers")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the latencies")
	out.flags(cmd)
	return cmd
}
