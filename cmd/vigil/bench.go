package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/vigil"
)

func benchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Vigil's load and speed on this machine",
	}
	cmd.AddCommand(benchAgentsCmd(), benchAgentLoadCmd(), benchScaleCmd(), benchStormCmd(), benchNovaCmd())
	return cmd
}

func benchAgentsCmd() *cobra.Command {
	o := vigil.BenchAgentsOptions{}
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "Many host agents heartbeating to one Vigil: its CPU, memory, and verdict noise",
		Long: `Starts Vigil on an embedded simulated cloud with one host per agent, and a second
process that heartbeats as every agent over HTTP on loopback (each its own connection,
±20 % jitter, a domain report every fifth beat). After a warm-up it measures Vigil's
CPU (cores), peak memory, the beats it received, and the verdicts and incidents it
journaled meanwhile: with every agent healthy there must be none.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			o.Out = cmd.OutOrStdout()
			o.Load = func(ctx context.Context, url string, seed uint64) (func() error, error) {
				c := exec.Command(self, "bench", "agent-load", "--url", url, "--seed", fmt.Sprint(seed),
					"--agents", fmt.Sprint(o.Agents), "--interval", o.Interval.String())
				c.Stdout, c.Stderr = cmd.ErrOrStderr(), cmd.ErrOrStderr()
				if err := c.Start(); err != nil {
					return nil, fmt.Errorf("start the agents' process: %w", err)
				}
				return func() error {
					_ = c.Process.Signal(syscall.SIGINT)
					if err := c.Wait(); err != nil {
						return fmt.Errorf("the agents' process: %w", err)
					}
					return nil
				}, nil
			}
			rep, err := vigil.BenchAgents(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "agents %d, interval %s, window %s\n", rep.Agents, rep.Interval, rep.Window.Round(time.Millisecond))
			fmt.Fprintf(o.Out, "beats received %d (%.0f/s), dropped %d\n", rep.Beats, rep.BeatsPerSecond, rep.Dropped)
			fmt.Fprintf(o.Out, "Vigil CPU %.3f cores, peak RSS %.0f MiB, Go heap %.0f MiB\n", rep.CPU, rep.MaxRSSMiB, rep.HeapMiB)
			fmt.Fprintf(o.Out, "verdict changes %d, incidents opened %d (noise: both must be 0)\n", rep.Verdicts, rep.Incidents)
			for _, s := range rep.NoiseSamples {
				fmt.Fprintf(o.Out, "  noise: %s\n", s)
			}
			if rep.Verdicts+rep.Incidents > 0 {
				return fmt.Errorf("verdict noise: %d verdicts and %d incidents with every agent healthy", rep.Verdicts, rep.Incidents)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Agents, "agents", 1000, "agents (one simulated host each)")
	f.DurationVar(&o.Interval, "interval", time.Second, "heartbeat interval")
	f.DurationVar(&o.Warmup, "warmup", 15*time.Second, "warm-up before measuring")
	f.DurationVar(&o.Measure, "measure", 60*time.Second, "measurement window")
	return cmd
}

// benchAgentLoadCmd is the agents' side of `vigil bench agents`, in its own process.
func benchAgentLoadCmd() *cobra.Command {
	var (
		url      string
		seed     uint64
		agents   int
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:    "agent-load",
		Short:  "Heartbeat as many agents (the load of vigil bench agents)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// main's context ends on SIGINT, which is how the benchmark stops it.
			return vigil.AgentLoad(cmd.Context(), url, seed, agents, interval)
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "Vigil's API")
	f.Uint64Var(&seed, "seed", 0, "seed of the tokens")
	f.IntVar(&agents, "agents", 1000, "agents")
	f.DurationVar(&interval, "interval", time.Second, "heartbeat interval")
	return cmd
}
