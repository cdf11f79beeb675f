package redfish

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/model"
	rfsim "github.com/vigil-ha/vigil/test/redfish"
)

const (
	secret = "s3cret-Redfish-pw"
	uuid1  = "6e1d4b8a-3f0c-4c1e-9a51-2b7f0d9c1a11"
	uuid2  = "6e1d4b8a-3f0c-4c1e-9a51-2b7f0d9c1a22"
)

// service starts the test Redfish service over HTTP with two systems, both On.
func service(t *testing.T, transition time.Duration) (*rfsim.Service, *httptest.Server) {
	t.Helper()
	svc := rfsim.New(rfsim.Config{Username: "admin", Password: secret, Transition: transition,
		Systems: []rfsim.SystemSpec{{ID: "1", UUID: uuid1}, {ID: "2", UUID: uuid2}}})
	ts := httptest.NewServer(svc)
	t.Cleanup(func() { svc.Close(); ts.Close() })
	return svc, ts
}

func bmcAt(ts *httptest.Server, host, system string) BMC {
	return BMC{Host: host, Endpoint: ts.URL, Insecure: true, Username: "admin", Password: secret, System: system,
		Timeout: 2 * time.Second, ConfirmTimeout: 2 * time.Second}
}

func fencer(t *testing.T, bmcs ...BMC) *Fencer {
	t.Helper()
	f, err := New(bmcs)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPowerOffConfirmsOffAndPowerOnBringsItBack(t *testing.T) {
	for _, auth := range []Auth{Session, Basic} {
		t.Run(string(auth), func(t *testing.T) {
			svc, ts := service(t, 0)
			b := bmcAt(ts, "h1", "/redfish/v1/Systems/1")
			b.Auth = auth
			f := fencer(t, b)
			ctx := context.Background()
			if p, err := f.PowerStatus(ctx, "h1"); p != model.PowerOn || err != nil {
				t.Fatalf("PowerStatus before = %q, %v; want on", p, err)
			}
			if err := f.PowerOff(ctx, "h1"); err != nil {
				t.Fatalf("PowerOff: %v", err)
			}
			if got := svc.PowerState("1"); got != rfsim.Off {
				t.Fatalf("service says %s after PowerOff, want Off", got)
			}
			if got := svc.PowerState("2"); got != rfsim.On {
				t.Errorf("the other system is %s after powering off system 1, want On", got)
			}
			if p, err := f.PowerStatus(ctx, "h1"); p != model.PowerOff || err != nil {
				t.Fatalf("PowerStatus after = %q, %v; want off", p, err)
			}
			if err := f.PowerOff(ctx, "h1"); err != nil { // already off: nothing sent
				t.Fatalf("second PowerOff: %v", err)
			}
			if err := f.PowerOn(ctx, "h1"); err != nil {
				t.Fatalf("PowerOn: %v", err)
			}
			if got := svc.PowerState("1"); got != rfsim.On {
				t.Fatalf("service says %s after PowerOn, want On", got)
			}
			if got := svc.Resets("1"); !slices.Equal(got, []string{"ForceOff", "On"}) {
				t.Errorf("resets received %v, want [ForceOff On] (none for the host already off)", got)
			}
			if n := svc.Sessions(); n != 0 {
				t.Errorf("%d sessions left open; each call must log out", n)
			}
		})
	}
}

func TestSlowTransitionIsWaitedFor(t *testing.T) {
	svc, ts := service(t, 400*time.Millisecond)
	f := fencer(t, bmcAt(ts, "h1", "/redfish/v1/Systems/1"))
	start := time.Now()
	if err := f.PowerOff(context.Background(), "h1"); err != nil {
		t.Fatalf("PowerOff: %v", err)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Errorf("PowerOff returned after %s, before the 400ms transition ended", el)
	}
	if got := svc.PowerState("1"); got != rfsim.Off {
		t.Errorf("service says %s, want Off", got)
	}
	// While PoweringOff the host is not off yet: no proof.
	svc.SetPower("1", rfsim.On)
	ctx := context.Background()
	b := bmcAt(ts, "h1", "/redfish/v1/Systems/1")
	b.ConfirmTimeout = 100 * time.Millisecond
	short := fencer(t, b)
	err := short.PowerOff(ctx, "h1")
	if !errors.Is(err, ErrNotConfirmed) || cloud.IsTerminal(err) {
		t.Fatalf("PowerOff with a 100ms confirm timeout on a 400ms transition: %v; want retryable ErrNotConfirmed", err)
	}
	if p, err := short.PowerStatus(ctx, "h1"); p != model.PowerOn || err != nil {
		t.Errorf("PowerStatus while PoweringOff = %q, %v; want on", p, err)
	}
}

func TestLyingBMCIsNotConfirmed(t *testing.T) {
	svc, ts := service(t, 0)
	svc.SetFault(rfsim.Lie)
	b := bmcAt(ts, "h1", "")
	b.System = "/redfish/v1/Systems/2"
	b.ConfirmTimeout = 300 * time.Millisecond
	f := fencer(t, b)
	err := f.PowerOff(context.Background(), "h1")
	if !errors.Is(err, ErrNotConfirmed) || cloud.IsTerminal(err) {
		t.Fatalf("PowerOff through a BMC that says done and does nothing: %v; want retryable ErrNotConfirmed", err)
	}
	if !strings.Contains(err.Error(), "not proven off") || !strings.Contains(err.Error(), `PowerState still "On"`) {
		t.Errorf("message: %v", err)
	}
	if p, _ := f.PowerStatus(context.Background(), "h1"); p != model.PowerOn {
		t.Errorf("PowerStatus = %q, want on", p)
	}
}

func TestRefusedForceOffIsTerminal(t *testing.T) {
	svc, ts := service(t, 0)
	svc.SetFault(rfsim.RefuseForceOff)
	f := fencer(t, bmcAt(ts, "h1", "/redfish/v1/Systems/1"))
	err := f.PowerOff(context.Background(), "h1")
	if !cloud.IsTerminal(err) || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "ActionNotSupported") {
		t.Fatalf("PowerOff refused with 400: %v; want terminal ErrRefused with the BMC's words", err)
	}
	if svc.PowerState("1") != rfsim.On {
		t.Error("system is not On")
	}
}

func TestWrongPasswordIsTerminalAndNeverShown(t *testing.T) {
	for _, auth := range []Auth{Session, Basic} {
		t.Run(string(auth), func(t *testing.T) {
			_, ts := service(t, 0)
			b := bmcAt(ts, "h1", "/redfish/v1/Systems/1")
			b.Auth, b.Password = auth, "wrong-"+secret
			f := fencer(t, b)
			for name, call := range map[string]func() error{
				"PowerOff":    func() error { return f.PowerOff(context.Background(), "h1") },
				"PowerStatus": func() error { _, err := f.PowerStatus(context.Background(), "h1"); return err },
				"Identity":    func() error { _, err := f.Identity(context.Background(), "h1"); return err },
			} {
				err := call()
				var e *Error
				if !cloud.IsTerminal(err) || !errors.As(err, &e) || e.Kind != AuthRefused {
					t.Fatalf("%s with a wrong password: %v; want terminal AuthRefused", name, err)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("%s: the password is in the error: %v", name, err)
				}
				if !strings.Contains(err.Error(), "refused user admin (401)") {
					t.Errorf("%s: message %q", name, err)
				}
			}
		})
	}
}

func TestHungBMCCostsTheTimeout(t *testing.T) {
	svc, ts := service(t, 0)
	svc.SetFault(rfsim.Hang)
	b := bmcAt(ts, "h1", "/redfish/v1/Systems/1")
	b.Timeout = 300 * time.Millisecond
	f := fencer(t, b)
	for name, call := range map[string]func() error{
		"PowerOff":    func() error { return f.PowerOff(context.Background(), "h1") },
		"PowerStatus": func() error { _, err := f.PowerStatus(context.Background(), "h1"); return err },
		"Identity":    func() error { _, err := f.Identity(context.Background(), "h1"); return err },
	} {
		start := time.Now()
		err := call()
		el := time.Since(start)
		if !errors.Is(err, cloud.ErrUnavailable) || cloud.IsTerminal(err) {
			t.Errorf("%s against a hung BMC: %v; want retryable cloud.ErrUnavailable", name, err)
		}
		if el > 1500*time.Millisecond {
			t.Errorf("%s against a hung BMC took %s; the bound is 300ms", name, el)
		}
	}
	// The caller's deadline bounds it too.
	b.Timeout = time.Minute
	f = fencer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.PowerStatus(ctx, "h1")
	if !errors.Is(err, cloud.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("PowerStatus with a 200ms deadline: %v after %s", err, time.Since(start))
	}
}

func TestIdentityIsTheSystemUUIDAndAPinIsChecked(t *testing.T) {
	svc, ts := service(t, 0)
	f := fencer(t, bmcAt(ts, "h1", "/redfish/v1/Systems/1"), bmcAt(ts, "h2", "/redfish/v1/Systems/2"))
	for h, want := range map[string]string{"h1": uuid1, "h2": uuid2} {
		if id, err := f.Identity(context.Background(), h); id != want || err != nil {
			t.Errorf("Identity(%s) = %q, %v; want %s", h, id, err, want)
		}
	}
	pinned := bmcAt(ts, "h1", "/redfish/v1/Systems/1")
	pinned.UUID = strings.ToUpper(uuid2) // system 2's UUID: entry points at the wrong machine
	f = fencer(t, pinned)
	err := f.PowerOff(context.Background(), "h1")
	if !cloud.IsTerminal(err) || !errors.Is(err, ErrWrongSystem) || !strings.Contains(err.Error(), "reports UUID "+uuid1) {
		t.Fatalf("PowerOff through an entry pinning another UUID: %v", err)
	}
	if svc.PowerState("1") != rfsim.On || len(svc.Resets("1")) != 0 {
		t.Error("the wrong system was reset")
	}
	pinned.UUID = uuid1
	if err := fencer(t, pinned).PowerOff(context.Background(), "h1"); err != nil {
		t.Errorf("PowerOff with the right pin: %v", err)
	}
}

func TestSystemIsFoundOrNamed(t *testing.T) {
	_, ts := service(t, 0)
	f := fencer(t, bmcAt(ts, "h1", ""))
	_, err := f.PowerStatus(context.Background(), "h1")
	if !cloud.IsTerminal(err) || !strings.Contains(err.Error(), "has 2 systems") {
		t.Errorf("no system given, two there: %v", err)
	}
	f = fencer(t, bmcAt(ts, "h1", "/redfish/v1/Systems/9"))
	_, err = f.PowerStatus(context.Background(), "h1")
	if !cloud.IsTerminal(err) || !errors.Is(err, cloud.ErrNotFound) || !strings.Contains(err.Error(), "ResourceMissingAtURI") {
		t.Errorf("a system that is not there: %v", err)
	}
	one := rfsim.New(rfsim.Config{Username: "admin", Password: secret})
	ts1 := httptest.NewServer(one)
	defer ts1.Close()
	f = fencer(t, bmcAt(ts1, "h1", ""))
	if p, err := f.PowerStatus(context.Background(), "h1"); p != model.PowerOn || err != nil {
		t.Errorf("the only system: %q, %v", p, err)
	}
	err = f.PowerOff(context.Background(), "nowhere")
	if !cloud.IsTerminal(err) || !errors.Is(err, cloud.ErrNotFound) || !strings.Contains(err.Error(), "host nowhere has no Redfish BMC") {
		t.Errorf("unknown host: %v", err)
	}
}

func TestTLSTrustsTheCAFileOrInsecureOnly(t *testing.T) {
	svc := rfsim.New(rfsim.Config{Username: "admin", Password: secret})
	ts := httptest.NewTLSServer(svc)
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b := BMC{Host: "h1", Endpoint: ts.URL, Username: "admin", Password: secret, Timeout: 2 * time.Second}
	_, err := fencer(t, b).PowerStatus(ctx, "h1")
	var e *Error
	if !cloud.IsTerminal(err) || !errors.As(err, &e) || e.Kind != TLSRefused {
		t.Errorf("untrusted certificate: %v; want terminal TLSRefused", err)
	}
	withCA := b
	withCA.CAFile = ca
	if p, err := fencer(t, withCA).PowerStatus(ctx, "h1"); p != model.PowerOn || err != nil {
		t.Errorf("with its CA file: %q, %v", p, err)
	}
	insecure := b
	insecure.Insecure = true
	if p, err := fencer(t, insecure).PowerStatus(ctx, "h1"); p != model.PowerOn || err != nil {
		t.Errorf("insecure: %q, %v", p, err)
	}
	withCA.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New([]BMC{withCA}); err == nil || !strings.Contains(err.Error(), "ca_file: cannot read") {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	good := BMC{Host: "h1", Endpoint: "https://10.0.0.11", Username: "admin", Password: secret}
	if err := good.Validate(); err != nil {
		t.Fatalf("good BMC: %v", err)
	}
	bad := []struct {
		edit  func(*BMC)
		field string
	}{
		{func(b *BMC) { b.Host = "" }, "name"},
		{func(b *BMC) { b.Endpoint = "" }, "endpoint"},
		{func(b *BMC) { b.Endpoint = "10.0.0.11" }, "endpoint"},
		{func(b *BMC) { b.Endpoint = "http://10.0.0.11" }, "endpoint"},
		{func(b *BMC) { b.Endpoint = "https://admin:pw@10.0.0.11" }, "endpoint"},
		{func(b *BMC) { b.Endpoint = "https://10.0.0.11/redfish/v1" }, "endpoint"},
		{func(b *BMC) { b.Username = "" }, "username"},
		{func(b *BMC) { b.System = "/redfish/v1/Chassis/1" }, "system"},
		{func(b *BMC) { b.CAFile, b.Insecure = "ca.pem", true }, "insecure"},
		{func(b *BMC) { b.Auth = "digest" }, "auth"},
		{func(b *BMC) { b.Timeout = -time.Second }, "timeout"},
		{func(b *BMC) { b.ConfirmTimeout = -time.Second }, "confirm_timeout"},
		{func(b *BMC) { b.UUID = "not-a-uuid" }, "uuid"},
		{func(b *BMC) { b.UUID = "00000000-0000-0000-0000-000000000000" }, "uuid"},
	}
	for _, c := range bad {
		b := good
		c.edit(&b)
		var fe *FieldError
		if err := b.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%#v: error %v, want one naming field %s", b, err, c.field)
		}
	}
	ok := good
	ok.Endpoint, ok.Insecure = "http://127.0.0.1:8000", true
	if err := ok.Validate(); err != nil {
		t.Errorf("http with insecure: %v", err)
	}
}

func TestNewRefusesTwoHostsOnOneSystem(t *testing.T) {
	a := BMC{Host: "h1", Endpoint: "https://bmc.example:443", Username: "u", System: "/redfish/v1/Systems/1"}
	cases := []struct {
		b    BMC
		same bool
	}{
		{BMC{Host: "h2", Endpoint: "https://BMC.example", Username: "u", System: "/redfish/v1/Systems/1"}, true},
		{BMC{Host: "h2", Endpoint: "https://bmc.example", Username: "u"}, true}, // the only system there
		{BMC{Host: "h2", Endpoint: "https://bmc.example", Username: "u", System: "/redfish/v1/Systems/2"}, false},
		{BMC{Host: "h2", Endpoint: "https://bmc.example:8443", Username: "u", System: "/redfish/v1/Systems/1"}, false},
	}
	for _, c := range cases {
		_, err := New([]BMC{a, c.b})
		if got := err != nil && strings.Contains(err.Error(), "reach one system"); got != c.same {
			t.Errorf("%s and %s: New error %v, want same=%v", a, c.b, err, c.same)
		}
	}
	l1 := BMC{Host: "h1", Endpoint: "https://localhost:8443", Username: "u"}
	l2 := BMC{Host: "h2", Endpoint: "https://127.0.0.1:8443", Username: "u"}
	if !SameSystem(l1, l2) {
		t.Error("localhost and 127.0.0.1 are one BMC")
	}
	p1 := BMC{Host: "h1", Endpoint: "https://a", Username: "u", UUID: uuid1}
	p2 := BMC{Host: "h2", Endpoint: "https://b", Username: "u", UUID: strings.ToUpper(uuid1)}
	if _, err := New([]BMC{p1, p2}); err == nil {
		t.Error("two hosts pinning one UUID accepted")
	}
	if _, err := New([]BMC{p1, p1}); err == nil || !strings.Contains(err.Error(), "two Redfish BMCs") {
		t.Errorf("a host twice: %v", err)
	}
}

func TestPasswordIsNeverFormatted(t *testing.T) {
	b := BMC{Host: "h1", Endpoint: "https://10.0.0.11", Username: "admin", Password: secret}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("bmc", "bmc", b)
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%v %+v %#v %s", b, b, b, b), logged.String()} {
		if strings.Contains(s, secret) || !strings.Contains(s, "10.0.0.11") {
			t.Errorf("formatted BMC: %q", s)
		}
	}
}
