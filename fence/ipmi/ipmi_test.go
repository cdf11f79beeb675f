package ipmi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud"
)

const secret = "s3cret-pw"

func bmc(host string, port int) BMC {
	return BMC{Host: host, Address: "127.0.0.1", Port: port, Username: "admin", Password: secret, Timeout: time.Second}
}

func TestValidateNamesTheField(t *testing.T) {
	good := bmc("h1", 9011)
	if err := good.Validate(); err != nil {
		t.Fatalf("good BMC: %v", err)
	}
	bad := []struct {
		edit  func(*BMC)
		field string
	}{
		{func(b *BMC) { b.Host = "" }, "name"},
		{func(b *BMC) { b.Address = "" }, "address"},
		{func(b *BMC) { b.Port = 70000 }, "port"},
		{func(b *BMC) { b.Port = -1 }, "port"},
		{func(b *BMC) { b.Username = "" }, "username"},
		{func(b *BMC) { b.Username = strings.Repeat("u", 17) }, "username"},
		{func(b *BMC) { b.Interface = "serial" }, "interface"},
		{func(b *BMC) { b.CipherSuite = 20 }, "cipher_suite"},
		{func(b *BMC) { b.Interface, b.CipherSuite = Lan, 3 }, "cipher_suite"},
		{func(b *BMC) { b.Timeout = -time.Second }, "timeout"},
		{func(b *BMC) { b.Password = strings.Repeat("p", 21) }, "password"},
		{func(b *BMC) { b.Interface, b.Password = Lan, strings.Repeat("p", 17) }, "password"},
	}
	for _, c := range bad {
		b := good
		c.edit(&b)
		var fe *FieldError
		if err := b.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%#v: error %v, want one naming field %s", b, err, c.field)
		}
	}
}

func TestNewAppliesDefaultsAndRefusesTwoBMCsForAHost(t *testing.T) {
	f, err := New([]BMC{{Host: "h1", Address: "10.0.0.1", Username: "admin"}, bmc("h2", 9012)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.BMC("h1")
	if b.Port != 623 || b.Interface != Lanplus || b.CipherSuite != 3 || b.Timeout != 5*time.Second {
		t.Errorf("defaults: %#v port %d suite %d timeout %s", b, b.Port, b.CipherSuite, b.Timeout)
	}
	if got := f.Hosts(); fmt.Sprint(got) != "[h1 h2]" {
		t.Errorf("Hosts() = %v", got)
	}
	if !f.CanFence("h2") || f.CanFence("h3") {
		t.Error("CanFence: want h2 yes, h3 no")
	}
	if _, err := New([]BMC{bmc("h1", 1), bmc("h1", 2)}); err == nil || !strings.Contains(err.Error(), "h1 has two BMCs") {
		t.Errorf("duplicate host: %v", err)
	}
}

func TestUnknownHostIsTerminalNotFound(t *testing.T) {
	f, _ := New([]BMC{bmc("h1", 9011)})
	err := f.PowerOff(context.Background(), "nowhere")
	if !cloud.IsTerminal(err) || !errors.Is(err, cloud.ErrNotFound) || !strings.Contains(err.Error(), "host nowhere has no BMC") {
		t.Fatalf("PowerOff of a host without BMC: %v", err)
	}
	if _, err := f.PowerStatus(context.Background(), "nowhere"); !errors.Is(err, cloud.ErrNotFound) {
		t.Fatalf("PowerStatus of a host without BMC: %v", err)
	}
}

func TestPasswordNeverFormatted(t *testing.T) {
	b := bmc("h1", 9011)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("fence", "bmc", b)
	for _, s := range []string{fmt.Sprint(b), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", b), fmt.Sprintf("%v", []BMC{b}), logged.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("password in %q", s)
		}
		if !strings.Contains(s, "127.0.0.1:9011") {
			t.Errorf("%q does not say which BMC", s)
		}
	}
}

// Texts of go-ipmi v0.9.1's errors, as the BMCs of the peer (ipmi_sim) produce them.
func TestClassify(t *testing.T) {
	b := bmc("fake-compute-1", 9011)
	lan := b
	lan.Interface = Lan
	cases := []struct {
		name     string
		b        BMC
		text     string
		kind     Kind
		terminal bool
		is       error
	}{
		{"wrong password, lanplus", b, "connect20 failed after try all cipher suite ids ([3]), errs: \ncmd: rakp1 failed with cipher suite id (3), err: validate rakp2 message failed, err: RAKP2 authentication code mismatch: RAKP authentication failed", AuthRefused, true, nil},
		{"unknown user, lanplus", b, "connect20 failed after try all cipher suite ids ([3]), errs: \ncmd: rakp1 failed with cipher suite id (3), err: validate rakp2 message failed, err: RMCP+ status 0x0d: Unauthorized name", AuthRefused, true, nil},
		{"privilege, lanplus", b, "rakp1 failed, err: RMCP+ status 0x0a: Unauthorized role of privilege level requested", PrivilegeRefused, true, nil},
		{"cipher suite", b, "open session failed, err: RMCP+ status 0x11: No Cipher Suite Match with proposed security algorithms", CipherRefused, true, nil},
		{"wrong password, lan", lan, "ActivateSession failed, err: IPMI LAN: no matching IPMI response (expected rqSeq 0x03, command 0x3a) before UDP read deadline after 2 attempt(s): udp exchange: no datagram matched before deadline", AuthRefused, true, nil},
		{"wrong password, lan, timeout hit first", lan, "ActivateSession failed, err: IPMI LAN: deadline exceeded while exchanging with BMC after 2 attempt(s): canceled from caller: context deadline exceeded", AuthRefused, true, nil},
		{"unknown user, lan", lan, "GetSessionChallenge failed, err: cc: 0x81, description: ipmiRes CompletionCode (0x81) is not normal: Invalid user name", AuthRefused, true, nil},
		{"no answer", b, "cmd: Get Channel Authentication Capabilities failed, err: IPMI LAN: no matching IPMI response before UDP read deadline after 5 attempt(s)", Unavailable, false, cloud.ErrUnavailable},
		{"no answer, lan", lan, "GetChannelAuthenticationCapabilities failed, err: IPMI LAN: no matching IPMI response", Unavailable, false, cloud.ErrUnavailable},
		{"refused port", b, "read udp 127.0.0.1:57137->127.0.0.1:9019: read: connection refused", Unavailable, false, cloud.ErrUnavailable},
		{"command failed", b, "cc: 0xff, description: ipmiRes CompletionCode (0xff) is not normal: Unspecified error", Failed, false, ErrFailed},
		{"password echoed", b, "weird failure mentioning " + secret, Unavailable, false, cloud.ErrUnavailable},
	}
	for _, c := range cases {
		err := classify(context.Background(), c.b, "power it off", time.Second, errors.New(c.text))
		var e *Error
		if !errors.As(err, &e) || e.Kind != c.kind || cloud.IsTerminal(err) != c.terminal {
			t.Errorf("%s: got %v (kind %v terminal %v), want kind %v terminal %v", c.name, err, e.Kind, cloud.IsTerminal(err), c.kind, c.terminal)
			continue
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v does not wrap %v", c.name, err, c.is)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %q has the password or a line break", c.name, err)
		}
	}
	auth := classify(context.Background(), b, "power it off", time.Second, errors.New(cases[0].text))
	want := "BMC of fake-compute-1 at 127.0.0.1:9011 refused user admin: check the fencing section of the policy file"
	if !strings.HasPrefix(auth.Error(), want) {
		t.Errorf("operator's sentence:\n got %s\nwant %s...", auth, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := classify(ctx, b, "power it off", time.Second, errors.New("canceled from caller: context canceled")); !errors.Is(err, context.Canceled) || cloud.IsTerminal(err) {
		t.Errorf("caller's cancel: %v", err)
	}
}

// A BMC that takes packets and never answers (what `ctl.sh bmc-down` does to one):
// the call fails retryable, within its timeout.
func TestSilentBMCIsUnavailableWithinTimeout(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	for _, intf := range []Interface{Lanplus, Lan} {
		b := bmc("h1", conn.LocalAddr().(*net.UDPAddr).Port)
		b.Interface = intf
		b.Timeout = 1500 * time.Millisecond
		f, err := New([]BMC{b})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = f.PowerOff(context.Background(), "h1")
		took := time.Since(start)
		if !errors.Is(err, cloud.ErrUnavailable) || cloud.IsTerminal(err) {
			t.Errorf("%s: silent BMC: %v, want retryable ErrUnavailable", intf, err)
		}
		if took > b.Timeout+time.Second {
			t.Errorf("%s: took %s, timeout %s", intf, took, b.Timeout)
		}
		if !strings.Contains(err.Error(), "did not answer within 1.5s") || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: message %q", intf, err)
		}
		t.Logf("%s: %s: %v", intf, took.Round(time.Millisecond), err)
	}
}

// The caller's deadline bounds a call even when the BMC's timeout is longer.
func TestCallerDeadlineBounds(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	b := bmc("h1", conn.LocalAddr().(*net.UDPAddr).Port)
	b.Timeout = 30 * time.Second
	f, _ := New([]BMC{b})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = f.PowerStatus(ctx, "h1")
	if took := time.Since(start); took > 2*time.Second || !errors.Is(err, context.DeadlineExceeded) ||
		!errors.Is(err, cloud.ErrUnavailable) || !strings.Contains(err.Error(), "within 300ms") {
		t.Errorf("took %s: %v", took, err)
	}
}
