package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vigil-ha/vigil/model"
)

// libvirtTarget is a parsed libvirt URI: where to dial and what to open there.
type libvirtTarget struct {
	network string // "unix" or "tcp"
	addr    string
	remote  libvirt.ConnectURI // what libvirtd opens once connected (qemu:///system)
}

// parseLibvirtURI understands the two transports the agent needs, parsed here so
// that the dial has our timeout: qemu+unix:///system[?socket=PATH] and
// qemu+tcp://host[:port]/system (no auth, as on a trusted management network).
func parseLibvirtURI(s string) (libvirtTarget, error) {
	u, err := url.Parse(s)
	if err != nil {
		return libvirtTarget{}, fmt.Errorf("%q is not a URI: %w", s, err)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver == "" || u.Path == "" {
		return libvirtTarget{}, fmt.Errorf("%q: want qemu+unix:///system?socket=PATH or qemu+tcp://HOST:PORT/system", s)
	}
	remote := libvirt.RemoteURI(u)
	switch transport {
	case "unix", "":
		if u.Host != "" {
			return libvirtTarget{}, fmt.Errorf("%q: a unix URI has no host (qemu+unix:///system)", s)
		}
		sock := u.Query().Get("socket")
		if sock == "" {
			sock = "/run/libvirt/libvirt-sock"
		}
		return libvirtTarget{network: "unix", addr: sock, remote: remote}, nil
	case "tcp":
		if u.Hostname() == "" {
			return libvirtTarget{}, fmt.Errorf("%q: a tcp URI needs a host", s)
		}
		port := u.Port()
		if port == "" {
			port = "16509"
		}
		return libvirtTarget{network: "tcp", addr: net.JoinHostPort(u.Hostname(), port), remote: remote}, nil
	}
	return libvirtTarget{}, fmt.Errorf("%q: transport %q not supported (unix or tcp)", s, transport)
}

// dialer hands go-libvirt a connection we keep, so a call that hangs can be cut by
// closing it (go-libvirt's calls take no context).
type dialer struct {
	t       libvirtTarget
	timeout time.Duration
	mu      sync.Mutex
	conn    net.Conn
}

func (d *dialer) Dial() (net.Conn, error) {
	c, err := net.DialTimeout(d.t.network, d.t.addr, d.timeout)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conn = c
	d.mu.Unlock()
	return c, nil
}

func (d *dialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.conn != nil {
		d.conn.Close()
	}
}

// lvConn is one connection to libvirtd whose every call is bounded in time.
type lvConn struct {
	l       *libvirt.Libvirt
	d       *dialer
	timeout time.Duration
	mu      sync.Mutex
	agents  map[string]chan struct{} // per domain UUID: one guest agent call at a time
}

// call runs fn with the connection's timeout. On timeout the connection is closed
// (libvirtd frozen, or its socket dead): fn's goroutine then ends with an error,
// and the watcher reconnects.
func (c *lvConn) call(what string, fn func() error) error {
	return c.callFor(what, c.timeout, fn)
}

func (c *lvConn) callFor(what string, timeout time.Duration, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("libvirt %s: %w", what, err)
		}
		return nil
	case <-t.C:
		c.d.close()
		return fmt.Errorf("libvirt %s: no answer in %s (libvirtd hung or gone); reconnecting", what, timeout)
	}
}

func connectLibvirt(uri string, timeout time.Duration) (*lvConn, error) {
	t, err := parseLibvirtURI(uri)
	if err != nil {
		return nil, err
	}
	d := &dialer{t: t, timeout: timeout}
	c := &lvConn{l: libvirt.NewWithDialer(d), d: d, timeout: timeout}
	if err := c.call("connect to "+t.addr, func() error { return c.l.ConnectToURI(t.remote) }); err != nil {
		d.close()
		return nil, err
	}
	return c, nil
}

func (c *lvConn) close() {
	c.d.close()
}

// domain returns one domain's state as the model says it.
func (c *lvConn) domain(d libvirt.Domain) (model.Domain, error) {
	var st, reason int32
	err := c.call("get state of "+d.Name, func() error {
		var err error
		st, reason, err = c.l.DomainGetState(d, 0)
		return err
	})
	if err != nil {
		return model.Domain{}, err
	}
	return model.Domain{UUID: uuidString(d.UUID), Name: d.Name, State: stateName(st), Reason: reasonName(st, reason)}, nil
}

// list returns every domain libvirt knows (running or not) with its state.
func (c *lvConn) list() ([]model.Domain, map[string]libvirt.Domain, error) {
	var doms []libvirt.Domain
	err := c.call("list domains", func() error {
		var err error
		doms, _, err = c.l.ConnectListAllDomains(1, 0)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]model.Domain, 0, len(doms))
	handles := make(map[string]libvirt.Domain, len(doms))
	for _, d := range doms {
		md, err := c.domain(d)
		if err != nil {
			if libvirt.IsNotFound(err) {
				continue // undefined between the list and the state
			}
			return nil, nil, err
		}
		out = append(out, md)
		handles[md.UUID] = d
	}
	return out, handles, nil
}

// agentCommand runs one guest agent command with a timeout and returns its reply.
//
// A hung guest must not cost the host's libvirt connection: unlike the other calls,
// a guest agent call that outlives its timeout does not close the connection (the
// listing's calls still catch a frozen libvirtd). libvirt runs one agent call per
// domain at a time, so ours wait in line too: while an earlier call is unanswered,
// the next fails at its own timeout saying so.
func (c *lvConn) agentCommand(d libvirt.Domain, cmd string, timeout time.Duration) (string, error) {
	lock := c.agentLock(uuidString(d.UUID))
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case lock <- struct{}{}:
	case <-t.C:
		return "", fmt.Errorf("guest agent of %s: an earlier call is still unanswered after %s (guest hung?)", d.Name, timeout)
	}
	secs := max(int32(math.Ceil(timeout.Seconds())), 1) // libvirt counts whole seconds
	type reply struct {
		out libvirt.OptString
		err error
	}
	done := make(chan reply, 1)
	go func() {
		defer func() { <-lock }()
		out, err := c.l.QEMUDomainAgentCommand(d, cmd, secs, 0)
		done <- reply{out, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", fmt.Errorf("guest agent of %s: %w", d.Name, r.err)
		}
		if len(r.out) == 0 {
			return "", fmt.Errorf("guest agent of %s answered nothing", d.Name)
		}
		return r.out[0], nil
	case <-t.C:
		return "", fmt.Errorf("guest agent of %s: no answer in %s", d.Name, timeout)
	}
}

func (c *lvConn) agentLock(uuid string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.agents == nil {
		c.agents = map[string]chan struct{}{}
	}
	l := c.agents[uuid]
	if l == nil {
		l = make(chan struct{}, 1)
		c.agents[uuid] = l
	}
	return l
}

// watcher keeps the state's domains in step with libvirtd: events at once, a
// full listing every ListEvery, a reconnect with backoff when libvirtd goes away.
type watcher struct {
	a       *agent
	mu      sync.Mutex
	conn    *lvConn
	handles map[string]libvirt.Domain
}

// current returns the live connection and a domain's handle, for probes.
func (w *watcher) current(uuid string) (*lvConn, libvirt.Domain, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.handles[uuid]
	return w.conn, d, ok && w.conn != nil
}

func (w *watcher) run(ctx context.Context) {
	cfg := w.a.cfg
	failures := 0
	for ctx.Err() == nil {
		c, err := connectLibvirt(cfg.Libvirt, cfg.LibvirtTimeout)
		if err == nil {
			failures = 0
			w.a.log.Info("libvirt connected", "uri", cfg.Libvirt)
			err = w.watch(ctx, c)
			c.close()
			w.mu.Lock()
			w.conn = nil
			w.mu.Unlock()
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		w.a.st.setLibvirt(err.Error())
		if failures == 1 || failures%30 == 0 {
			w.a.log.Warn("libvirt unreachable; the report says so and keeps the last domains seen", "uri", cfg.Libvirt, "err", err)
		}
		t := time.NewTimer(backoff(time.Second, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// watch subscribes to domain events and lists, until the connection fails.
func (w *watcher) watch(ctx context.Context, c *lvConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var life <-chan libvirt.DomainEventLifecycleMsg
	if err := c.call("subscribe to lifecycle events", func() error {
		var err error
		life, err = c.l.LifecycleEvents(ctx)
		return err
	}); err != nil {
		return err
	}
	// Reboot, watchdog and I/O error events: news of their own that no state shows
	// (a watchdog set to reset, a reboot inside the guest).
	others := make([]<-chan any, 0, 3)
	for _, id := range []libvirt.DomainEventID{libvirt.DomainEventIDReboot, libvirt.DomainEventIDWatchdog, libvirt.DomainEventIDIoErrorReason} {
		var ch <-chan any
		if err := c.call(fmt.Sprintf("subscribe to events %d", id), func() error {
			var err error
			ch, err = c.l.SubscribeEvents(ctx, id, libvirt.OptDomain{})
			return err
		}); err != nil {
			return err
		}
		others = append(others, ch)
	}
	merged := make(chan any, 64)
	for _, ch := range others {
		go func() {
			for ev := range ch {
				select {
				case merged <- ev:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if err := w.relist(c); err != nil {
		return err
	}
	w.a.st.setLibvirt("")
	w.mu.Lock()
	w.conn = c
	w.mu.Unlock()

	tick := time.NewTicker(w.a.cfg.ListEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.l.Disconnected():
			return errors.New("libvirtd closed the connection")
		case <-tick.C:
			if err := w.relist(c); err != nil {
				return err
			}
		case ev, ok := <-life:
			if !ok {
				return errors.New("libvirt's event stream ended")
			}
			name, detail := lifecycleNames(ev.Event, ev.Detail)
			if err := w.onEvent(c, ev.Dom, name, detail, ev.Event == int32(libvirt.DomainEventUndefined)); err != nil {
				return err
			}
		case ev := <-merged:
			dom, name, detail := otherEvent(ev)
			if name == "" {
				continue
			}
			if err := w.onEvent(c, dom, name, detail, false); err != nil {
				return err
			}
		}
	}
}

// otherEvent names a reboot, watchdog or I/O error event.
func otherEvent(ev any) (libvirt.Domain, string, string) {
	switch e := ev.(type) {
	case *libvirt.DomainEventCallbackRebootMsg:
		return e.Msg.Dom, "reboot", ""
	case *libvirt.DomainEventCallbackWatchdogMsg:
		actions := []string{"none", "pause", "reset", "poweroff", "shutdown", "debug", "inject-nmi"}
		a := fmt.Sprintf("action-%d", e.Msg.Action)
		if int(e.Msg.Action) < len(actions) && e.Msg.Action >= 0 {
			a = actions[e.Msg.Action]
		}
		return e.Msg.Dom, model.ReasonWatchdog, a
	case *libvirt.DomainEventCallbackIOErrorReasonMsg:
		return e.Msg.Dom, model.ReasonIOError, strings.TrimSpace(e.Msg.DevAlias + " " + e.Msg.Reason)
	}
	return libvirt.Domain{}, "", ""
}

// onEvent records an event together with the domain's state read right after it,
// in one change: the immediate beat carries both the news and where it led.
func (w *watcher) onEvent(c *lvConn, dom libvirt.Domain, event, detail string, undefined bool) error {
	now := time.Now()
	uuid := uuidString(dom.UUID)
	ev := model.DomainEvent{UUID: uuid, Name: dom.Name, At: now, Event: event, Detail: detail}
	w.a.log.Info("domain event", "domain", dom.Name, "uuid", uuid, "event", event, "detail", detail)
	if undefined {
		w.forget(uuid)
		w.a.st.update(uuid, nil, []model.DomainEvent{ev}, now)
		return nil
	}
	d, err := c.domain(dom)
	if err != nil {
		if libvirt.IsNotFound(err) {
			w.forget(uuid)
			w.a.st.update(uuid, nil, []model.DomainEvent{ev}, now)
			return nil
		}
		// The event still goes out; the state is repaired at the next listing.
		w.a.st.record([]model.DomainEvent{ev})
		return err
	}
	w.mu.Lock()
	if w.handles == nil {
		w.handles = map[string]libvirt.Domain{}
	}
	w.handles[uuid] = dom
	w.mu.Unlock()
	w.a.st.update(uuid, &d, []model.DomainEvent{ev}, now)
	return nil
}

func (w *watcher) forget(uuid string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.handles, uuid)
}

func (w *watcher) relist(c *lvConn) error {
	doms, handles, err := c.list()
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.handles = handles
	w.mu.Unlock()
	w.a.st.setDomains(doms, time.Now())
	return nil
}

// guestExec runs argv in the guest through its agent and returns its exit code.
func guestExec(c *lvConn, d libvirt.Domain, argv []string, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	cmd, _ := json.Marshal(map[string]any{"execute": "guest-exec", "arguments": map[string]any{
		"path": argv[0], "arg": argv[1:], "capture-output": true}})
	out, err := c.agentCommand(d, string(cmd), timeout)
	if err != nil {
		return -1, err
	}
	var started struct {
		Return struct {
			PID int `json:"pid"`
		} `json:"return"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil {
		return -1, fmt.Errorf("guest-exec: answer not understood: %w", err)
	}
	for {
		status, _ := json.Marshal(map[string]any{"execute": "guest-exec-status", "arguments": map[string]any{"pid": started.Return.PID}})
		left := time.Until(deadline)
		if left <= 0 {
			return -1, fmt.Errorf("guest-exec %s: not finished in %s", argv[0], timeout)
		}
		out, err := c.agentCommand(d, string(status), left)
		if err != nil {
			return -1, err
		}
		var st struct {
			Return struct {
				Exited   bool `json:"exited"`
				ExitCode int  `json:"exitcode"`
				Signal   *int `json:"signal"`
			} `json:"return"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return -1, fmt.Errorf("guest-exec-status: answer not understood: %w", err)
		}
		if st.Return.Exited {
			if st.Return.Signal != nil {
				return -1, fmt.Errorf("%s killed by signal %d in the guest", argv[0], *st.Return.Signal)
			}
			return st.Return.ExitCode, nil
		}
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)))
	}
}
