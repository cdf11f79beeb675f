package vigil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns their paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// With --tls-cert/--tls-key Vigil serves HTTPS only; a real `vigil agent` that
// trusts its CA (--ca) heartbeats over it and is heard; one that does not trust it
// is never heard (its token never leaves in clear, nor to an impostor).
func TestAgentOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the vigil binary")
	}
	cert, key := selfSigned(t)
	t.Setenv("TEST_TLS_AGENT", "tls-agent-token-0123456789")
	cfg, err := ParseConfig([]byte("agents: {interval: 200ms, hosts: [{name: host-a, token_env: TEST_TLS_AGENT}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cloud := sim.New(sim.DefaultConfig(), time.Now)
	cloud.AddHost("host-a", "seg", 4)
	ctx, cancel := context.WithCancel(context.Background())
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "v.db"), Interval: 200 * time.Millisecond,
		Config: cfg, Compute: cloud, Fencer: cloud, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), TLSCert: cert, TLSKey: key})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = app.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// Plain HTTP is refused.
	if resp, err := http.Get("http://" + app.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 by a Vigil serving TLS")
		}
	}
	bin, err := vigilBinary()
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte("tls-agent-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent := func(extra ...string) *exec.Cmd {
		args := append([]string{"agent", "--host", "host-a", "--token-file", tf, "--interval", "200ms",
			"--vigil", "management=https://" + app.Addr()}, extra...)
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
		return cmd
	}
	untrusting := agent()
	time.Sleep(2 * time.Second)
	if n := app.Agents.Received(); n != 0 {
		t.Fatalf("an agent that does not trust Vigil's certificate was heard (%d beats)", n)
	}
	_ = untrusting.Process.Signal(syscall.SIGKILL)
	agent("--ca", cert)
	waitUntil(t, "the agent heard over HTTPS", func() bool {
		for _, ev := range recentEvents(t, app) {
			if ev.Subject == "agent/host-a" && strings.Contains(ev.Message, "agent up") {
				return true
			}
		}
		return false
	})
}
