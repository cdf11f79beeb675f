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
      ipmi: {address: bmc3.example, username: admin, password: in-the-file}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []ipmi.BMC{
		{Host: "fake-compute-1", Address: "127.0.0.1", Port: 9011, Username: "admin", Password: "from-env", Interface: ipmi.Lanplus, CipherSuite: 3, Timeout: 5 * time.Second},
		{Host: "fake-compute-2", Address: "127.0.0.1", Port: 9012, Username: "admin", Password: "from-file", Interface: ipmi.Lan},
		{Host: "fake-compute-3", Address: "bmc3.example", Username: "admin", Password: "in-the-file"},
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
		{host(base + ", port: 70000"), "fencing.hosts[1].ipmi.port: must be in 1..65535"},
		{host(base + ", port: nine"), "fencing.hosts[1].ipmi.port: cannot read"},
		{host(base + ", prot: 623"), "fencing.hosts[1].ipmi.prot: unknown field"},
		{host(base + ", interface: serial"), "fencing.hosts[1].ipmi.interface: must be lanplus or lan"},
		{host(base + ", cipher_suite: 42"), "fencing.hosts[1].ipmi.cipher_suite"},
		{host(base + ", timeout: soon"), "fencing.hosts[1].ipmi.timeout: cannot read"},
		{host(base + ", timeout: -1s"), "fencing.hosts[1].ipmi.timeout: must be positive"},
		{host("address: 10.0.0.2, password: pw"), "fencing.hosts[1].ipmi.username: must not be empty"},
		{host("username: admin, password: pw"), "fencing.hosts[1].ipmi.address: must not be empty"},
		{host("address: 10.0.0.2, username: admin"), "fencing.hosts[1].ipmi: no password"},
		{host(base + ", password_env: TEST_IPMI_PW"), "password and password_env: give only one"},
		{host("address: a, username: admin, password_env: TEST_IPMI_UNSET_VAR"), "fencing.hosts[1].ipmi.password_env: environment variable TEST_IPMI_UNSET_VAR is not set"},
		{host("address: a, username: admin, password_file: /nonexistent/pw"), "fencing.hosts[1].ipmi.password_file: cannot read /nonexistent/pw"},
		{"fencing:\n  hosts:\n    - name: h0\n      ipmi: {address: a, username: u, password: p}\n    - name: h0\n      ipmi: {address: b, username: u, password: p}\n", "fencing.hosts[1].name: host \"h0\" is listed twice"},
		{"fencing:\n  hosts:\n    - ipmi: {address: a, username: u, password: p}\n", "fencing.hosts[0].name: must not be empty"},
		{"fencing:\n  hosts:\n    - name: h0\n", "fencing.hosts[0].ipmi: missing"},
		{"fencing:\n  hosts:\n    - name: h0\n      redfish: {}\n", "fencing.hosts[0].redfish: unknown field"},
		{"fencing:\n  host: []\n", "fencing.host: unknown field"},
		{"fencing:\n  hosts: h0\n", "fencing.hosts: must be a list"},
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
