package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
)

type agent struct {
	cfg  Config
	boot string
	st   *state
	log  *slog.Logger
}

// Run runs the agent until ctx ends. It returns an error only for a configuration
// it cannot start with (bad settings, CA file, peer address taken); once running,
// every failure (Vigil away, libvirtd gone, a guest hung) is reported and retried,
// never fatal.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.setDefaults()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("boot id: %w", err)
	}
	a := &agent{cfg: cfg, boot: hex.EncodeToString(b[:]), log: cfg.Log}
	a.st = newState(cfg.Host, a.boot, cfg.Interval, cfg.Peers)

	clients := make([]*http.Client, len(cfg.Paths))
	for i := range cfg.Paths {
		c, err := newClient(cfg.CAFile)
		if err != nil {
			return err
		}
		clients[i] = c
	}
	var peerConn net.PacketConn
	if cfg.ListenPeers != "" || len(cfg.Peers) > 0 {
		addr := cfg.ListenPeers
		if addr == "" {
			addr = ":0" // send only: peers hear this host, it hears none
		}
		var err error
		if peerConn, err = net.ListenPacket("udp", addr); err != nil {
			return fmt.Errorf("listen-peers %s: %w", addr, err)
		}
	}

	a.log.Info("agent started", "host", cfg.Host, "boot", a.boot, "paths", len(cfg.Paths), "peers", len(cfg.Peers),
		"libvirt", cfg.Libvirt != "", "interval", cfg.Interval)
	var wg sync.WaitGroup
	for i, p := range cfg.Paths {
		wg.Go(func() { a.beatLoop(ctx, p, clients[i]) })
	}
	if peerConn != nil {
		wg.Go(func() { a.peers(ctx, peerConn) })
	}
	if cfg.Libvirt != "" {
		w := &watcher{a: a}
		wg.Go(func() { w.run(ctx) })
		wg.Go(func() { a.probeLoop(ctx, w) })
	}
	wg.Wait()
	return nil
}
