package vigil

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/cloud/sim"
)

// A request whose Content-Length is larger than its body held the connection for
// ever: with a read timeout of 1 s, the server answers or closes within it.
func TestShortBodyDoesNotHoldTheConnection(t *testing.T) {
	c := sim.New(sim.DefaultConfig(), time.Now)
	c.AddHost("host-0", "a", 4)
	ctx, cancel := context.WithCancel(context.Background())
	app, err := Start(ctx, Options{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "v.db"), Interval: time.Hour,
		Config: DefaultConfig(), Compute: c, Fencer: c, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Timeouts: Timeouts{ReadHeader: time.Second, Read: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, req := range []string{
		// The headers promise 100 bytes of body; 10 come.
		"POST /v1/clusters HTTP/1.1\r\nHost: vigil\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":\"x",
		// The headers never end.
		"GET /healthz HTTP/1.1\r\nHost: vigil\r\n",
	} {
		conn, err := net.Dial("tcp", app.Addr())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		took := time.Since(start)
		switch {
		case err == nil:
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("%q: %s, want an error", strings.SplitN(req, "\r\n", 2)[0], resp.Status)
			}
		case isTimeout(err):
			t.Fatalf("%q: the server held the connection %s without answering or closing", strings.SplitN(req, "\r\n", 2)[0], took.Round(time.Second))
		}
		if took > 5*time.Second {
			t.Errorf("%q: answered or closed after %s, want about the 1 s read timeout", strings.SplitN(req, "\r\n", 2)[0], took)
		}
		conn.Close()
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestTimeoutsDefaults(t *testing.T) {
	var srv http.Server
	Timeouts{Read: 3 * time.Second}.apply(&srv)
	if srv.ReadTimeout != 3*time.Second || srv.ReadHeaderTimeout != 10*time.Second || srv.WriteTimeout != 2*time.Minute || srv.IdleTimeout != 2*time.Minute {
		t.Fatalf("timeouts: header %s, read %s, write %s, idle %s", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}
