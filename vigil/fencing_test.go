package vigil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/fence/ipmi"
)

func TestParseConfigFencing(t *testing.T) {
	t.Setenv("TEST_IPMI_PW", "from-env")
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]byte(`
fencing:
  hosts:
    - name: fake-compute-1
      ipmi: {address: 127.0.0.1, port: 9011, username: admin, password_env: TEST_IPMI_PW, interface: lanplus, cipher_suite: 3, timeout: 5s}
    - name: fake-compute-2
      ipmi: {address: 127.0.0.1, port: 9012, username: admin, password_file: ` + pwFile + `, interface: lan}
    - name: fake-compute-3
      ipmi: {address: bmc3.example, username: admin, password: in-the-file, guid: "{00112233-4455-6677-8899-AABBCCDDEEFF}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ipmi.BMC{
		{Host: "fake-compute-1", Address: "127.0.0.1", Port: 9011, Username: "admin", Password: "from-env", Interface: ipmi.Lanplus, CipherSuite: 3, Timeout: 5 * time.Second},
		{Host: "fake-compute-2", Address: "127.0.0.1", Port: 9012, Username: "admin", Password: "from-file", Interface: ipmi.Lan},
		{Host: "fake-compute-3", Address: "bmc3.example", Username: "admin", Password: "in-the-file", GUID: "00112233-4455-6677-8899-aabbccddeeff"},
	}
	if len(cfg.Fencing) != len(want) {
		t.Fatalf("fencing: %v", cfg.Fencing)
	}
	for i := range want {
		if cfg.Fencing[i] != want[i] {
			t.Errorf("hosts[%d]: %#v password %q, want %#v password %q", i, cfg.Fencing[i], cfg.Fencing[i].Password, want[i], want[i].Password)
		}
	}
	f, err := cfg.Fencer()
	if err != nil || !f.CanFence("fake-compute-2") || f.CanFence("fake-compute-4") {
		t.Fatalf("Fencer: %v %v", f, err)
	}
	b, _ := f.(*ipmi.Fencer).BMC("fake-compute-3")
	if b.Port != 623 || b.Interface != ipmi.Lanplus || b.CipherSuite != 3 || b.Timeout != 5*time.Second {
		t.Errorf("defaults of fake-compute-3: %#v", b)
	}

	if f, err := DefaultConfig().Fencer(); f != nil || err != nil {
		t.Errorf("no fencing section: Fencer() = %v, %v; want nil, nil (an untyped nil: no host can be fenced)", f, err)
	}

	host := func(ipmi string) string {
		return "fencing:\n  hosts:\n    - name: h0\n      ipmi: {address: 10.0.0.1, username: admin, password: pw}\n" +
			"    - name: h1\n      ipmi: {" + ipmi + "}\n"
	}
	base := "address: 10.0.0.2, username: admin, password: pw"
	bad := []struct{ src, want string }{
		{host(base + ", port: 70000"), "policy file:6: fencing.hosts[1].ipmi.port: 70000 is out of range: a UDP port: give 1 to 65535"},
		{host(base + ", port: nine"), "fencing.hosts[1].ipmi.port: \"nine\" is not a whole number"},
		{host(base + ", prot: 623"), "fencing.hosts[1].ipmi.prot: unknown field"},
		{host(base + ", interface: serial"), "fencing.hosts[1].ipmi.interface: must be lanplus or lan"},
		{host(base + ", cipher_suite: 42"), "fencing.hosts[1].ipmi.cipher_suite"},
		{host(base + ", timeout: soon"), "fencing.hosts[1].ipmi.timeout: \"soon\" is not a duration"},
		{host(base + ", timeout: -1s"), "fencing.hosts[1].ipmi.timeout: -1s is not positive"},
		{host("address: 10.0.0.2, password: pw"), "fencing.hosts[1].ipmi.username: missing"},
		{host("username: admin, password: pw"), "fencing.hosts[1].ipmi.address: missing"},
		{host("address: 10.0.0.2, username: admin"), "fencing.hosts[1].ipmi: no password"},
		{host(base + ", password_env: TEST_IPMI_PW"), "password and password_env: give only one"},
		{host("address: a, username: admin, password_env: TEST_IPMI_UNSET_VAR"), "fencing.hosts[1].ipmi.password_env: environment variable TEST_IPMI_UNSET_VAR is not set"},
		{host("address: a, username: admin, password_file: /nonexistent/pw"), "fencing.hosts[1].ipmi.password_file: cannot read /nonexistent/pw"},
		{"fencing:\n  hosts:\n    - name: h0\n      ipmi: {address: a, username: u, password: p}\n    - name: h0\n      ipmi: {address: b, username: u, password: p}\n", "fencing.hosts[1].name: host \"h0\" is listed twice"},
		{"fencing:\n  hosts:\n    - ipmi: {address: a, username: u, password: p}\n", "fencing.hosts[0].name: missing"},
		{"fencing:\n  hosts:\n    - name: h0\n", "fencing.hosts[0].ipmi: missing"},
		{"fencing:\n  hosts:\n    - name: h0\n      redfish: {password: p}\n", "policy file:4: fencing.hosts[0].redfish.endpoint: missing: give the BMC's Redfish service"},
		{"fencing:\n  host: []\n", "fencing.host: unknown field"},
		{host(base + ", guid: 0011"), "fencing.hosts[1].ipmi.guid: \"0011\" is not a GUID"},
		{host(base + ", guid: 00000000-0000-0000-0000-000000000000"), "fencing.hosts[1].ipmi.guid: \"00000000-0000-0000-0000-000000000000\" means \"no GUID\""},
		{host(base + ", guid: [a]"), "fencing.hosts[1].ipmi.guid: a list: must be"},
		{"fencing:\n  hosts: h0\n", "fencing.hosts: \"h0\": must be a list of hosts"},
	}
	for _, b := range bad {
		_, err := ParseConfig([]byte(b.src))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q:\n  error %v\n  want it to mention %q", b.src, err, b.want)
		}
		if err != nil && (strings.Contains(err.Error(), "from-env") || strings.Contains(err.Error(), ": pw")) {
			t.Errorf("%q: error %q shows a password", b.src, err)
		}
	}
}

// Two hosts whose entries reach one BMC: refused at load, naming both hosts and the
// field, whichever alias the second entry uses; one BMC per host loads.
func TestParseConfigRefusesOneBMCForTwoHosts(t *testing.T) {
	entry := func(name, ipmi string) string {
		return "    - name: " + name + "\n      ipmi: {username: admin, password: pw, " + ipmi + "}\n"
	}
	three := func(third string) string {
		return "fencing:\n  hosts:\n" + entry("fake-compute-1", "address: 127.0.0.1, port: 9011") +
			entry("fake-compute-2", "address: 127.0.0.1, port: 9012") + entry("fake-compute-3", third)
	}
	const both = "fencing.hosts[2].ipmi.address: hosts fake-compute-1 and fake-compute-3 share one BMC"
	for _, c := range []struct{ third, want string }{
		{"address: 127.0.0.1, port: 9011", both + ", 127.0.0.1:9011 (fencing.hosts[0].ipmi)"},
		{"address: localhost, port: 9011", both + ", localhost:9011 (fencing.hosts[0].ipmi)"},
		{"address: '::ffff:127.0.0.1', port: 9011", both},
		{"address: 127.0.0.1, port: 9012", "hosts fake-compute-2 and fake-compute-3 share one BMC"},
	} {
		_, err := ParseConfig([]byte(three(c.third)))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "powering off one would power off the other") {
			t.Errorf("third entry {%s}:\n  error %v\n  want it to contain %q", c.third, err, c.want)
		}
	}
	if _, err := ParseConfig([]byte(three("address: 127.0.0.1, port: 9013"))); err != nil {
		t.Fatalf("one BMC per host: %v", err)
	}
	// Default port 623 and an explicit 623 are one BMC.
	two := "fencing:\n  hosts:\n" + entry("h1", "address: 10.0.0.1") + entry("h2", "address: 10.0.0.1, port: 623")
	if _, err := ParseConfig([]byte(two)); err == nil || !strings.Contains(err.Error(), "hosts h1 and h2 share one BMC, 10.0.0.1:623") {
		t.Errorf("default port: %v", err)
	}
	pinned := "fencing:\n  hosts:\n" + entry("h1", "address: 10.0.0.1, guid: 00112233-4455-6677-8899-aabbccddeeff") +
		entry("h2", "address: 10.0.0.2, guid: 00112233-4455-6677-8899-AABBCCDDEEFF")
	if _, err := ParseConfig([]byte(pinned)); err == nil || !strings.Contains(err.Error(),
		"fencing.hosts[1].ipmi.guid: hosts h1 and h2 pin the same BMC GUID 00112233-4455-6677-8899-aabbccddeeff (fencing.hosts[0].ipmi.guid)") {
		t.Errorf("one pinned GUID for two hosts: %v", err)
	}
}
