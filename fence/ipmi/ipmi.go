package ipmi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// Interface is the IPMI LAN protocol a BMC is spoken to with.
type Interface string

const (
	Lanplus Interface = "lanplus" // IPMI 2.0, RMCP+ (the default)
	Lan     Interface = "lan"     // IPMI 1.5 (MD5 challenge; no encryption: avoid)
)

// Defaults for the fields of a BMC left zero.
const (
	DefaultPort        = 623
	DefaultCipherSuite = 3 // HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128: what ipmitool uses
	DefaultTimeout     = 5 * time.Second
)

// BMC is how to reach one host's baseboard management controller.
type BMC struct {
	Host        string // the host it powers, as the cloud names it (Nova's hypervisor host)
	Address     string // IP address or name of the BMC
	Port        int    // UDP port, default 623
	Username    string
	Password    string        // never logged, never in an error
	Interface   Interface     // Lanplus (default) or Lan
	CipherSuite int           // RMCP+ cipher suite (lanplus only), default 3
	Timeout     time.Duration // bound of each call (session setup and command), default 5 s
	// GUID, when set, is the GUID the BMC must report (see Identity; the form
	// ParseGUID returns): PowerOff refuses a BMC that reports another one.
	GUID string
}

// Addr is the BMC's address and port (the default port if none), as errors name it.
func (b BMC) Addr() string { return net.JoinHostPort(b.Address, strconv.Itoa(b.withDefaults().Port)) }

// String describes the BMC without its password.
func (b BMC) String() string {
	return fmt.Sprintf("BMC of %s at %s (%s, user %s)", b.Host, b.Addr(), b.Interface, b.Username)
}

// GoString keeps %#v from printing the password.
func (b BMC) GoString() string { return "ipmi.BMC{" + b.String() + "}" }

// LogValue keeps slog from printing the password.
func (b BMC) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", b.Host), slog.String("addr", b.Addr()),
		slog.String("interface", string(b.Interface)), slog.String("user", b.Username))
}

// withDefaults fills the fields left zero.
func (b BMC) withDefaults() BMC {
	if b.Port == 0 {
		b.Port = DefaultPort
	}
	if b.Interface == "" {
		b.Interface = Lanplus
	}
	if b.CipherSuite == 0 && b.Interface == Lanplus {
		b.CipherSuite = DefaultCipherSuite
	}
	if b.Timeout == 0 {
		b.Timeout = DefaultTimeout
	}
	return b
}

// FieldError is a bad field of a BMC's configuration; Field is the field's name in
// the policy file ("port", "cipher_suite", ...), so the caller can prefix its path.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks a BMC's fields (after defaults), naming the first bad one.
func (b BMC) Validate() error {
	b = b.withDefaults()
	switch {
	case b.Host == "":
		return &FieldError{"name", "must not be empty"}
	case b.Address == "":
		return &FieldError{"address", "must not be empty"}
	case b.Port < 1 || b.Port > 65535:
		return &FieldError{"port", fmt.Sprintf("must be in 1..65535, got %d", b.Port)}
	case b.Username == "":
		return &FieldError{"username", "must not be empty (BMCs here have no anonymous user)"}
	case len(b.Username) > 16:
		return &FieldError{"username", fmt.Sprintf("IPMI user names have at most 16 characters, got %d", len(b.Username))}
	case b.Interface != Lanplus && b.Interface != Lan:
		return &FieldError{"interface", fmt.Sprintf("must be lanplus or lan, got %q", b.Interface)}
	case b.Interface == Lanplus && (b.CipherSuite < 0 || b.CipherSuite > 19):
		return &FieldError{"cipher_suite", fmt.Sprintf("must be an RMCP+ cipher suite (0..19), got %d", b.CipherSuite)}
	case b.Interface == Lan && b.CipherSuite != 0:
		return &FieldError{"cipher_suite", "applies to interface lanplus only"}
	case b.Timeout < 0:
		return &FieldError{"timeout", fmt.Sprintf("must be positive, got %s", b.Timeout)}
	case len(b.Password) > 20:
		// IPMI 2.0 passwords have at most 20 bytes (16 for IPMI 1.5); the length only.
		return &FieldError{"password", fmt.Sprintf("IPMI passwords have at most 20 characters, got %d", len(b.Password))}
	case b.Interface == Lan && len(b.Password) > 16:
		return &FieldError{"password", fmt.Sprintf("IPMI 1.5 passwords have at most 16 characters, got %d", len(b.Password))}
	}
	if b.GUID != "" {
		if _, err := ParseGUID(b.GUID); err != nil {
			return &FieldError{"guid", err.Error()}
		}
	}
	return nil
}

// Endpoint is where a BMC is reached, with obvious aliases folded: an IP address
// in its canonical form (an IPv4-mapped IPv6 address as IPv4), a host name in lower
// case without a trailing dot, and "localhost" as the loopback addresses. Two BMCs
// whose endpoints share an address on the same port are one BMC. Names are not
// looked up (a policy file must load the same way with or without DNS).
func (b BMC) Endpoint() []string {
	b = b.withDefaults()
	port := strconv.Itoa(b.Port)
	addr := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(b.Address)), ".")
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if ip, err := netip.ParseAddr(addr); err == nil {
		return []string{net.JoinHostPort(ip.Unmap().WithZone("").String(), port)}
	}
	switch addr {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback":
		return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	}
	return []string{net.JoinHostPort(addr, port)}
}

// SameBMC reports whether a and b reach one BMC by their addresses (Endpoint) or
// pin one GUID.
func SameBMC(a, b BMC) bool {
	if a.GUID != "" && strings.EqualFold(strings.Trim(a.GUID, "{}"), strings.Trim(b.GUID, "{}")) {
		return true
	}
	for _, x := range a.Endpoint() {
		if slices.Contains(b.Endpoint(), x) {
			return true
		}
	}
	return false
}

// Fencer powers hosts off and reports their power through their BMCs. It holds no
// session and no state but its configuration: safe for concurrent use.
type Fencer struct {
	bmcs map[string]BMC
}

var _ cloud.Fencer = (*Fencer)(nil)

// New checks each BMC (a host may have one) and returns a Fencer for them.
func New(bmcs []BMC) (*Fencer, error) {
	f := &Fencer{bmcs: make(map[string]BMC, len(bmcs))}
	for _, b := range bmcs {
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("BMC of %q: %w", b.Host, err)
		}
		if _, dup := f.bmcs[b.Host]; dup {
			return nil, fmt.Errorf("host %s has two BMCs", b.Host)
		}
		if b.GUID != "" {
			b.GUID, _ = ParseGUID(b.GUID) // valid: checked above
		}
		for _, o := range f.bmcs {
			if SameBMC(o, b) {
				return nil, fmt.Errorf("hosts %s and %s share one BMC (%s and %s): powering off one would power off the other; give each host its own BMC",
					min(o.Host, b.Host), max(o.Host, b.Host), o.Addr(), b.Addr())
			}
		}
		f.bmcs[b.Host] = b.withDefaults()
	}
	return f, nil
}

// Hosts lists the hosts with a BMC, sorted.
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

// CanFence reports whether the host has a BMC.
func (f *Fencer) CanFence(host string) bool {
	_, ok := f.bmcs[host]
	return ok
}

// PowerStatus asks the host's BMC for its chassis power.
func (f *Fencer) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	var p model.Power
	err := f.session(ctx, host, "read the power state", func(ctx context.Context, c *client.Client) error {
		on, err := powerIsOn(ctx, c)
		p = powerOf(on)
		return err
	})
	if err != nil {
		return model.PowerUnknown, err
	}
	return p, nil
}

// PowerOff powers the host off (chassis control "power down": a hard off, no
// graceful shutdown). A host already off is left alone: success. A BMC whose
// entry pins a GUID is asked for its GUID first, in the same session, and one that
// reports another is refused (terminal, ErrWrongBMC): it may power another
// machine. It returns once the BMC accepted the request; PowerStatus confirms the
// effect.
func (f *Fencer) PowerOff(ctx context.Context, host string) error {
	return f.session(ctx, host, "power it off", func(ctx context.Context, c *client.Client) error {
		if err := f.checkPin(ctx, host, c); err != nil {
			return err
		}
		on, err := powerIsOn(ctx, c)
		if err != nil || !on {
			return err
		}
		_, err = c.ChassisControl(ctx, chassis.ChassisControlPowerDown)
		return err
	})
}

// PowerOn powers the host on (returning it to service; not part of fencing). A host
// already on is left alone. It returns once the BMC accepted the request.
func (f *Fencer) PowerOn(ctx context.Context, host string) error {
	return f.session(ctx, host, "power it on", func(ctx context.Context, c *client.Client) error {
		on, err := powerIsOn(ctx, c)
		if err != nil || on {
			return err
		}
		_, err = c.ChassisControl(ctx, chassis.ChassisControlPowerUp)
		return err
	})
}

func powerIsOn(ctx context.Context, c *client.Client) (bool, error) {
	st, err := c.GetChassisStatus(ctx)
	if err != nil {
		return false, err
	}
	return st.PowerIsOn, nil
}

func powerOf(on bool) model.Power {
	if on {
		return model.PowerOn
	}
	return model.PowerOff
}

// session opens a session with the host's BMC, runs fn in it and closes it, all
// within the BMC's timeout; errors come back classified (see classify).
func (f *Fencer) session(ctx context.Context, host, op string, fn func(context.Context, *client.Client) error) error {
	b, ok := f.bmcs[host]
	if !ok {
		return cloud.Terminal(&Error{Host: host, Op: op, Kind: NotConfigured, causes: []error{cloud.ErrNotFound}})
	}
	bound := b.Timeout
	if d, ok := ctx.Deadline(); ok {
		bound = min(bound, time.Until(d).Round(time.Millisecond))
	}
	callCtx, cancel := context.WithTimeout(ctx, b.Timeout)
	defer cancel()
	c, err := b.client()
	if err != nil {
		return classify(ctx, b, op, bound, err)
	}
	if err := c.Connect(callCtx); err != nil {
		closeNow(c) // frees the socket; there is no session to close
		return classify(ctx, b, op, bound, err)
	}
	err = fn(callCtx, c)
	// Close the session even when the call's time is up: a BMC has few session
	// slots. A short bound of its own, since the answer does not matter.
	closeCtx, cancelClose := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_ = c.Close(closeCtx)
	cancelClose()
	if err != nil {
		return classify(ctx, b, op, bound, err)
	}
	return nil
}

// client builds a go-ipmi client for one call. Each exchange waits as long as
// ipmitool's (1 s for lanplus, 2 s for lan) and is retried until the call's time
// is up: UDP loses packets, and a BMC that never answers costs exactly the timeout.
func (b BMC) client() (*client.Client, error) {
	c, err := client.NewClient(b.Address, b.Port, b.Username, b.Password)
	if err != nil {
		return nil, err
	}
	per := time.Second
	if b.Interface == Lan {
		per = 2 * time.Second
	}
	per = min(per, b.Timeout)
	c.WithInterface(client.Interface(b.Interface)).WithTimeout(per).WithRetry(int(b.Timeout / per))
	// Chassis control needs the operator privilege; ask for no more.
	c.WithMaxPrivilegeLevel(types.PrivilegeLevelOperator)
	if b.Interface == Lanplus {
		c.WithCipherSuiteID(types.CipherSuiteID(b.CipherSuite))
	}
	return c, nil
}

func closeNow(c *client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Close(ctx)
}
