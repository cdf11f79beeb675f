package redfish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Auth is how the client authenticates to the BMC.
type Auth string

const (
	// Session: a session is created (POST to the SessionService, X-Auth-Token) for
	// each call and deleted at its end (the default).
	Session Auth = "session"
	// Basic: HTTP basic authentication on each request (no session slot used).
	Basic Auth = "basic"
)

// Defaults for the fields of a BMC left zero.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultConfirmTimeout = 10 * time.Second
)

// SystemsPrefix is where every ComputerSystem's URI starts.
const SystemsPrefix = "/redfish/v1/Systems/"

// BMC is how to reach one host's Redfish service and which system there is the host.
type BMC struct {
	Host     string // the host it powers, as the cloud names it (Nova's hypervisor host)
	Endpoint string // https://ADDRESS[:PORT], no path (http:// only with Insecure)
	Username string
	Password string // never logged, never in an error
	// System is the URI of the host's ComputerSystem (/redfish/v1/Systems/1); empty:
	// the only member of the Systems collection (a service with several is an error).
	System string
	// CAFile: PEM file of the CA that signed the BMC's certificate; empty: the
	// system's roots.
	CAFile string
	// Insecure: the BMC's certificate is not checked, and plain http is allowed.
	Insecure bool
	Auth     Auth          // Session (default) or Basic
	Timeout  time.Duration // bound of each request and of each call but the wait for power, default 10 s
	// ConfirmTimeout bounds how long PowerOff and PowerOn wait for PowerState to
	// follow the reset, default 10 s. Short on purpose: the executor runs steps one
	// by one, and a fence not confirmed here is still proven later by PowerStatus
	// (the engine reads BMC power at every reconcile), so waiting longer only stalls.
	ConfirmTimeout time.Duration
	// UUID, when set, is the UUID the system must report (lower case): PowerOff
	// refuses a system that reports another.
	UUID string
}

// String describes the BMC without its password.
func (b BMC) String() string {
	s := fmt.Sprintf("Redfish BMC of %s at %s (user %s", b.Host, b.Endpoint, b.Username)
	if b.System != "" {
		s += ", system " + b.System
	}
	return s + ")"
}

// GoString keeps %#v from printing the password.
func (b BMC) GoString() string { return "redfish.BMC{" + b.String() + "}" }

// LogValue keeps slog from printing the password.
func (b BMC) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", b.Host), slog.String("endpoint", b.Endpoint),
		slog.String("system", b.System), slog.String("user", b.Username))
}

func (b BMC) withDefaults() BMC {
	if b.Auth == "" {
		b.Auth = Session
	}
	if b.Timeout == 0 {
		b.Timeout = DefaultTimeout
	}
	if b.ConfirmTimeout == 0 {
		b.ConfirmTimeout = DefaultConfirmTimeout
	}
	b.Endpoint = strings.TrimSuffix(b.Endpoint, "/")
	return b
}

// FieldError is a bad field of a BMC's configuration; Field is the field's name in
// the policy file ("endpoint", "system", ...), so the caller can prefix its path.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks a BMC's fields (after defaults), naming the first bad one.
func (b BMC) Validate() error {
	b = b.withDefaults()
	if b.Host == "" {
		return &FieldError{"name", "must not be empty"}
	}
	if err := b.validEndpoint(); err != nil {
		return err
	}
	switch {
	case b.Username == "":
		return &FieldError{"username", "must not be empty (Redfish services need a user to reset a system)"}
	case b.System != "" && (!strings.HasPrefix(b.System, SystemsPrefix) || len(b.System) == len(SystemsPrefix)):
		return &FieldError{"system", fmt.Sprintf("must be the URI of a ComputerSystem, %sID, got %q", SystemsPrefix, b.System)}
	case b.CAFile != "" && b.Insecure:
		return &FieldError{"insecure", "contradicts ca_file: give the CA that signed the BMC's certificate, or insecure: true, not both"}
	case b.CAFile != "" && strings.HasPrefix(b.Endpoint, "http://"):
		return &FieldError{"ca_file", "applies to https endpoints only"}
	case b.Auth != Session && b.Auth != Basic:
		return &FieldError{"auth", fmt.Sprintf("must be session or basic, got %q", b.Auth)}
	case b.Timeout < 0:
		return &FieldError{"timeout", fmt.Sprintf("must be positive, got %s", b.Timeout)}
	case b.ConfirmTimeout < 0:
		return &FieldError{"confirm_timeout", fmt.Sprintf("must be positive, got %s", b.ConfirmTimeout)}
	}
	if b.UUID != "" {
		if _, err := ParseUUID(b.UUID); err != nil {
			return &FieldError{"uuid", err.Error()}
		}
	}
	return nil
}

func (b BMC) validEndpoint() error {
	u, err := url.Parse(b.Endpoint)
	switch {
	case b.Endpoint == "":
		return &FieldError{"endpoint", "must not be empty (https://ADDRESS[:PORT] of the BMC)"}
	case err != nil:
		return &FieldError{"endpoint", fmt.Sprintf("%q is not a URL", b.Endpoint)}
	case u.Scheme != "https" && u.Scheme != "http":
		return &FieldError{"endpoint", fmt.Sprintf("must start with https:// (the BMC's address), got %q", b.Endpoint)}
	case u.Scheme == "http" && !b.Insecure:
		return &FieldError{"endpoint", "http:// sends the password in clear: use https://, or set insecure: true knowingly"}
	case u.User != nil:
		return &FieldError{"endpoint", "must not hold a user or password: give username and password_env or password_file"}
	case u.Host == "" || u.Hostname() == "":
		return &FieldError{"endpoint", fmt.Sprintf("has no address: %q", b.Endpoint)}
	case u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.Fragment != "":
		return &FieldError{"endpoint", fmt.Sprintf("must be the service's scheme, address and port only (no path: /redfish/v1 is added), got %q", b.Endpoint)}
	}
	return nil
}

// Address is where the BMC is reached, with obvious aliases folded (the default
// port of the scheme, an IP address in canonical form, a name in lower case, the
// loopback names as 127.0.0.1): two entries with the same Address and system reach
// one machine.
func (b BMC) Address() []string {
	u, err := url.Parse(b.withDefaults().Endpoint)
	if err != nil {
		return []string{b.Endpoint}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.Unmap().WithZone("").String(), port)}
	}
	switch host {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	}
	return []string{net.JoinHostPort(host, port)}
}

// SameSystem reports whether a and b reach one machine: the same pinned UUID, or the
// same Address and system (an entry without system means the only one there, so
// it is the same as any system of that service).
func SameSystem(a, b BMC) bool {
	if a.UUID != "" && strings.EqualFold(a.UUID, b.UUID) {
		return true
	}
	shared := false
	for _, x := range a.Address() {
		shared = shared || slices.Contains(b.Address(), x)
	}
	return shared && (a.System == "" || b.System == "" || strings.TrimSuffix(a.System, "/") == strings.TrimSuffix(b.System, "/"))
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ParseUUID checks a UUID as an operator writes it (8-4-4-4-12 hexadecimal digits,
// any case, braces allowed) and returns it in lower case.
func ParseUUID(s string) (string, error) {
	u := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}"))
	if !uuidPattern.MatchString(u) {
		return "", fmt.Errorf("%q is not a UUID (want 8-4-4-4-12 hexadecimal digits, the system's UUID as Redfish shows it)", s)
	}
	if u == "00000000-0000-0000-0000-000000000000" || u == "ffffffff-ffff-ffff-ffff-ffffffffffff" {
		return "", fmt.Errorf("%q means \"no UUID\": pin the system's real UUID or leave uuid out", s)
	}
	return u, nil
}

// Fencer powers hosts off and on and reports their power through their Redfish
// services. It keeps no session between calls: safe for concurrent use.
type Fencer struct {
	bmcs    map[string]BMC
	clients map[string]*http.Client
}

var (
	_ cloud.Fencer     = (*Fencer)(nil)
	_ cloud.Identifier = (*Fencer)(nil)
)

// New checks each BMC (a host may have one), reads their CA files and returns a
// Fencer for them.
func New(bmcs []BMC) (*Fencer, error) {
	f := &Fencer{bmcs: map[string]BMC{}, clients: map[string]*http.Client{}}
	for _, b := range bmcs {
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("Redfish BMC of %q: %w", b.Host, err)
		}
		b = b.withDefaults()
		if b.UUID != "" {
			b.UUID, _ = ParseUUID(b.UUID) // valid: checked above
		}
		if _, dup := f.bmcs[b.Host]; dup {
			return nil, fmt.Errorf("host %s has two Redfish BMCs", b.Host)
		}
		for _, o := range f.bmcs {
			if SameSystem(o, b) {
				return nil, fmt.Errorf("hosts %s and %s reach one system (%s and %s): powering off one would power off the other; give each host its own system",
					min(o.Host, b.Host), max(o.Host, b.Host), o, b)
			}
		}
		c, err := b.httpClient()
		if err != nil {
			return nil, fmt.Errorf("Redfish BMC of %q: %w", b.Host, err)
		}
		f.bmcs[b.Host], f.clients[b.Host] = b, c
	}
	return f, nil
}

// httpClient is the BMC's HTTP client: its TLS trust, and every request bounded by
// the timeout (a BMC that accepts the connection and never answers costs that).
func (b BMC) httpClient() (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: b.Insecure} //nolint:gosec // only when the policy file says insecure: true
	if b.CAFile != "" {
		pem, err := os.ReadFile(b.CAFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, &FieldError{"ca_file", fmt.Sprintf("cannot read %s: %v", b.CAFile, err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &FieldError{"ca_file", fmt.Sprintf("%s holds no PEM certificate", b.CAFile)}
		}
		tc.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:               nil, // a BMC is reached directly, never through the environment's proxy
		DialContext:         (&net.Dialer{Timeout: b.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: b.Timeout,
		DisableKeepAlives:   true, // one call, few requests: BMCs have few connection slots
	}
	return &http.Client{Transport: tr, Timeout: b.Timeout}, nil
}

// Hosts lists the hosts with a Redfish BMC, sorted.
func (f *Fencer) Hosts() []string {
	out := make([]string, 0, len(f.bmcs))
	for h := range f.bmcs {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// BMC returns the host's BMC (with defaults filled in).
func (f *Fencer) BMC(host string) (BMC, bool) {
	b, ok := f.bmcs[host]
	return b, ok
}

// CanFence reports whether the host has a Redfish BMC.
func (f *Fencer) CanFence(host string) bool {
	_, ok := f.bmcs[host]
	return ok
}

// PowerStatus reads the system's PowerState: Off is off; On, PoweringOn,
// PoweringOff and Paused are on (only Off proves a fence); a system without a
// PowerState is an error (ErrFailed).
func (f *Fencer) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	const op = "read the power state"
	p := model.PowerUnknown
	err := f.call(ctx, host, op, 0, func(ctx context.Context, b BMC, sys *schemas.ComputerSystem) error {
		var err error
		p, err = powerOf(b, op, sys.PowerState)
		return err
	})
	if err != nil {
		return model.PowerUnknown, err
	}
	return p, nil
}

func powerOf(b BMC, op string, s schemas.PowerState) (model.Power, error) {
	switch s {
	case schemas.OffPowerState:
		return model.PowerOff, nil
	case schemas.OnPowerState, schemas.PoweringOnPowerState, schemas.PoweringOffPowerState, schemas.PausedPowerState:
		return model.PowerOn, nil
	}
	return model.PowerUnknown, newError(b, op, Failed, fmt.Sprintf("PowerState %q", s), ErrFailed)
}

// PowerOff powers the host off with ComputerSystem.Reset ForceOff (a hard off, no
// graceful shutdown), then reads PowerState until it says Off: it returns nil only
// once the BMC reports the system off. A system already off is left alone. An
// entry that pins a UUID is checked first (terminal ErrWrongSystem otherwise). A
// BMC that accepts the reset and still says on after ConfirmTimeout gives
// ErrNotConfirmed (retryable).
func (f *Fencer) PowerOff(ctx context.Context, host string) error {
	return f.reset(ctx, host, "power it off", schemas.ForceOffResetType, schemas.OffPowerState)
}

// PowerOn powers the host on with ComputerSystem.Reset On (returning it to service;
// not part of fencing) and waits for PowerState On. A system already on is left
// alone.
func (f *Fencer) PowerOn(ctx context.Context, host string) error {
	return f.reset(ctx, host, "power it on", schemas.OnResetType, schemas.OnPowerState)
}

func (f *Fencer) reset(ctx context.Context, host, op string, rt schemas.ResetType, want schemas.PowerState) error {
	b := f.bmcs[host]
	return f.call(ctx, host, op, b.ConfirmTimeout, func(ctx context.Context, b BMC, sys *schemas.ComputerSystem) error {
		if err := checkPin(b, op, sys); err != nil {
			return err
		}
		if sys.PowerState == want {
			return nil
		}
		if allowed, _ := sys.GetSupportedResetTypes(); len(allowed) > 0 && !slices.Contains(allowed, rt) {
			return newError(b, op, Refused, fmt.Sprintf("its ComputerSystem.Reset offers %v, not %s", allowed, rt), ErrRefused)
		}
		if _, err := sys.Reset(rt); err != nil {
			return err
		}
		return awaitPower(ctx, b, op, sys, want)
	})
}

// awaitPower reads the system's PowerState until it is want, for at most the
// confirm timeout.
func awaitPower(ctx context.Context, b BMC, op string, sys *schemas.ComputerSystem, want schemas.PowerState) error {
	start := time.Now()
	deadline := start.Add(b.ConfirmTimeout)
	every := min(time.Second, max(b.ConfirmTimeout/20, 20*time.Millisecond))
	for {
		cur, err := schemas.GetComputerSystem(sys.GetClient(), sys.ODataID)
		if err != nil {
			return err
		}
		if cur.PowerState == want {
			return nil
		}
		notConfirmed := func() error {
			return &Error{Host: b.Host, Endpoint: b.Endpoint, User: b.Username, Op: op, Kind: NotConfirmed,
				Detail:  fmt.Sprintf("ComputerSystem.Reset %s accepted, PowerState still %q", resetOf(want), cur.PowerState),
				Timeout: time.Since(start).Round(time.Millisecond), causes: []error{ErrNotConfirmed}}
		}
		if !time.Now().Before(deadline) {
			return notConfirmed()
		}
		select {
		case <-ctx.Done(): // the caller's patience ended while the BMC answered: still not confirmed
			return notConfirmed()
		case <-time.After(min(every, time.Until(deadline))):
		}
	}
}

func resetOf(want schemas.PowerState) schemas.ResetType {
	if want == schemas.OffPowerState {
		return schemas.ForceOffResetType
	}
	return schemas.OnResetType
}

// Identity is the UUID of the system that the host's entry reaches, in lower case:
// two entries that reach one system give the same string, and it is the SMBIOS
// UUID, as IPMI's system GUID reads for the same machine. A system without a UUID
// is terminal (wraps cloud.ErrNoIdentity).
func (f *Fencer) Identity(ctx context.Context, host string) (string, error) {
	const op = "read its UUID"
	var id string
	err := f.call(ctx, host, op, 0, func(ctx context.Context, b BMC, sys *schemas.ComputerSystem) error {
		var err error
		id, err = uuidOf(b, op, sys)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

func uuidOf(b BMC, op string, sys *schemas.ComputerSystem) (string, error) {
	u, err := ParseUUID(sys.UUID)
	if err != nil {
		return "", newError(b, op, NoUUID, fmt.Sprintf("UUID %q", sys.UUID), cloud.ErrNoIdentity)
	}
	return u, nil
}

// checkPin refuses a system whose entry pins a UUID it does not report.
func checkPin(b BMC, op string, sys *schemas.ComputerSystem) error {
	if b.UUID == "" {
		return nil
	}
	got, err := uuidOf(b, op, sys)
	if err == nil && got == b.UUID {
		return nil
	}
	if err == nil {
		got = "UUID " + got
	} else {
		got = "no UUID"
	}
	return newError(b, op, WrongSystem, fmt.Sprintf("%s reports %s, the policy file pins %s", sys.ODataID, got, b.UUID), ErrWrongSystem)
}

// call connects to the host's BMC (a session, unless basic), finds its system,
// runs fn and logs out, all bounded by the BMC's timeout plus extra (the wait for
// power); errors come back classified (see classify).
func (f *Fencer) call(ctx context.Context, host, op string, extra time.Duration, fn func(context.Context, BMC, *schemas.ComputerSystem) error) error {
	b, ok := f.bmcs[host]
	if !ok {
		return newError(BMC{Host: host}, op, NotConfigured, "", cloud.ErrNotFound)
	}
	bound := b.Timeout + extra
	if d, ok := ctx.Deadline(); ok {
		bound = min(bound, time.Until(d).Round(time.Millisecond))
	}
	callCtx, cancel := context.WithTimeout(ctx, b.Timeout+extra)
	defer cancel()
	c, err := gofish.ConnectContext(callCtx, gofish.ClientConfig{
		Endpoint: b.Endpoint, Username: b.Username, Password: b.Password, BasicAuth: b.Auth == Basic,
		HTTPClient: f.clients[host], NoModifyTransport: true,
	})
	if err != nil {
		return classify(ctx, b, op, bound, err)
	}
	if b.Auth == Session {
		defer logout(c, b.Timeout)
	}
	sys, err := system(c, b, op)
	if err == nil {
		err = fn(callCtx, b, sys)
	}
	if err != nil {
		return classify(ctx, b, op, bound, err)
	}
	return nil
}

// logout deletes the call's session even when the call's time is up (a BMC has few
// session slots), with a short bound of its own since the answer does not matter.
func logout(c *gofish.APIClient, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, 2*time.Second))
	defer cancel()
	c.WithContext(ctx).Logout()
}

// system finds the entry's ComputerSystem: its URI, or the only member of Systems.
func system(c *gofish.APIClient, b BMC, op string) (*schemas.ComputerSystem, error) {
	if b.System != "" {
		return schemas.GetComputerSystem(c, b.System)
	}
	all, err := c.Service.Systems()
	if err != nil {
		return nil, err
	}
	if len(all) != 1 {
		ids := make([]string, 0, len(all))
		for _, s := range all {
			ids = append(ids, s.ODataID)
		}
		return nil, newError(b, op, NoSystem, fmt.Sprintf("the service has %d systems %v: set system to the host's", len(all), ids), errDenied)
	}
	return all[0], nil
}
