package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ha/vigil/agent"
)

func agentCmd() *cobra.Command {
	var (
		cfg       agent.Config
		tokenFile string
		paths     []string
		peers     []string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the host agent: heartbeats to Vigil on every path, libvirt events, guest probes",
		Long: `Runs on a hypervisor host. It heartbeats to Vigil over every network it is given
(--vigil management=URL --vigil storage=URL), and to its peer hosts' agents over UDP; with
--libvirt it reports the host's domains (lifecycle events at once, a full listing every few
seconds) and probes the guests Vigil names in its answers (QEMU guest agent ping, application
probes). It never starts, stops or reboots anything: it observes, Vigil decides.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tokenFile == "" {
				return fmt.Errorf("--token-file: required (a file holding this host's token)")
			}
			tok, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("--token-file: %w", err)
			}
			cfg.Token = strings.TrimSpace(string(tok))
			if cfg.Token == "" {
				return fmt.Errorf("--token-file %s: the file is empty", tokenFile)
			}
			for _, s := range paths {
				name, url, err := agent.ParseNamed("vigil", s)
				if err != nil {
					return fmt.Errorf("%w (e.g. --vigil management=https://10.0.0.1:8080)", err)
				}
				cfg.Paths = append(cfg.Paths, agent.Path{Name: name, URL: url})
			}
			for _, s := range peers {
				name, addr, err := agent.ParseNamed("peer", s)
				if err != nil {
					return fmt.Errorf("%w (e.g. --peer host-b=10.0.0.12:7301)", err)
				}
				cfg.Peers = append(cfg.Peers, agent.Peer{Name: name, Addr: addr})
			}
			if cfg.Interval <= 0 {
				return fmt.Errorf("--interval: must be positive, got %s", cfg.Interval)
			}
			if err := cfg.Validate(); err != nil {
				return flagError(err)
			}
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("host", cfg.Host)
			return agent.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Host, "host", "", "this host's name as Vigil knows it (Nova's hypervisor host name)")
	f.StringVar(&tokenFile, "token-file", "", "file holding this host's token (never logged)")
	f.StringArrayVar(&paths, "vigil", nil, "path=URL of Vigil on one network, repeatable (management=https://10.0.0.1:8080)")
	f.StringVar(&cfg.CAFile, "ca", "", "PEM file of the CAs that sign Vigil's certificate (https URLs; default: the system's)")
	f.StringArrayVar(&peers, "peer", nil, "name=host:port of a peer host's agent (UDP), repeatable")
	f.StringVar(&cfg.ListenPeers, "listen-peers", "", "UDP address to hear peer agents on (127.0.0.1:7301)")
	f.StringVar(&cfg.Libvirt, "libvirt", "", "libvirtd URI (qemu+unix:///system?socket=PATH, qemu+tcp://HOST:PORT/system); none: heartbeats only")
	f.DurationVar(&cfg.Interval, "interval", time.Second, "heartbeat interval (Vigil's answer may set another)")
	return cmd
}

// flagError names the flag behind a configuration error (the config names its
// settings as the flags do, without the dashes).
func flagError(err error) error {
	return fmt.Errorf("--%w", err)
}
