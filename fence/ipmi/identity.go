package ipmi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/vigil-ha/vigil/cloud"
)

var _ cloud.Identifier = (*Fencer)(nil)

// ErrNoGUID: the BMC answered but gives no GUID (neither command implemented, or
// both report "not present"). Retrying will not change that; it is
// cloud.ErrNoIdentity (nothing to compare), not a reason to distrust the BMC.
var ErrNoGUID = fmt.Errorf("BMC has no GUID: %w", cloud.ErrNoIdentity)

// Identity is the GUID of the BMC that the host's entry reaches, as a lower-case
// UUID string (8-4-4-4-12, the bytes read in SMBIOS order: see FormatGUID). It asks
// Get System GUID (what `ipmitool mc guid` prints) and, where the BMC does not
// implement that command or reports no GUID, Get Device GUID (the controller's
// own). Two entries that reach one BMC give the same string. Errors are classified
// as PowerStatus's are: a BMC that does not answer is retryable
// (cloud.ErrUnavailable); one that answers without any GUID is terminal (ErrNoGUID).
func (f *Fencer) Identity(ctx context.Context, host string) (string, error) {
	var id string
	err := f.session(ctx, host, "read its GUID", func(ctx context.Context, c *client.Client) error {
		g, err := f.readGUID(ctx, host, c)
		id = FormatGUID(g)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// readGUID asks for the system GUID, then the device GUID (see Identity).
func (f *Fencer) readGUID(ctx context.Context, host string, c *client.Client) ([16]byte, error) {
	sys, err := c.GetSystemGUID(ctx)
	if err == nil && present(sys.GUID) {
		return sys.GUID, nil
	}
	if err != nil && !unsupported(err) {
		return [16]byte{}, err
	}
	dev, err := c.GetDeviceGUID(ctx)
	if err == nil && present(dev.GUID) {
		return dev.GUID, nil
	}
	if err != nil && !unsupported(err) {
		return [16]byte{}, err
	}
	b := f.bmcs[host]
	return [16]byte{}, cloud.Terminal(&Error{Host: host, Addr: b.Addr(), User: b.Username, Op: "read its GUID", Kind: NoGUID,
		causes: []error{ErrNoGUID}})
}

// ErrWrongBMC: the BMC reports a GUID other than the one its entry pins.
var ErrWrongBMC = errors.New("BMC is not the one pinned")

// checkPin refuses a BMC whose entry pins a GUID it does not report.
func (f *Fencer) checkPin(ctx context.Context, host string, c *client.Client) error {
	b := f.bmcs[host]
	if b.GUID == "" {
		return nil
	}
	g, err := f.readGUID(ctx, host, c)
	if err != nil && !errors.Is(err, ErrNoGUID) {
		return err
	}
	if err == nil && Pins(b.GUID, g) {
		return nil
	}
	got := "no GUID"
	if err == nil {
		got = "GUID " + FormatGUID(g)
	}
	return cloud.Terminal(&Error{Host: host, Addr: b.Addr(), User: b.Username, Op: "power it off", Kind: WrongBMC,
		Detail: fmt.Sprintf("it reports %s, the policy file pins %s", got, b.GUID), causes: []error{ErrWrongBMC}})
}

// Pins reports whether pin (as ParseGUID returns it) names the GUID whose bytes a
// BMC sent, read in any of the three orders tools print (SMBIOS, IPMI's
// least-significant byte first, RFC 4122): ipmitool picks one by guessing per
// GUID, so an operator may have copied any of them.
func Pins(pin string, g [16]byte) bool {
	for _, mode := range []types.GUIDMode{types.GUIDModeSMBIOS, types.GUIDModeIPMI, types.GUIDModeRFC4122} {
		if u, err := types.ParseGUID(g[:], mode); err == nil && u.String() == pin {
			return true
		}
	}
	return false
}

// unsupported: the BMC answered that it does not implement the command (completion
// code 0xC1 invalid command, 0xC2 invalid for the LUN).
func unsupported(err error) bool {
	var re *types.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	cc := re.CompletionCode()
	return cc == types.CodeInvalidCommand || cc == types.CodeInvalidCommandForLUN
}

// present: all 00h and all FFh mean no GUID (SMBIOS 7.2.1, which IPMI's GUIDs follow).
func present(g [16]byte) bool {
	var zero, ones [16]byte
	for i := range ones {
		ones[i] = 0xff
	}
	return g != zero && g != ones
}

// FormatGUID renders the 16 bytes a BMC sends in SMBIOS order (the first three
// fields little-endian; what go-ipmi prints and, on most servers, what
// `dmidecode -s system-uuid` shows for the same machine).
func FormatGUID(g [16]byte) string {
	u, err := types.ParseGUID(g[:], types.GUIDModeSMBIOS)
	if err != nil { // cannot happen: 16 bytes
		return fmt.Sprintf("%x", g[:])
	}
	return u.String()
}

var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ParseGUID checks a GUID as an operator writes it (8-4-4-4-12 hexadecimal digits,
// any case, braces allowed) and returns it in lower case.
func ParseGUID(s string) (string, error) {
	g := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}"))
	if !guidPattern.MatchString(g) {
		return "", fmt.Errorf("%q is not a GUID (want 8-4-4-4-12 hexadecimal digits, as `ipmitool mc guid` prints it)", s)
	}
	if g == "00000000-0000-0000-0000-000000000000" || g == "ffffffff-ffff-ffff-ffff-ffffffffffff" {
		return "", fmt.Errorf("%q means \"no GUID\" to IPMI: pin the BMC's real GUID or leave guid out", s)
	}
	return g, nil
}
