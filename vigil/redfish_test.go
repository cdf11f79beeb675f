package vigil

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/ipmi"
	"github.com/vigil-ha/vigil/fence/redfish"
	"github.com/vigil-ha/vigil/model"
	rfsim "github.com/vigil-ha/vigil/test/redfish"
)

func TestParseConfigRedfish(t *testing.T) {
	t.Setenv("TEST_REDFISH_PW", "rf-from-env")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("rf-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(`
fencing:
  hosts:
    - name: fake-compute-1
      ipmi: {address: 127.0.0.1, port: 9011, username: admin, password: ipmi-pw}
    - redfish: {endpoint: "https://bmc2.example:8443", username: root, password_env: TEST_REDFISH_PW,
                system: /redfish/v1/Systems/System.Embedded.1, ca_file: /etc/vigil/ca.pem, timeout: 3s,
                confirm_timeout: 20s, auth: basic, uuid: "{4C4C4544-0042-3510-8052-B4C04F4D4E31}"}
      name: fake-compute-2
    - name: fake-compute-3
      redfish: {endpoint: "http://127.0.0.1:8000", insecure: true, username: admin, password_file: ` + pwFile + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Fencing) != 1 || cfg.Fencing[0].Host != "fake-compute-1" {
		t.Errorf("IPMI hosts: %v", cfg.Fencing)
	}
	want := []redfish.BMC{
		{Host: "fake-compute-2", Endpoint: "https://bmc2.example:8443", Username: "root", Password: "rf-from-env",
			System: "/redfish/v1/Systems/System.Embedded.1", CAFile: "/etc/vigil/ca.pem", Timeout: 3 * time.Second,
			ConfirmTimeout: 20 * time.Second, Auth: redfish.Basic, UUID: "4c4c4544-0042-3510-8052-b4c04f4d4e31"},
		{Host: "fake-compute-3", Endpoint: "http://127.0.0.1:8000", Insecure: true, Username: "admin", Password: "rf-from-file"},
	}
	if len(cfg.Redfish) != len(want) {
		t.Fatalf("Redfish hosts: %v", cfg.Redfish)
	}
	for i := range want {
		if cfg.Redfish[i] != want[i] {
			t.Errorf("redfish[%d]: %#v, want %#v", i, cfg.Redfish[i], want[i])
		}
	}

	host := func(entry string) string {
		return "fencing:\n  hosts:\n    - name: h0\n      ipmi: {address: 10.0.0.1, username: admin, password: pw}\n" +
			"    - name: h1\n      " + entry + "\n"
	}
	rf := func(fields string) string { return host("redfish: {" + fields + "}") }
	base := "endpoint: https://10.0.0.2, username: admin, password: pw"
	bad := []struct{ src, want string }{
		{rf("username: admin, password: pw"), "policy file:6: fencing.hosts[1].redfish.endpoint: missing: give the BMC's Redfish service, https://ADDRESS[:PORT]"},
		{rf("endpoint: 10.0.0.2, username: admin, password: pw"), "fencing.hosts[1].redfish.endpoint: \"10.0.0.2\" has no https:// scheme: give https://ADDRESS[:PORT]"},
		{rf("endpoint: http://10.0.0.2, username: admin, password: pw"), "fencing.hosts[1].redfish.endpoint: http:// sends the password in clear"},
		{rf("endpoint: https://10.0.0.2/redfish/v1, username: admin, password: pw"), "fencing.hosts[1].redfish.endpoint: \"https://10.0.0.2/redfish/v1\" has a path: give the service's scheme, address and port only"},
		{rf("endpoint: https://10.0.0.2, password: pw"), "fencing.hosts[1].redfish.username: missing: give the BMC user's name"},
		{rf("endpoint: https://10.0.0.2, username: admin"), "fencing.hosts[1].redfish: no password"},
		{rf(base + ", password_env: TEST_REDFISH_PW"), "fencing.hosts[1].redfish: password and password_env: give only one"},
		{rf("endpoint: https://a, username: u, password_env: TEST_REDFISH_UNSET"), "fencing.hosts[1].redfish.password_env: environment variable TEST_REDFISH_UNSET is not set"},
		{rf(base + ", system: Systems/1"), "fencing.hosts[1].redfish.system: must be the URI of a ComputerSystem"},
		{rf(base + ", ca_file: ca.pem, insecure: true"), "fencing.hosts[1].redfish.insecure: contradicts ca_file"},
		{rf(base + ", insecure: maybe"), "fencing.hosts[1].redfish.insecure: \"maybe\" is not true or false: give true or false"},
		{rf(base + ", auth: digest"), "fencing.hosts[1].redfish.auth: must be session or basic"},
		{rf(base + ", timeout: 0s"), "fencing.hosts[1].redfish.timeout: 0s is not positive"},
		{rf(base + ", confirm_timeout: soon"), "fencing.hosts[1].redfish.confirm_timeout: \"soon\" is not a duration"},
		{rf(base + ", uuid: 1234"), "fencing.hosts[1].redfish.uuid: \"1234\" is not a UUID"},
		{rf(base + ", port: 443"), "fencing.hosts[1].redfish.port: unknown field"},
		{rf(base + ", endpont: https://10.0.0.3"), "policy file:6: fencing.hosts[1].redfish.endpont: unknown field (did you mean endpoint?): known fields are endpoint, username"},
		{rf("endpoint: 'https://admin:pw@10.0.0.2', username: admin, password_env: TEST_REDFISH_PW"), "fencing.hosts[1].redfish.endpoint: holds a user or password: give the service's address only"},
		{rf("endpoint: 'ftp://admin:pw@10.0.0.2', username: admin, password_env: TEST_REDFISH_PW"), "fencing.hosts[1].redfish.endpoint: holds a user or password"},
		{rf(base + ", password: pw2"), "fencing.hosts[1].redfish.password: given twice"},
		{host("redfish: {" + base + "}\n      ipmi: {address: 10.0.0.3, username: admin, password: pw}"), "policy file:7: fencing.hosts[1]: both ipmi and redfish given: give one of them"},
		{"fencing:\n  hosts:\n    - name: h0\n", "fencing.hosts[0].ipmi: missing: give how to reach the host's BMC: ipmi (address, username, password_env) or redfish (endpoint, username, password_env)"},
		{"fencing:\n  hosts:\n    - name: h0\n      redfish: {" + base + "}\n    - name: h0\n      ipmi: {address: b, username: u, password: p}\n", "fencing.hosts[1].name: host \"h0\" is listed twice"},
	}
	for _, b := range bad {
		_, err := ParseConfig([]byte(b.src))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q:\n  error %v\n  want it to mention %q", b.src, err, b.want)
		}
		if err != nil && (strings.Contains(err.Error(), "rf-from-env") || strings.Contains(err.Error(), ": pw")) {
			t.Errorf("%q: error %q shows a password", b.src, err)
		}
	}
}

// Two hosts whose entries reach one machine, through Redfish or through Redfish
// and IPMI: refused at load, naming both hosts.
func TestParseConfigRefusesOneSystemForTwoHosts(t *testing.T) {
	two := func(a, b string) string {
		return "fencing:\n  hosts:\n    - name: h1\n      " + a + "\n    - name: h2\n      " + b + "\n"
	}
	const cred = "username: admin, password: pw"
	cases := []struct{ a, b, want string }{
		{"redfish: {endpoint: https://10.0.0.5, " + cred + "}", "redfish: {endpoint: 'https://10.0.0.5:443', system: /redfish/v1/Systems/1, " + cred + "}",
			"fencing.hosts[1].redfish.system: hosts h1 and h2 reach one system, https://10.0.0.5 (its only system) (fencing.hosts[0].redfish)"},
		{"redfish: {endpoint: https://localhost:8443, system: /redfish/v1/Systems/1, " + cred + "}", "redfish: {endpoint: 'https://127.0.0.1:8443', system: /redfish/v1/Systems/1, " + cred + "}",
			"hosts h1 and h2 reach one system"},
		{"redfish: {endpoint: https://a, uuid: 4c4c4544-0042-3510-8052-b4c04f4d4e31, " + cred + "}", "redfish: {endpoint: https://b, uuid: 4C4C4544-0042-3510-8052-B4C04F4D4E31, " + cred + "}",
			"fencing.hosts[1].redfish.uuid: hosts h1 and h2 pin the same system UUID"},
		{"ipmi: {address: 10.0.0.9, guid: 4c4c4544-0042-3510-8052-b4c04f4d4e31, " + cred + "}", "redfish: {endpoint: https://b, uuid: 4c4c4544-0042-3510-8052-b4c04f4d4e31, " + cred + "}",
			"fencing.hosts[1].redfish.uuid: hosts h1 and h2 pin the same machine 4c4c4544-0042-3510-8052-b4c04f4d4e31 (fencing.hosts[0].ipmi.guid)"},
		{"redfish: {endpoint: https://b, uuid: 4c4c4544-0042-3510-8052-b4c04f4d4e31, " + cred + "}", "ipmi: {address: 10.0.0.9, guid: 4C4C4544-0042-3510-8052-B4C04F4D4E31, " + cred + "}",
			"policy file:6: fencing.hosts[1].ipmi.guid: hosts h1 and h2 pin the same machine 4c4c4544-0042-3510-8052-b4c04f4d4e31 (fencing.hosts[0].redfish.uuid)"},
	}
	for _, c := range cases {
		_, err := ParseConfig([]byte(two(c.a, c.b)))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "powering off one would power off the other") {
			t.Errorf("{%s} and {%s}:\n  error %v\n  want it to contain %q", c.a, c.b, err, c.want)
		}
	}
	// Two systems of one service (a chassis manager) are two machines.
	ok := two("redfish: {endpoint: https://10.0.0.5, system: /redfish/v1/Systems/1, "+cred+"}",
		"redfish: {endpoint: https://10.0.0.5, system: /redfish/v1/Systems/2, "+cred+"}")
	if _, err := ParseConfig([]byte(ok)); err != nil {
		t.Errorf("two systems of one service: %v", err)
	}
}

// Each host goes to the driver its entry names: a Redfish host is powered off and
// on through the Redfish service, an IPMI host through IPMI, and the engine sees
// one Fencer that also tells identities.
func TestFencerRoutesEachHostToItsDriver(t *testing.T) {
	const uuid = "6e1d4b8a-3f0c-4c1e-9a51-2b7f0d9c1a11"
	svc := rfsim.New(rfsim.Config{Username: "admin", Password: "rf-pw", Systems: []rfsim.SystemSpec{{ID: "1", UUID: uuid}}})
	ts := httptest.NewServer(svc)
	defer ts.Close()
	cfg, err := ParseConfig([]byte(`
fencing:
  hosts:
    - name: ipmi-host
      ipmi: {address: 127.0.0.1, port: 1, username: admin, password: pw, timeout: 300ms}
    - name: redfish-host
      redfish: {endpoint: "` + ts.URL + `", insecure: true, username: admin, password: rf-pw, timeout: 2s, confirm_timeout: 2s}
`))
	if err != nil {
		t.Fatal(err)
	}
	f, err := cfg.Fencer()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if !f.CanFence("ipmi-host") || !f.CanFence("redfish-host") || f.CanFence("other") {
		t.Error("CanFence: want ipmi-host and redfish-host, not other")
	}
	if p, err := f.PowerStatus(ctx, "redfish-host"); p != model.PowerOn || err != nil {
		t.Fatalf("PowerStatus(redfish-host) = %q, %v", p, err)
	}
	if err := f.PowerOff(ctx, "redfish-host"); err != nil {
		t.Fatalf("PowerOff(redfish-host): %v", err)
	}
	if got := svc.PowerState("1"); got != rfsim.Off {
		t.Errorf("Redfish service says %s after PowerOff(redfish-host)", got)
	}
	if p, err := f.PowerStatus(ctx, "redfish-host"); p != model.PowerOff || err != nil {
		t.Errorf("PowerStatus(redfish-host) after = %q, %v", p, err)
	}
	id, err := f.(cloud.Identifier).Identity(ctx, "redfish-host")
	if id != uuid || err != nil {
		t.Errorf("Identity(redfish-host) = %q, %v", id, err)
	}
	on, ok := f.(interface {
		PowerOn(context.Context, string) error
	})
	if !ok || on.PowerOn(ctx, "redfish-host") != nil || svc.PowerState("1") != rfsim.On {
		t.Errorf("PowerOn(redfish-host): offered %v, service says %s", ok, svc.PowerState("1"))
	}
	// The IPMI host goes to IPMI (nothing answers there): an IPMI error, nothing reset.
	resets := len(svc.Resets("1"))
	err = f.PowerOff(ctx, "ipmi-host")
	if _, isIPMI := errors.AsType[*ipmi.Error](err); !isIPMI || !errors.Is(err, cloud.ErrUnavailable) {
		t.Errorf("PowerOff(ipmi-host): %v; want IPMI's unavailable error", err)
	}
	if len(svc.Resets("1")) != resets {
		t.Error("PowerOff(ipmi-host) reset the Redfish system")
	}
	if err := f.PowerOff(ctx, "other"); !cloud.IsTerminal(err) || !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("PowerOff(other): %v; want terminal not found", err)
	}

	// Redfish hosts only: the same routing without IPMI.
	only := Config{Redfish: cfg.Redfish}
	f, err = only.Fencer()
	if err != nil || !f.CanFence("redfish-host") || f.CanFence("ipmi-host") {
		t.Fatalf("Redfish only: %v, %v", f, err)
	}
	if err := f.PowerOff(ctx, "ipmi-host"); !cloud.IsTerminal(err) || !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Redfish only, PowerOff(ipmi-host): %v", err)
	}
}
