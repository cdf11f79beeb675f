// Command redfish-sim serves the test Redfish service (package test/redfish) over
// HTTP or HTTPS until it is interrupted:
//
//	go run ./test/redfish/cmd/redfish-sim --listen 127.0.0.1:8443 --user admin --password-file pw \
//	    [--system 1=UUID[=Off] ...] [--transition 2s] [--fault lie] [--tls-cert c.pem --tls-key k.pem]
//
// It prints "listening on ADDR" once it accepts connections. SIGUSR1 makes it
// re-read --fault-file (one fault name, or empty to behave), so a test can change
// its fault while it runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/test/redfish"
)

type systemsFlag []redfish.SystemSpec

func (s *systemsFlag) String() string { return fmt.Sprint(*s) }
func (s *systemsFlag) Set(v string) error {
	parts := strings.Split(v, "=")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("want ID=UUID or ID=UUID=On|Off, got %q", v)
	}
	sp := redfish.SystemSpec{ID: parts[0], UUID: strings.ToLower(parts[1])}
	if len(parts) == 3 {
		if parts[2] != redfish.On && parts[2] != redfish.Off {
			return fmt.Errorf("power must be On or Off, got %q", parts[2])
		}
		sp.Power = parts[2]
	}
	*s = append(*s, sp)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "redfish-sim:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen, user, pwFile, fault, faultFile, cert, key string
		transition                                        time.Duration
		systems                                           systemsFlag
	)
	flag.StringVar(&listen, "listen", "127.0.0.1:8000", "address to listen on")
	flag.StringVar(&user, "user", "admin", "user name")
	flag.StringVar(&pwFile, "password-file", "", "file whose first line is the password (required)")
	flag.Var(&systems, "system", "a system as ID=UUID or ID=UUID=On|Off (repeatable; default one system 1, On)")
	flag.DurationVar(&transition, "transition", 0, "how long a power change takes (PoweringOff/PoweringOn meanwhile)")
	flag.StringVar(&fault, "fault", "", "fault mode at start: hang, refuse-forceoff or lie")
	flag.StringVar(&faultFile, "fault-file", "", "file re-read on SIGUSR1 for the fault mode")
	flag.StringVar(&cert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	flag.StringVar(&key, "tls-key", "", "and this key (PEM)")
	flag.Parse()
	if pwFile == "" {
		return errors.New("--password-file is required")
	}
	data, err := os.ReadFile(pwFile)
	if err != nil {
		return err
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	if pw = strings.TrimSuffix(pw, "\r"); pw == "" {
		return fmt.Errorf("%s is empty", pwFile)
	}
	if !slices.Contains(redfish.Faults, redfish.Fault(fault)) {
		return fmt.Errorf("--fault: unknown mode %q (want hang, refuse-forceoff or lie)", fault)
	}
	svc := redfish.New(redfish.Config{Username: user, Password: pw, Systems: systems, Transition: transition})
	svc.SetFault(redfish.Fault(fault))
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	// A client that checks the port (redfishtool's -W) and hangs up mid-handshake
	// is no error worth a line.
	errLog := log.New(filterWriter{os.Stderr, "TLS handshake error"}, "", log.LstdFlags)
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			if faultFile == "" {
				continue
			}
			b, err := os.ReadFile(faultFile)
			f := redfish.Fault(strings.TrimSpace(string(b)))
			if err != nil || !slices.Contains(redfish.Faults, f) {
				fmt.Fprintf(os.Stderr, "redfish-sim: fault file %s: %v %q\n", faultFile, err, f)
				continue
			}
			svc.SetFault(f)
			fmt.Printf("fault %q\n", f)
		}
	}()
	go func() {
		<-ctx.Done()
		svc.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Printf("listening on %s\n", ln.Addr())
	if cert != "" {
		err = srv.ServeTLS(ln, cert, key)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// filterWriter drops the lines that contain skip.
type filterWriter struct {
	w    io.Writer
	skip string
}

func (f filterWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), f.skip) {
		return len(p), nil
	}
	return f.w.Write(p)
}
