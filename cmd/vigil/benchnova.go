package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/vigil"
)

func benchNovaCmd() *cobra.Command {
	var (
		o                                vigil.BenchNovaOptions
		policyFile, output, out, restore string
		hosts, contenders, report        string
	)
	cmd := &cobra.Command{
		Use:   "nova",
		Short: "Host failures on a real Nova: Vigil against an oracle and Masakari",
		Long: `Rounds of "boot N servers on one compute, cut its power through its BMC, time
until every one is ACTIVE on another host", for each contender in turn (only one acts
per round):

  vigil     Vigil as vigil serve runs it, with --policy (its fencing section must list
            every host's BMC: the bench cuts the power through it, Vigil fences through it)
  oracle    the bench itself forces the compute service down and evacuates every server
            at the fault instant: the floor of what Nova allows
  masakari  Masakari as installed (its defaults), notified by the bench at the fault
            instant as masakari-hostmonitor would be; the hosts must be in its segments

After each round the host is powered on, forced up and enabled, and the servers are
deleted. Results (median/min/max, ratios to the oracle, Vigil's phases from its
journal) are printed and saved in --out with the machine, date and commit.
On the OpenStack peer (test/peers/openstack, BMCs from ../shared/peers/ipmi/up.sh
--openstack, ../shared/peers/masakari/up.sh):

  . test/peers/openstack/env.sh; export VIGIL_IPMI_PASSWORD=vigil-ipmi
  flock /tmp/vigil-peer.lock go run ./cmd/vigil bench nova --policy bench/nova-peer.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o: want table or json, got %q", output)
			}
			if report != "" {
				rep, err := vigil.LoadNovaReport(report)
				if err != nil {
					return err
				}
				if out != "" {
					paths, err := rep.Save(out)
					if err != nil {
						return err
					}
					fmt.Fprintf(cmd.ErrOrStderr(), "results: %s\n", strings.Join(paths, " "))
				}
				return rep.WriteTable(cmd.OutOrStdout())
			}
			if o.Cloud == "" {
				o.Cloud = os.Getenv("OS_CLOUD")
			}
			if o.Cloud == "" {
				o.Cloud = os.Getenv("VIGIL_OPENSTACK_CLOUD")
			}
			if o.Cloud == "" {
				return fmt.Errorf("no cloud: give --os-cloud NAME (an admin entry of clouds.yaml) or set OS_CLOUD")
			}
			if policyFile == "" {
				return fmt.Errorf("--policy: a policy file whose fencing section lists each host's BMC is needed (the bench cuts the power through it); on the peer: bench/nova-peer.yaml")
			}
			var err error
			if o.Config, err = vigil.LoadConfig(policyFile); err != nil {
				return err
			}
			o.Hosts = splitList(hosts)
			o.Contenders = splitList(contenders)
			o.Restore = strings.Fields(restore)
			o.Progress = cmd.ErrOrStderr()
			rep, err := vigil.BenchNova(cmd.Context(), o)
			if len(rep.Rounds) > 0 && out != "" {
				paths, serr := rep.Save(out)
				if serr != nil {
					return serr
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "results: %s\n", strings.Join(paths, " "))
			}
			if len(rep.Rounds) > 0 {
				if output == "json" {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if jerr := enc.Encode(rep); jerr != nil {
						return jerr
					}
				} else if terr := rep.WriteTable(cmd.OutOrStdout()); terr != nil {
					return terr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Cloud, "os-cloud", "", "clouds.yaml entry of an admin (default $OS_CLOUD, then $VIGIL_OPENSTACK_CLOUD)")
	f.StringVar(&o.CloudsFile, "os-client-config-file", "", "clouds.yaml path (default $OS_CLIENT_CONFIG_FILE)")
	f.StringVar(&policyFile, "policy", "", "Vigil's policy file, with the BMC of every host (required)")
	f.StringVar(&o.AMQP, "amqp", os.Getenv("VIGIL_AMQP_URL"), "RabbitMQ URL of Nova's versioned notifications, for Vigil (as vigil serve --amqp)")
	f.IntVar(&o.Rounds, "rounds", 3, "rounds per contender")
	f.IntVar(&o.Servers, "servers", 2, "servers per round, all booted on the round's host")
	f.StringVar(&hosts, "hosts", "fake-compute-1,fake-compute-2,fake-compute-3", "computes the rounds rotate over")
	f.StringVar(&contenders, "contenders", "vigil,oracle,masakari", "who handles the host failures, in turn")
	f.StringVar(&o.Zone, "zone", "nova", "availability zone of the hosts")
	f.StringVar(&o.Flavor, "flavor", "1", "flavor ID of the servers")
	f.StringVar(&o.Image, "image", "tiny", "image name of the servers")
	f.DurationVar(&o.Interval, "interval", 2*time.Second, "Vigil's poll interval (vigil serve's default)")
	f.DurationVar(&o.Within, "within", 10*time.Minute, "longest wait of one round for every server ACTIVE elsewhere")
	f.StringVar(&restore, "restore", "", "command run after powering a host back on, before checking it is usable (e.g. test/peers/openstack/up.sh)")
	f.StringVar(&report, "report", "", "summarize a saved JSON report again instead of running (saved again in --out)")
	f.StringVarP(&output, "output", "o", "table", "output: table or json")
	f.StringVar(&out, "out", "bench/results", "directory the results are saved in (JSON and table); empty: not saved")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
