package redfish

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
)

// The Debian Redfish clients the cross-check uses (apt-get install redfishtool
// python3-sushy). python3 on PATH may be another one, without Debian's packages.
const (
	redfishtool = "/usr/bin/redfishtool"
	debPython   = "/usr/bin/python3"
)

// simProcess is the test Redfish service run as a process (cmd/redfish-sim).
type simProcess struct {
	addr, url, caFile, pwFile, faultFile string
	cmd                                  *exec.Cmd
	lines                                chan string
}

// startSim builds and starts redfish-sim over HTTPS with a certificate for
// 127.0.0.1, one system (ID 1, uuid1, On) and the given extra flags.
func startSim(t *testing.T, extra ...string) *simProcess {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "redfish-sim")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vigil-ha/vigil/test/redfish/cmd/redfish-sim").CombinedOutput(); err != nil {
		t.Fatalf("build redfish-sim: %v\n%s", err, out)
	}
	p := &simProcess{pwFile: filepath.Join(dir, "pw"), faultFile: filepath.Join(dir, "fault"), lines: make(chan string, 16)}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	selfSigned(t, cert, key)
	p.caFile = cert
	if err := os.WriteFile(p.pwFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--listen", "127.0.0.1:0", "--user", "admin", "--password-file", p.pwFile,
		"--system", "1=" + uuid1, "--tls-cert", cert, "--tls-key", key, "--fault-file", p.faultFile}, extra...)
	p.cmd = exec.Command(bin, args...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Signal(syscall.SIGTERM); _ = p.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	line := p.next(t)
	p.addr = strings.TrimPrefix(line, "listening on ")
	if _, _, err := net.SplitHostPort(p.addr); err != nil {
		t.Fatalf("redfish-sim said %q", line)
	}
	p.url = "https://" + p.addr
	return p
}

func (p *simProcess) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("redfish-sim exited")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("redfish-sim said nothing for 10 s")
	}
	return ""
}

// setFault switches the running service's fault mode (fault file + SIGUSR1).
func (p *simProcess) setFault(t *testing.T, f string) {
	t.Helper()
	if err := os.WriteFile(p.faultFile, []byte(f+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if l := p.next(t); l != fmt.Sprintf("fault %q", f) {
		t.Fatalf("redfish-sim answered %q to fault %s", l, f)
	}
}

// tool runs redfishtool against the process over https (basic auth unless args
// say -A Session; it does not check the certificate) and returns its JSON output.
func (p *simProcess) tool(t *testing.T, password string, args ...string) (map[string]any, error) {
	t.Helper()
	base := []string{"-r", p.addr, "-S", "Always", "-u", "admin", "-p", password, "-T", "3"}
	var stderr strings.Builder
	cmd := exec.Command(redfishtool, append(base, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("redfishtool %s: %v: %s %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)), strings.TrimSpace(stderr.String()))
	}
	var m map[string]any
	if len(strings.TrimSpace(string(out))) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("redfishtool %s printed %q", strings.Join(args, " "), out)
	}
	return m, nil
}

// toolPower is the PowerState redfishtool reads.
func (p *simProcess) toolPower(t *testing.T) string {
	t.Helper()
	m, err := p.tool(t, secret, "Systems", "-L", "/redfish/v1/Systems/1", "get", "-P", "PowerState")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(m["PowerState"])
}

type sushyAnswer struct {
	PowerState string `json:"power_state"`
	UUID       string `json:"uuid"`
	Error      string `json:"error"`
	Status     int    `json:"status"`
}

// sushy runs testdata/sushy_client.py with Debian's python3 (it checks the
// certificate against the CA file).
func (p *simProcess) sushy(t *testing.T, pwFile string, args ...string) sushyAnswer {
	t.Helper()
	all := append([]string{"testdata/sushy_client.py", p.url, "admin", pwFile, p.caFile, "/redfish/v1/Systems/1"}, args...)
	cmd := exec.Command(debPython, all...)
	// requests lets REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE override the CA file a
	// session is given (sushy's verify): keep them out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REQUESTS_CA_BUNDLE=") && !strings.HasPrefix(kv, "CURL_CA_BUNDLE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	var a sushyAnswer
	if err != nil || json.Unmarshal(out, &a) != nil {
		t.Fatalf("sushy %v: %v\n%s", args, err, out)
	}
	return a
}

// TestIntegrationRedfishClient checks the test Redfish service, run as a process,
// with Debian's Redfish clients: every power state, identity and refusal that the
// fence/redfish tests assert is read by redfishtool and sushy too, and resets
// driven by them are read by Vigil's driver.
func TestIntegrationRedfishClient(t *testing.T) {
	if os.Getenv("VIGIL_REDFISH_CLIENT") != "1" {
		t.Skip("set VIGIL_REDFISH_CLIENT=1 to check the test Redfish service with Debian's clients (apt-get install redfishtool python3-sushy)")
	}
	for _, f := range []string{redfishtool, debPython} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s: %v (apt-get install redfishtool python3-sushy)", f, err)
		}
	}
	if out, err := exec.Command(debPython, "-c", "import sushy").CombinedOutput(); err != nil {
		t.Fatalf("Debian's python3 has no sushy (apt-get install python3-sushy): %v %s", err, out)
	}
	ctx := context.Background()
	p := startSim(t)
	b := BMC{Host: "h1", Endpoint: p.url, CAFile: p.caFile, Username: "admin", Password: secret,
		Timeout: 2 * time.Second, ConfirmTimeout: 2 * time.Second}
	f := fencer(t, b)
	agree := func(step string, want model.Power, rf string) {
		t.Helper()
		if got, err := f.PowerStatus(ctx, "h1"); got != want || err != nil {
			t.Errorf("%s: Vigil reads %q, %v; want %s", step, got, err, want)
		}
		if got := p.toolPower(t); got != rf {
			t.Errorf("%s: redfishtool reads PowerState %s, want %s", step, got, rf)
		}
		if got := p.sushy(t, p.pwFile, "get"); got.PowerState != rf {
			t.Errorf("%s: sushy reads %+v, want power_state %s", step, got, rf)
		}
	}

	// Identity: one UUID for all three.
	id, err := f.Identity(ctx, "h1")
	if err != nil || id != uuid1 {
		t.Fatalf("Vigil's Identity = %q, %v", id, err)
	}
	m, err := p.tool(t, secret, "Systems", "-L", "/redfish/v1/Systems/1", "get", "-P", "UUID")
	if err != nil || m["UUID"] != id {
		t.Errorf("redfishtool reads UUID %v (%v), Vigil %s", m["UUID"], err, id)
	}
	if a := p.sushy(t, p.pwFile, "get"); a.UUID != id {
		t.Errorf("sushy reads UUID %q, Vigil %s", a.UUID, id)
	}

	agree("at start", model.PowerOn, "On")
	if err := f.PowerOff(ctx, "h1"); err != nil {
		t.Fatalf("Vigil's PowerOff: %v", err)
	}
	agree("after Vigil's PowerOff", model.PowerOff, "Off")
	if err := f.PowerOn(ctx, "h1"); err != nil {
		t.Fatalf("Vigil's PowerOn: %v", err)
	}
	agree("after Vigil's PowerOn", model.PowerOn, "On")

	// Resets driven by Debian's clients, read by Vigil.
	if _, err := p.tool(t, secret, "-A", "Session", "Systems", "-L", "/redfish/v1/Systems/1", "reset", "ForceOff"); err != nil {
		t.Fatal(err)
	}
	agree("after redfishtool's ForceOff", model.PowerOff, "Off")
	if a := p.sushy(t, p.pwFile, "reset", "On"); a.PowerState != "On" {
		t.Errorf("sushy's reset On: %+v", a)
	}
	agree("after sushy's reset On", model.PowerOn, "On")

	// A wrong password: refused by the service for all three.
	wrong := b
	wrong.Password = "wrong-" + secret
	var e *Error
	if _, err := fencer(t, wrong).PowerStatus(ctx, "h1"); !errors.As(err, &e) || e.Kind != AuthRefused {
		t.Errorf("Vigil with a wrong password: %v", err)
	}
	if _, err := p.tool(t, "wrong-"+secret, "Systems", "-L", "/redfish/v1/Systems/1", "get"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("redfishtool with a wrong password: %v; want a 401", err)
	}
	badPw := filepath.Join(t.TempDir(), "pw")
	_ = os.WriteFile(badPw, []byte("wrong-"+secret+"\n"), 0o600)
	if a := p.sushy(t, badPw, "get"); a.Error != "AccessError" || a.Status != 401 {
		t.Errorf("sushy with a wrong password: %+v; want AccessError 401", a)
	}

	// A BMC that refuses ForceOff: refused for redfishtool too, and the system stays on.
	p.setFault(t, "refuse-forceoff")
	if err := f.PowerOff(ctx, "h1"); !cloud.IsTerminal(err) || !errors.Is(err, ErrRefused) {
		t.Errorf("Vigil's PowerOff when refused: %v", err)
	}
	if _, err := p.tool(t, secret, "Systems", "-L", "/redfish/v1/Systems/1", "reset", "ForceOff"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("redfishtool's ForceOff when refused: %v; want a 400", err)
	}
	agree("after refused ForceOffs", model.PowerOn, "On")

	// A BMC that says done and does nothing: Vigil's PowerOff is not confirmed, and
	// Debian's clients read it on.
	p.setFault(t, "lie")
	if err := f.PowerOff(ctx, "h1"); !errors.Is(err, ErrNotConfirmed) || cloud.IsTerminal(err) {
		t.Errorf("Vigil's PowerOff through a lying BMC: %v", err)
	}
	agree("after a ForceOff the BMC ignored", model.PowerOn, "On")

	// A hung BMC: no answer for any client, Vigil's within its bound.
	p.setFault(t, "hang")
	hung := b
	hung.Timeout = 500 * time.Millisecond
	start := time.Now()
	if _, err := fencer(t, hung).PowerStatus(ctx, "h1"); !errors.Is(err, cloud.ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Errorf("Vigil against a hung BMC: %v after %s", err, time.Since(start))
	}
	if _, err := p.tool(t, secret, "-T", "1", "Systems", "-L", "/redfish/v1/Systems/1", "get"); err == nil {
		t.Error("redfishtool got an answer from a hung BMC")
	}
	p.setFault(t, "")
	agree("after the hang", model.PowerOn, "On")
}

// TestIntegrationRedfishClientSlowTransition: while the service powers off slowly,
// Vigil reads on (no proof yet) where Debian's clients read PoweringOff, and off
// once they read Off.
func TestIntegrationRedfishClientSlowTransition(t *testing.T) {
	if os.Getenv("VIGIL_REDFISH_CLIENT") != "1" {
		t.Skip("set VIGIL_REDFISH_CLIENT=1 to check the test Redfish service with Debian's clients (apt-get install redfishtool python3-sushy)")
	}
	ctx := context.Background()
	p := startSim(t, "--transition", "3s")
	f := fencer(t, BMC{Host: "h1", Endpoint: p.url, CAFile: p.caFile, Username: "admin", Password: secret,
		Timeout: 2 * time.Second, ConfirmTimeout: 5 * time.Second})
	if _, err := p.tool(t, secret, "Systems", "-L", "/redfish/v1/Systems/1", "reset", "ForceOff"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.PowerStatus(ctx, "h1"); got != model.PowerOn || err != nil {
		t.Errorf("Vigil during the transition: %q, %v; want on", got, err)
	}
	if got := p.toolPower(t); got != "PoweringOff" {
		t.Errorf("redfishtool during the transition: %s, want PoweringOff", got)
	}
	// Vigil's PowerOn waits out a whole transition back on.
	start := time.Now()
	if err := f.PowerOn(ctx, "h1"); err != nil {
		t.Fatalf("Vigil's PowerOn: %v", err)
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("PowerOn confirmed after %s, before the 3 s transition", el)
	}
	if got := p.toolPower(t); got != "On" {
		t.Errorf("redfishtool after Vigil's PowerOn: %s", got)
	}
	if a := p.sushy(t, p.pwFile, "get"); a.PowerState != "On" {
		t.Errorf("sushy after Vigil's PowerOn: %+v", a)
	}
}

// selfSigned writes a self-signed CA certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ski := sha1.Sum(pub)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "redfish-sim"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		SubjectKeyId: ski[:], AuthorityKeyId: ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}
