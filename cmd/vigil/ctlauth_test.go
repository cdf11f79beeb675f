package main

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
	"github.com/vigil-ha/vigil/vigil"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
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
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	must(os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return cert, key
}

// A Vigil serving HTTPS with a self-signed certificate: ctl trusting its CA
// (--cacert, or VIGIL_CACERT) with a token made by `vigil token create --db` on
// the live store talks to it; without the CA it is refused by TLS, without the
// token by the API (401, with a hint); `ctl token` creates, lists and revokes,
// and a revoked token is refused from the next request on.
func TestCtlOverTLSWithTokens(t *testing.T) {
	cert, key := selfSigned(t)
	c := sim.New(sim.DefaultConfig(), time.Now)
	c.AddHost("host-0", "a", 10)
	db := filepath.Join(t.TempDir(), "v.db")
	ctx, cancel := context.WithCancel(context.Background())
	app, err := vigil.Start(ctx, vigil.Options{Listen: "127.0.0.1:0", DB: db, Interval: 100 * time.Millisecond,
		Config: vigil.DefaultConfig(), Compute: c, Fencer: c, TLSCert: cert, TLSKey: key,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	url := "https://" + app.Addr()

	// The first token, made on the store while Vigil holds it.
	out, err := vigilCmd(t, "token", "create", "first", "--db", db)
	if err != nil {
		t.Fatalf("vigil token create on a live store: %v\n%s", err, out)
	}
	first := lastLine(out)
	if !strings.HasPrefix(first, "vgl_") || len(first) != 47 {
		t.Fatalf("token create printed %q", out)
	}

	if _, err := vigilCmd(t, "ctl", "status", "--server", url, "--token", first); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("ctl without the CA: %v, want a certificate error", err)
	}
	_, err = vigilCmd(t, "ctl", "status", "--server", url, "--cacert", cert)
	if err == nil || !strings.Contains(err.Error(), "needs a token") || !strings.Contains(err.Error(), "VIGIL_TOKEN") {
		t.Fatalf("ctl without a token: %v, want a 401 naming VIGIL_TOKEN", err)
	}
	if out, err := vigilCmd(t, "ctl", "status", "--server", url, "--cacert", cert, "--token", first); err != nil || !strings.Contains(out, "host-0") {
		t.Fatalf("ctl status over HTTPS with a token: %v\n%s", err, out)
	}

	t.Setenv("VIGIL_CACERT", cert)
	t.Setenv("VIGIL_TOKEN", first)
	out, err = vigilCmd(t, "ctl", "token", "create", "second", "--server", url)
	if err != nil {
		t.Fatalf("ctl token create: %v\n%s", err, out)
	}
	second := lastLine(out)
	out, err = vigilCmd(t, "ctl", "token", "list", "--server", url)
	if err != nil || !strings.Contains(out, "first") || !strings.Contains(out, "second") || strings.Contains(out, first) || strings.Contains(out, second) {
		t.Fatalf("ctl token list: %v\n%s", err, out)
	}
	if out, err := vigilCmd(t, "ctl", "token", "revoke", "first", "--server", url, "--token", second); err != nil {
		t.Fatalf("ctl token revoke: %v\n%s", err, out)
	}
	if _, err := vigilCmd(t, "ctl", "status", "--server", url); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("ctl with a revoked token: %v, want refused", err)
	}
	out, err = vigilCmd(t, "token", "list", "--db", db)
	if err != nil || !strings.Contains(out, "first") || strings.Contains(out, first) {
		t.Fatalf("vigil token list: %v\n%s", err, out)
	}
	if out, err := vigilCmd(t, "token", "revoke", "nobody", "--db", db); err == nil {
		t.Fatalf("revoking no token: %s", out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
