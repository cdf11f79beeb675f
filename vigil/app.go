package vigil

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/metrics"
	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/recover"
	agentsrc "github.com/vigil-ha/vigil/source/agent"
	"github.com/vigil-ha/vigil/store"
	storeopen "github.com/vigil-ha/vigil/store/open"
	"github.com/vigil-ha/vigil/web"
)

// Options configure one Vigil process.
type Options struct {
	Listen   string        // API address, e.g. 127.0.0.1:8080 (":0" picks a port)
	DB       string        // the store: an SQLite file or a DSN (store/open)
	Interval time.Duration // poll interval
	Config   Config        // policies and limits
	Compute  cloud.Compute
	Fencer   cloud.Fencer
	// Fabric cuts ports and volumes before evacuations (the fabric fence); nil: none.
	Fabric  cloud.Fabric
	Now     func() time.Time
	Log     *slog.Logger
	OnEvent func(model.Event)
	// Pushed carries observations from event sources (notifications).
	Pushed <-chan model.Observation
	// FullEvery: interval of full listings between incremental ones.
	FullEvery time.Duration
	// RefreshEvery: how often clusters' sources (stacks, server groups, metadata)
	// are resolved (default engine.DefaultRefreshEvery).
	RefreshEvery time.Duration
	// Hook stops the executor at exact points (tests of crash recovery).
	Hook recover.Hook
	// PowerEvery: how often every fenceable host's BMC power is read (0: the
	// engine's default, 30 s).
	PowerEvery time.Duration
	// TLSCert and TLSKey (PEM files), when set, make the API (and the agents' and
	// monitors' endpoints with it) serve HTTPS only: agents' tokens then never
	// cross a network in clear.
	TLSCert, TLSKey string
	// Agents feeds the engine host agents' heartbeats from elsewhere than the HTTP
	// receiver (the demo's simulated agents); nil: only the receiver, if the config
	// lists agents. Giving both is refused: the engine drains one source.
	Agents engine.AgentSource
	// ReplicaID names this replica among those sharing the store (default
	// host:PID); the leases of the policy file's ha section are held under it.
	ReplicaID string
	// Timeouts bound the API's connections (timeouts.go); zero: DefaultTimeouts.
	Timeouts Timeouts
	// Metrics, served at /metrics, observe the journal, the BMCs and (given to the
	// cloud's driver by the caller) the cloud's API; nil: a new set, without the
	// cloud's calls.
	Metrics *metrics.Metrics
	// Keystone validates OpenStack tokens on the API when the policy file's
	// auth.keystone is on (vigil serve sets it from its cloud); see auth.go.
	Keystone api.Keystone
}

// App is a running Vigil.
type App struct {
	Engine *engine.Engine
	Store  store.Store
	// Agents receives the host agents' heartbeats (POST /v1/agent/beat); nil when
	// the policy file lists no agent.
	Agents *agentsrc.Receiver
	opts   Options
	ln     net.Listener
	// monitors carries the observations of masakari-monitors' notifications from
	// the API to the engine (nil: no endpoint).
	monitors chan model.Observation
	srv      *http.Server
	api      http.Handler // the API's router, behind its auth (auth.go)
	compact  *compactor   // bounds the store (storecfg.go)
	stream   *api.Stream
}

// Start takes the store's lease, binds the API's address, then claims the
// recoveries (so that a failed start has fenced no one out) and prepares to resume
// what was in flight. Run then serves until its context ends.
//
// The lease comes first: while another Vigil lives on the same store, this one
// stops there, having changed nothing, and says which Vigil that is (whatever the
// address it was asked to bind, which may well be that Vigil's own).
func Start(ctx context.Context, o Options) (*App, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Interval == 0 {
		o.Interval = 2 * time.Second
	}
	if o.Interval < 0 {
		return nil, fmt.Errorf("poll interval: must be positive, got %s", o.Interval)
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return nil, fmt.Errorf("listen address %q: %w", o.Listen, err)
	}
	if o.DB == "" {
		return nil, errors.New("no store given (--db): " + storeopen.Forms)
	}
	db, err := storeopen.Open(ctx, o.DB, store.Owner{})
	if errors.Is(err, store.ErrHeld) {
		return nil, fmt.Errorf("not starting: %w; this start changed nothing, and that Vigil keeps protecting the cloud: "+
			"stop it first, or give this one another --db", err)
	}
	if err != nil {
		return nil, err
	}
	var tlsCfg *tls.Config
	if o.TLSCert != "" || o.TLSKey != "" {
		if o.TLSCert == "" || o.TLSKey == "" {
			db.Close()
			return nil, errors.New("TLS: give both a certificate (--tls-cert) and its key (--tls-key)")
		}
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("TLS certificate %s and key %s: %w", o.TLSCert, o.TLSKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	if rec, ok := db.(interface{ SetAddr(string) error }); ok { // an SQLite file's owner record
		if err := rec.SetAddr(ln.Addr().String()); err != nil {
			o.Log.Warn("the owner record lacks the API address", "err", err)
		}
	}
	var agents *agentsrc.Receiver
	if o.Metrics == nil {
		o.Metrics = metrics.New(metrics.Config{})
	}
	// The dashboard's event stream follows the journal: every event written wakes it.
	stream := api.NewStream(db, o.Log)
	onEvent := func(ev model.Event) {
		stream.Notify()
		if o.OnEvent != nil {
			o.OnEvent(ev)
		}
	}
	ecfg := engine.Config{Compute: o.Compute, Fencer: o.Metrics.Fencer(o.Fencer), Fabric: o.Fabric, Store: o.Metrics.Journal(db),
		Policies: o.Config.Policies, Limits: o.Config.Limits, ServiceDownTime: o.Config.ServiceDownTime, Now: o.Now, OnEvent: onEvent, FullEvery: o.FullEvery, Hook: o.Hook,
		Agents: o.Agents, DisabledNotMaintenance: o.Config.DisabledNotMaintenance, RefreshEvery: o.RefreshEvery, PowerEvery: o.PowerEvery,
		Sharding: o.Config.HA.Sharding, LeaseTTL: o.Config.HA.LeaseTTL, ReplicaID: o.ReplicaID}
	if len(o.Config.Agents.Tokens) > 0 && o.Agents != nil {
		ln.Close()
		db.Close()
		return nil, errors.New("agents: both agent tokens in the config and an agent source given; the engine drains one")
	}
	if len(o.Config.Agents.Tokens) > 0 {
		tokens := o.Config.Agents.Tokens
		agents = &agentsrc.Receiver{Now: o.Now, Tokens: func(host string) (string, bool) {
			t, ok := tokens[host]
			return t, ok
		}}
		ecfg.Agents = agents
		ecfg.SignalEvery = min(o.Config.Agents.Interval, time.Second)
		ecfg.AgentInterval = o.Config.Agents.Interval
	}
	eng, err := engine.New(ctx, ecfg)
	if err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	// Standbys name the leader by its API address.
	eng.Keeper().SetAddr(ln.Addr().String())
	a := &App{Engine: eng, Store: db, Agents: agents, opts: o, ln: ln, stream: stream}
	o.Metrics.Attach(eng, o.Config.Limits)
	apiOpts := []api.Option{api.WithMetrics(o.Metrics.Handler()), api.WithStream(stream), api.WithBrakes()}
	if len(o.Config.MasakariTokens) > 0 {
		a.monitors = make(chan model.Observation, 1024)
		apiOpts = append(apiOpts, api.WithMasakari(api.NewMasakari(api.MasakariConfig{Now: o.Now, Tokens: o.Config.MasakariTokens, Log: o.Log,
			Observe: func(obs model.Observation) { a.monitors <- obs }})))
	}
	authOpt, err := authOption(o, db)
	if err != nil {
		ln.Close()
		db.Close()
		return nil, err
	}
	apiOpts = append(apiOpts, authOpt)
	a.compact = &compactor{store: db, cfg: o.Config.Store, leads: eng.Leads, now: o.Now, log: o.Log}
	a.api = api.Handler(eng, records{db, a.compact}, o.Log, apiOpts...)
	h := web.Mount(a.api) // the dashboard at /ui/
	if agents != nil {
		interval := o.Config.Agents.Interval
		agents.Orders = func(host string) model.AgentOrders { return eng.Orders(host, interval) }
		mux := http.NewServeMux()
		mux.Handle(agentsrc.BeatPath, agents)
		mux.Handle("/", h)
		h = mux
	}
	a.srv = &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn)}
	o.Timeouts.apply(a.srv)
	return a, nil
}

// Close releases what Start took (the address, the store and its lease) for an App
// that will not Run.
func (a *App) Close() error {
	return errors.Join(a.ln.Close(), a.Store.Close())
}

// Addr is the API's bound address.
func (a *App) Addr() string { return a.ln.Addr().String() }

// Run reconciles and serves the API until ctx ends, then stops both and closes the store.
func (a *App) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 2)
	go func() {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("api: %w", err)
		}
	}()
	// A first reconcile at once, then one per interval.
	if err := a.Engine.Tick(ctx); err != nil {
		a.opts.Log.Warn("reconcile", "err", err)
	}
	pushed := a.opts.Pushed
	if a.monitors != nil {
		// One channel into the engine: the notifications' and the monitors'.
		merged := make(chan model.Observation)
		for _, in := range []<-chan model.Observation{a.opts.Pushed, a.monitors} {
			if in == nil {
				continue
			}
			go func() {
				for {
					select {
					case obs := <-in:
						select {
						case merged <- obs:
						case <-ctx.Done():
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		pushed = merged
	}
	go a.compact.run(ctx)
	go a.stream.Run(ctx)
	engDone := make(chan error, 1)
	go func() {
		engDone <- a.Engine.Run(ctx, a.opts.Interval, pushed, func(err error) { a.opts.Log.Warn("reconcile", "err", err) })
	}()
	var err error
	engineStopped := false
	select {
	case err = <-errc:
	case err = <-engDone: // only a stale epoch stops it: another Vigil took over
		engineStopped = true
	case <-ctx.Done():
	}
	stop()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(shut)
	if !engineStopped {
		<-engDone // the engine ends with ctx
	}
	// A clean stop gives the shards up: a standby takes them at once, not a TTL later.
	rel, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if rerr := a.Engine.Keeper().Release(rel); rerr != nil {
		a.opts.Log.Warn("release the leases", "err", rerr)
	}
	if cerr := a.Store.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
