package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/vigil"
)

// benchOutput is what every bench's command shares: -o json, the results directory
// and the progress bar.
type benchOutput struct {
	format   string
	results  string
	progress bool
}

func (b *benchOutput) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&b.format, "output", "o", "table", "output: table or json")
	f.StringVar(&b.results, "results", "", "also write the results (JSON and a markdown table) to this directory, e.g. bench/results")
	f.BoolVar(&b.progress, "progress", false, "draw a progress bar on stderr even when it is not a terminal")
}

// progressTo is stderr when it is a terminal or --progress was given.
func (b *benchOutput) progressTo(cmd *cobra.Command) *os.File {
	if b.progress {
		return os.Stderr
	}
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return os.Stderr
	}
	return nil
}

func (b *benchOutput) print(cmd *cobra.Command, report any, table string) error {
	switch b.format {
	case "json":
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	case "table":
		fmt.Fprint(cmd.OutOrStdout(), table)
	default:
		return fmt.Errorf("-o %s: give table or json", b.format)
	}
	return nil
}

// parseSizes reads "1000/10000,5000/50000" (hosts/servers pairs).
func parseSizes(s string) ([][2]int, error) {
	var out [][2]int
	for _, part := range strings.Split(s, ",") {
		h, v, ok := strings.Cut(strings.TrimSpace(part), "/")
		hosts, err1 := strconv.Atoi(h)
		servers, err2 := strconv.Atoi(v)
		if !ok || err1 != nil || err2 != nil || hosts <= 0 || servers <= 0 {
			return nil, fmt.Errorf("--sizes: %q is not HOSTS/SERVERS (e.g. 1000/10000,5000/50000)", part)
		}
		out = append(out, [2]int{hosts, servers})
	}
	return out, nil
}

func benchScaleCmd() *cobra.Command {
	var (
		o     vigil.BenchScaleOptions
		out   benchOutput
		sizes string
	)
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Vigil watching a large simulated cloud with real API latencies: CPU, memory, API calls, detection and recovery",
		Long: `Starts Vigil (the real engine, a SQLite store in a temporary directory, its real loop)
on a simulated cloud of --hosts hosts and --servers servers, all protected, whose compute API
answers each call in 50-300 ms and lists servers in pages of 1,000. After the first full
observation and a warm-up it measures, over --duration, Vigil's CPU (share of one core),
peak memory, the cloud API calls by kind (per minute and per poll), and the detection and
recovery latencies of a few server crashes and one host death.

--sizes runs several sizes one after another (e.g. 1000/10000,5000/50000,10000/100000), so
the growth with size is visible in one table. --profile DIR writes CPU profiles of the start
and of the measured window, and a heap profile (go tool pprof).

The CPU and memory are the process's: Vigil and the simulated cloud beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			runs := [][2]int{{o.Hosts, o.Servers}}
			if sizes != "" {
				var err error
				if runs, err = parseSizes(sizes); err != nil {
					return err
				}
			}
			if p := out.progressTo(cmd); p != nil {
				o.Progress = p
			}
			var reps []vigil.BenchScaleReport
			for _, sz := range runs {
				o := o
				o.Hosts, o.Servers = sz[0], sz[1]
				if o.ProfileDir != "" && len(runs) > 1 {
					o.ProfileDir = fmt.Sprintf("%s/%dx%d", o.ProfileDir, o.Hosts, o.Servers)
				}
				if o.ProfileDir != "" {
					if err := os.MkdirAll(o.ProfileDir, 0o755); err != nil {
						return err
					}
				}
				rep, err := vigil.BenchScale(cmd.Context(), o)
				if err != nil {
					return fmt.Errorf("bench scale %d/%d: %w", o.Hosts, o.Servers, err)
				}
				reps = append(reps, rep)
			}
			table := vigil.ScaleTable(reps)
			if out.results != "" {
				name := fmt.Sprintf("scale-%s", time.Now().UTC().Format("20060102-150405"))
				p, err := vigil.WriteBenchResult(out.results, name, reps, table)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "results written to %s (and .md)\n", p)
			}
			return out.print(cmd, reps, table)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Hosts, "hosts", 10000, "simulated hosts")
	f.IntVar(&o.Servers, "servers", 100000, "simulated servers (all protected)")
	f.StringVar(&sizes, "sizes", "", "several HOSTS/SERVERS sizes, run one after another (overrides --hosts/--servers)")
	f.DurationVar(&o.Duration, "duration", 10*time.Minute, "measured window")
	f.DurationVar(&o.Warmup, "warmup", time.Minute, "warm-up after the first full observation")
	f.IntVar(&o.Crashes, "crashes", 5, "servers crashed during the window (besides one host death)")
	f.DurationVar(&o.Interval, "interval", 2*time.Second, "Vigil's poll interval (vigil serve's default)")
	f.DurationVar(&o.FullEvery, "full-every", 5*time.Minute, "Vigil's full-listing interval (vigil serve's default)")
	f.BoolVar(&o.NoLatency, "no-latency", false, "instant API answers (Vigil's own cost alone)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the latencies and the faults")
	f.StringVar(&o.ProfileDir, "profile", "", "write pprof CPU and heap profiles to this directory")
	out.flags(cmd)
	return cmd
}
