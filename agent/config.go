package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Config is one agent's configuration.
type Config struct {
	// Host is the host's name as Vigil knows it (Nova's hypervisor host name).
	Host string
	// Token is the host's own token, sent as a Bearer token; it is never logged.
	Token string
	// Paths are Vigil's URLs, one per network (management, storage...).
	Paths []Path
	// CAFile is a PEM bundle of the CAs that sign Vigil's certificate (https URLs);
	// empty: the system's roots.
	CAFile string
	// Peers are the peer agents this one heartbeats to over UDP; ListenPeers is the
	// UDP address it hears them on ("" hears nothing: its peers hear it, it hears none).
	Peers       []Peer
	ListenPeers string
	// Libvirt is libvirtd's URI (qemu+unix:///system?socket=..., qemu+tcp://host:port/system);
	// empty: no libvirt (heartbeats and peers only).
	Libvirt string
	// Interval is the heartbeat interval until Vigil's orders say another (default 1s).
	Interval time.Duration
	// ReportEvery: a report rides at least every this many beats of a path even when
	// nothing changed (default 5).
	ReportEvery int
	// LibvirtTimeout bounds every libvirt call (default 5s); ListEvery is the interval
	// of the full domain listing (default 5s).
	LibvirtTimeout time.Duration
	ListEvery      time.Duration
	Log            *slog.Logger
}

// Path is one network to Vigil.
type Path struct {
	Name string
	URL  string
}

// Peer is another host's agent.
type Peer struct {
	Name string
	Addr string
}

func (c *Config) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.ReportEvery <= 0 {
		c.ReportEvery = 5
	}
	if c.LibvirtTimeout <= 0 {
		c.LibvirtTimeout = 5 * time.Second
	}
	if c.ListEvery <= 0 {
		c.ListEvery = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Validate says what is wrong with a configuration, naming the setting.
func (c Config) Validate() error {
	if c.Host == "" {
		return errors.New("host: must not be empty (the host's name as Vigil knows it)")
	}
	if c.Token == "" {
		return errors.New("token: must not be empty (the host's own token)")
	}
	if len(c.Paths) == 0 {
		return errors.New("vigil: give at least one path=URL to heartbeat to")
	}
	seen := map[string]bool{}
	for _, p := range c.Paths {
		if p.Name == "" {
			return fmt.Errorf("vigil %q: the path needs a name (management=URL)", p.URL)
		}
		if seen[p.Name] {
			return fmt.Errorf("vigil %s: path given twice", p.Name)
		}
		seen[p.Name] = true
		u, err := url.Parse(p.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("vigil %s: %q is not an http(s)://host[:port] URL", p.Name, p.URL)
		}
	}
	peers := map[string]bool{}
	for _, p := range c.Peers {
		if p.Name == "" || p.Addr == "" {
			return fmt.Errorf("peer %q: want name=host:port", p.Name+"="+p.Addr)
		}
		if p.Name == c.Host {
			return fmt.Errorf("peer %s: that is this host", p.Name)
		}
		if peers[p.Name] {
			return fmt.Errorf("peer %s: given twice", p.Name)
		}
		peers[p.Name] = true
	}
	if c.Libvirt != "" {
		if _, err := parseLibvirtURI(c.Libvirt); err != nil {
			return fmt.Errorf("libvirt: %w", err)
		}
	}
	if c.Interval < 0 {
		return fmt.Errorf("interval: must be positive, got %s", c.Interval)
	}
	return nil
}

// ParseNamed parses "name=value" flags (--vigil management=URL, --peer host-b=ADDR).
func ParseNamed(flag, s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" || value == "" {
		return "", "", fmt.Errorf("--%s %q: want name=value", flag, s)
	}
	return name, value, nil
}
