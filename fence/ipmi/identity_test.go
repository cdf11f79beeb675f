package ipmi

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	simbmc "github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/vigil-ha/vigil/cloud"
)

// testBMC is a real IPMI BMC in the test's process (go-ipmi's reference server on a
// loopback UDP port, user admin / secret): its device GUID is device, and it
// answers Get System GUID with system, or "invalid command" when system is nil.
// It returns the port and the chassis it powers (on).
func testBMC(t *testing.T, device [16]byte, system *[16]byte) (int, *mock.Chassis) {
	t.Helper()
	h := mock.New()
	chassis := h.Chassis().(*mock.Chassis)
	chassis.On = true
	b := simbmc.New(simbmc.DeviceInfo{DeviceID: 1, IPMIVersion: 0x20, ManufacturerID: 0x000157, ProductID: 1}, device, h,
		simbmc.WithClock(clock.Real))
	u, err := b.Users.Add(2, "admin")
	if err != nil {
		t.Fatal(err)
	}
	u.SetPassword([]byte(secret))
	u.Enabled = true
	u.ChannelAccess[1] = simbmc.UserChannelAccess{MaxPrivilege: simbmc.PrivilegeLevelAdministrator, Enabled: true}
	reg := handlers.NewRegistry()
	handlers.RegisterAllHandlers(reg)
	if system != nil {
		g := *system
		reg.RegisterFunc(types.CommandGetSystemGUID, func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
			return g[:], types.CodeOK, nil
		})
	}
	if device == ([16]byte{}) {
		// A BMC without the device command either (all-zero device GUID stands for that here).
		reg.RegisterFunc(types.CommandGetDeviceGUID, func(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
			return nil, types.CodeInvalidCommand, nil
		})
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(b, udp.Wrap(pc), server.WithHandlerRegistry(reg))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); _ = srv.Close(); _ = pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).Port, chassis
}

// smbios is the wire form of the GUID 00112233-4455-6677-8899-aabbccddeeff (the
// example of SMBIOS 7.2.1), with its last byte set to last.
func smbios(last byte) [16]byte {
	return [16]byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, last}
}

func TestFormatGUIDAsIpmitoolPrintsIt(t *testing.T) {
	if got, want := FormatGUID(smbios(0xff)), "00112233-4455-6677-8899-aabbccddeeff"; got != want {
		t.Fatalf("FormatGUID = %s, want %s", got, want)
	}
}

func TestIdentity(t *testing.T) {
	sysA, sysB := smbios(0x01), smbios(0x02)
	var zero [16]byte
	withSystem, _ := testBMC(t, smbios(0xd1), &sysA)
	other, _ := testBMC(t, smbios(0xd2), &sysB)
	deviceOnly, _ := testBMC(t, smbios(0xd3), nil)   // go-ipmi's server: no Get System GUID
	zeroSystem, _ := testBMC(t, smbios(0xd4), &zero) // answers "not present"
	noGUID, _ := testBMC(t, [16]byte{}, nil)         // neither command
	f, err := New([]BMC{bmc("h1", withSystem), bmc("h2", other), bmc("h3", deviceOnly), bmc("h4", zeroSystem),
		bmc("h5", noGUID)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct{ host, want string }{
		{"h1", "00112233-4455-6677-8899-aabbccddee01"}, // the system GUID
		{"h2", "00112233-4455-6677-8899-aabbccddee02"}, // another BMC, another GUID
		{"h3", "00112233-4455-6677-8899-aabbccddeed3"}, // no system GUID: the device's
		{"h4", "00112233-4455-6677-8899-aabbccddeed4"}, // system GUID "not present": the device's
	} {
		got, err := f.Identity(ctx, c.host)
		if err != nil || got != c.want {
			t.Errorf("Identity(%s) = %q, %v; want %s", c.host, got, err, c.want)
		}
	}
	_, err = f.Identity(ctx, "h5")
	var e *Error
	if !errors.Is(err, ErrNoGUID) || !cloud.IsTerminal(err) || !errors.As(err, &e) || e.Kind != NoGUID {
		t.Errorf("BMC without GUID: %v, want terminal ErrNoGUID", err)
	} else if want := "BMC of h5 at 127.0.0.1:"; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "gives no GUID") {
		t.Errorf("message %q", err)
	}
	if _, err := f.Identity(ctx, "nowhere"); !errors.Is(err, cloud.ErrNotFound) || !cloud.IsTerminal(err) {
		t.Errorf("host without BMC: %v", err)
	}

	wrong := bmc("h1", withSystem)
	wrong.Password = "not-" + secret
	fw, _ := New([]BMC{wrong})
	if _, err := fw.Identity(ctx, "h1"); !cloud.IsTerminal(err) || !strings.Contains(err.Error(), "refused user admin") || strings.Contains(err.Error(), secret) {
		t.Errorf("wrong password: %v, want a terminal refusal without the password", err)
	}
}

// A BMC that never answers: retryable, within its timeout, as PowerStatus.
func TestIdentityOfSilentBMCIsUnavailable(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := bmc("h1", conn.LocalAddr().(*net.UDPAddr).Port)
	b.Timeout = time.Second
	f, _ := New([]BMC{b})
	start := time.Now()
	_, err = f.Identity(context.Background(), "h1")
	if took := time.Since(start); took > 2*time.Second || !errors.Is(err, cloud.ErrUnavailable) || cloud.IsTerminal(err) ||
		!strings.Contains(err.Error(), "did not answer within 1s (could not read its GUID)") {
		t.Errorf("took %s: %v", took, err)
	}
}

func TestParseGUID(t *testing.T) {
	for in, want := range map[string]string{
		"00112233-4455-6677-8899-AABBCCDDEEFF":    "00112233-4455-6677-8899-aabbccddeeff",
		" {00112233-4455-6677-8899-aabbccddeeff}": "00112233-4455-6677-8899-aabbccddeeff",
	} {
		if got, err := ParseGUID(in); err != nil || got != want {
			t.Errorf("ParseGUID(%q) = %q, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0011223344556677", "00112233-4455-6677-8899-aabbccddeefg", "00112233-4455-6677-8899-aabbccddeeff0",
		"00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID(%q) accepted", bad)
		}
	}
}

// A pinned GUID: PowerOff goes ahead when the BMC reports it, and is refused
// (terminal, the host left on) when it reports another or none.
func TestPowerOffChecksThePinnedGUID(t *testing.T) {
	sys := smbios(0x01)
	port, chassis := testBMC(t, smbios(0xd1), &sys)
	noneport, nonechassis := testBMC(t, [16]byte{}, nil)
	right, wrong, none := bmc("h1", port), bmc("h2", port+0), bmc("h3", noneport)
	right.GUID = "00112233-4455-6677-8899-AABBCCDDEE01"
	wrong.GUID = "00112233-4455-6677-8899-aabbccddee02"
	none.GUID = right.GUID
	ctx := context.Background()
	for _, b := range []BMC{wrong, none} {
		f, err := New([]BMC{b})
		if err != nil {
			t.Fatal(err)
		}
		err = f.PowerOff(ctx, b.Host)
		var e *Error
		if !errors.Is(err, ErrWrongBMC) || !cloud.IsTerminal(err) || !errors.As(err, &e) || e.Kind != WrongBMC {
			t.Fatalf("%s: PowerOff through a BMC that is not the pinned one: %v, want terminal ErrWrongBMC", b.Host, err)
		}
		if !strings.Contains(err.Error(), "the policy file pins "+strings.ToLower(b.GUID)) || !strings.Contains(err.Error(), "refused to power it off") {
			t.Errorf("%s: message %q", b.Host, err)
		}
		t.Logf("%s: %v", b.Host, err)
	}
	on := func(c *mock.Chassis) bool { on, _ := c.PowerState(ctx); return on } // under the mock's lock
	if !on(chassis) || !on(nonechassis) {
		t.Fatal("a refused power off powered a host off")
	}
	f, err := New([]BMC{right})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.PowerOff(ctx, "h1"); err != nil || on(chassis) {
		t.Fatalf("PowerOff through the pinned BMC: %v (chassis on: %v)", err, on(chassis))
	}
}

func TestNewRefusesTwoHostsOnOneBMC(t *testing.T) {
	with := func(host, addr string, port int) BMC {
		b := bmc(host, port)
		b.Address = addr
		return b
	}
	same := [][2]BMC{
		{with("h1", "127.0.0.1", 9011), with("h3", "127.0.0.1", 9011)},
		{with("h1", "127.0.0.1", 9011), with("h3", "localhost", 9011)},
		{with("h1", "::1", 9011), with("h3", "LocalHost.", 9011)},
		{with("h1", "::ffff:10.0.0.5", 623), with("h3", "10.0.0.5", 0)},
		{with("h1", "BMC1.example", 623), with("h3", "bmc1.example.", 623)},
		{with("h1", "[fe80::1]", 623), with("h3", "fe80::1", 623)},
	}
	for _, c := range same {
		_, err := New(c[:])
		if err == nil || !strings.Contains(err.Error(), "hosts h1 and h3 share one BMC") {
			t.Errorf("%s and %s: %v, want a refusal naming both hosts", c[0].Addr(), c[1].Addr(), err)
		}
	}
	pinned := [2]BMC{with("h1", "10.0.0.1", 623), with("h3", "10.0.0.3", 623)}
	pinned[0].GUID, pinned[1].GUID = "00112233-4455-6677-8899-aabbccddee01", "{00112233-4455-6677-8899-AABBCCDDEE01}"
	if _, err := New(pinned[:]); err == nil || !strings.Contains(err.Error(), "hosts h1 and h3 share one BMC") {
		t.Errorf("two hosts pinning one GUID: %v", err)
	}
	apart := [][2]BMC{
		{with("h1", "127.0.0.1", 9011), with("h3", "127.0.0.1", 9013)},
		{with("h1", "127.0.0.1", 9011), with("h3", "127.0.0.2", 9011)},
		{with("h1", "bmc1.example", 623), with("h3", "bmc3.example", 623)},
	}
	for _, c := range apart {
		if _, err := New(c[:]); err != nil {
			t.Errorf("%s and %s: %v", c[0].Addr(), c[1].Addr(), err)
		}
	}
	bad := bmc("h1", 9011)
	bad.GUID = "not-a-guid"
	var fe *FieldError
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Field != "guid" {
		t.Errorf("bad guid: %v", err)
	}
}

// Vectors: the bytes three of the peer's BMCs (ipmi_sim) sent, and what
// `ipmitool mc guid` 1.8.19 printed for each (it guesses the order per GUID).
func TestPinsAnyOrderToolsPrint(t *testing.T) {
	hex := func(s string) (g [16]byte) {
		for i := range g {
			var v byte
			for _, c := range s[2*i : 2*i+2] {
				v = v<<4 | byte(strings.IndexRune("0123456789abcdef", c))
			}
			g[i] = v
		}
		return g
	}
	g1, g2, g3 := hex("f4231f5b9f5a42318f919edda503c165"), hex("765e1d4efce24ff29af6a67055ed0c5d"), hex("c756ef7beb8e4889a945e15506aaec8e")
	for _, c := range []struct {
		pin  string
		g    [16]byte
		want bool
	}{
		{"5b1f23f4-5a9f-3142-8f91-9edda503c165", g1, true}, // ipmitool: SMBIOS
		{"765e1d4e-fce2-4ff2-9af6-a67055ed0c5d", g2, true}, // ipmitool: RFC4122
		{"8eecaa06-55e1-45a9-8948-8eeb7bef56c7", g3, true}, // ipmitool: IPMI
		{FormatGUID(g1), g1, true},                         // what Identity reports
		{"5b1f23f4-5a9f-3142-8f91-9edda503c165", g2, false},
		{"8eecaa06-55e1-45a9-8948-8eeb7bef56c7", g1, false},
	} {
		if got := Pins(c.pin, c.g); got != c.want {
			t.Errorf("Pins(%s, %x) = %v, want %v", c.pin, c.g, got, c.want)
		}
	}
	if FormatGUID(g1) != "5b1f23f4-5a9f-3142-8f91-9edda503c165" {
		t.Errorf("FormatGUID(%x) = %s, want the SMBIOS order", g1, FormatGUID(g1))
	}
}
