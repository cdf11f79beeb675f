package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/cloud/openstack"
	"github.com/vigil-ha/vigil/fence/fabric"
	"github.com/vigil-ha/vigil/metrics"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/source/notifications"
	"github.com/vigil-ha/vigil/vigil"
)

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vigil",
		Short:         "Vigil keeps virtual machines running: detect, fence, recover, explain",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), demoCmd(), ctlCmd(), explainCmd(), simCmd(), benchCmd(), versionCmd(), agentCmd(), policyCmd(), tokenCmd())
	return root
}

func demoCmd() *cobra.Command {
	o := vigil.DemoOptions{}
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Vigil on an embedded simulated cloud and inject faults live",
		Long: `Runs Vigil against an in-memory simulated cloud (hosts with a host agent each,
servers, BMCs, Nova's state machine) with a SQLite store, and injects faults every few
seconds: crashed servers, servers powered off behind their owner's back, owner stops
(left alone), stubborn servers (watch the ladder), hosts losing power (dead by their BMC
and silent agent: fenced, then evacuated, in seconds), hosts cut off their management
network (isolated: never fenced), hung guests (hard reboot), failed apps, guest panics.
The timeline shows each fault, verdict, step and recovery with its timing; the REST
API serves the same state. Ctrl-C stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Out = cmd.OutOrStdout()
			if !cmd.Flags().Changed("seed") {
				o.Seed = uint64(time.Now().UnixNano() % 1000)
			}
			var err error
			if o.Log, err = lf.logger(cmd.ErrOrStderr()); err != nil {
				return err
			}
			rep, err := vigil.Demo(cmd.Context(), o)
			if err != nil {
				return err
			}
			if rep.ServerRecoveries == 0 && rep.HostEvacuations == 0 && o.Duration >= 30*time.Second {
				return fmt.Errorf("no recovery completed in %s", o.Duration)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "REST API address")
	f.StringVar(&o.DB, "db", "", "SQLite file (default: a temporary one, removed at exit)")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of the fault schedule (same seed, same faults; default: a random one)")
	f.DurationVar(&o.Duration, "duration", 0, "stop after this long (default: until Ctrl-C)")
	f.IntVar(&o.Hosts, "hosts", 8, "simulated hosts")
	f.IntVar(&o.Servers, "servers", 40, "simulated servers")
	f.DurationVar(&o.FaultEvery, "fault-every", 6*time.Second, "time between faults")
	lf.add(f, "warn") // the timeline on stdout is the demo's story; stderr has what went wrong
	f.DurationVar(&o.FirstFault, "first-fault", 3*time.Second, "time before the first fault")
	return cmd
}

func serveCmd() *cobra.Command {
	var (
		listen, db, osCloud, cloudsFile, policyFile, amqpURL, replicaID string
		tlsCert, tlsKey, serviceCloud                                   string
		interval, fullEvery                                             time.Duration
		lf                                                              logFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Watch and protect a real cloud (OpenStack Nova)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Flags are checked before anything is opened or connected.
			log, err := lf.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if interval <= 0 {
				return fmt.Errorf("--interval: must be positive, got %s", interval)
			}
			if fullEvery <= 0 {
				return fmt.Errorf("--full-every: must be positive, got %s", fullEvery)
			}
			if osCloud == "" {
				osCloud = os.Getenv("OS_CLOUD")
			}
			if osCloud == "" {
				return fmt.Errorf("no cloud to watch: give --os-cloud NAME (an entry of clouds.yaml) or set OS_CLOUD; to try Vigil without a cloud, run `vigil demo`")
			}
			cfg := vigil.DefaultConfig()
			if policyFile != "" {
				if cfg, err = vigil.LoadConfig(policyFile); err != nil {
					return err
				}
			}
			fencer, err := cfg.Fencer()
			if err != nil {
				return err
			}
			mets := metrics.New(metrics.Config{Version: version})
			drv, err := openstack.New(ctx, openstack.Config{CloudName: osCloud, CloudsFile: cloudsFile, Transport: mets.Transport})
			if err != nil {
				return err
			}
			log.Info("connected", "cloud", osCloud, "compute_microversion", drv.Microversion())
			if serviceCloud != "" {
				cfg.ServiceCloud = serviceCloud
			}
			fab, err := fabric.New(ctx, fabric.Config{CloudName: osCloud, CloudsFile: cloudsFile, ServiceCloud: cfg.ServiceCloud})
			if err != nil {
				return err
			}
			if ports, vols := fab.Services(); vols && cfg.ServiceCloud == "" {
				log.Warn("fabric fence: no service user (cloud.service_cloud / --service-cloud): Cinder will refuse to cut a volume attachment", "neutron", ports)
			}
			if fencer == nil {
				log.Warn("no fencing section in the policy file: no host can be fenced by its BMC; " +
					"a dead host's servers are evacuated only under a policy with service_fence_only")
			}
			for _, b := range cfg.Fencing {
				log.Info("fencing", "bmc", b) // ipmi.BMC logs without its password
			}
			for _, b := range cfg.Redfish {
				log.Info("fencing", "redfish", b) // redfish.BMC logs without its password
			}
			keystone, err := keystoneAuth(ctx, cfg, osCloud, cloudsFile)
			if err != nil {
				return err
			}
			pushed := make(chan model.Observation, 256)
			if amqpURL != "" {
				go vigil.Notifications(ctx, notifications.Config{URL: amqpURL, Logger: log}, pushed)
			}
			app, err := vigil.Start(ctx, vigil.Options{Listen: listen, DB: db, Interval: interval, FullEvery: fullEvery,
				Config: cfg, Compute: drv, Fencer: fencer, Fabric: fab, Log: log, Pushed: pushed, TLSCert: tlsCert, TLSKey: tlsKey, ReplicaID: replicaID, Metrics: mets, Keystone: keystone,
				OnEvent: func(e model.Event) { log.Info(e.Message, "kind", e.Kind, "subject", e.Subject, "incident", e.Incident) }})
			if err != nil {
				return err
			}
			scheme := "http://"
			if tlsCert != "" {
				scheme = "https://"
			}
			log.Info("serving", "api", scheme+app.Addr(), "db", db)
			if err := sdNotify("READY=1"); err != nil { // systemd's Type=notify (deploy/vigil.service)
				log.Warn("systemd notify", "err", err)
			}
			return app.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "REST API address")
	f.StringVar(&db, "db", "vigil.db", "store: an SQLite file (sqlite:///path or a path; one live Vigil per file) or MariaDB/MySQL (mysql://user:pass@host:port/db) shared by replicas")
	f.StringVar(&replicaID, "replica-id", "", "this replica's name among those sharing the store (default host:PID)")
	f.StringVar(&osCloud, "os-cloud", "", "clouds.yaml entry (default $OS_CLOUD)")
	f.StringVar(&cloudsFile, "os-client-config-file", "", "clouds.yaml path (default $OS_CLIENT_CONFIG_FILE, then the standard places)")
	f.StringVar(&policyFile, "policy", "", "policy file (YAML): policies, limits, fencing (BMCs); default: the built-in policy, no fencing")
	f.StringVar(&amqpURL, "amqp", os.Getenv("VIGIL_AMQP_URL"), "RabbitMQ URL of Nova's versioned notifications (optional; polling alone works, slower)")
	f.DurationVar(&interval, "interval", 2*time.Second, "poll interval")
	f.DurationVar(&fullEvery, "full-every", 5*time.Minute, "interval of full listings between changes-since polls")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate: serve the API (and the agents' endpoint) over HTTPS only")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	lf.add(f, "info")
	f.StringVar(&serviceCloud, "service-cloud", "", "clouds.yaml entry of a user with the service role, for the fabric fence's Cinder half (overrides cloud.service_cloud)")
	return cmd
}
